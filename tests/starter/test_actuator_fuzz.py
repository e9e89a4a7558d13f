"""Property-based fuzz of every actuator endpoint from the OpenAPI schema (schemathesis): whatever
the input, valid or not, with or without the token, no response is a 5xx.

The application runs as a real process (uvicorn, real Redis), as in production; each operation
gets a bounded number of generated cases, positive (valid by the schema) and negative (invalid).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from redis_streaming.testing import free_port

TOKEN = "fuzz-token-0123456789"
EXAMPLES = int(os.environ.get("RS_FUZZ_EXAMPLES", "15"))


@pytest.fixture
def served(rs_server_url: str, rs_namespace: str) -> Iterator[str]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),  # a planted mutant's copy, if any
        "REDIS_STREAMING_REDIS__URL": rs_server_url,
        "REDIS_STREAMING_MQ__NAMESPACE": rs_namespace,
        "REDIS_STREAMING_APP__PORT": str(port),
        "REDIS_STREAMING_ACTUATOR__EXPOSE": "*",
        "REDIS_STREAMING_ACTUATOR__TOKEN": TOKEN,
        "REDIS_STREAMING_LOGGING__LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "redis_streaming_starter.cli", "run", "tests.starter.apps.fuzz:app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/actuator/health/readiness").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "the application exited"
            assert time.monotonic() < deadline, "the application did not become ready"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        assert b"Traceback" not in err, err.decode(errors="replace")[-4000:]


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    failures: list[str],
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=15)
        if response.status_code >= 500:
            failures.append(
                f"{case.method} {case.formatted_path} query={case.query} "
                f"body={case.body!r:.200} -> {response.status_code} {response.text[:300]}"
            )

    try:
        call()
    except Unsatisfiable:  # no invalid input exists for an operation without parameters
        assert mode is GenerationMode.NEGATIVE


def test_no_endpoint_answers_5xx(served: str) -> None:
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, served, {"Authorization": f"Bearer {TOKEN}"}, failures)
            if operation.method.upper() in ("POST", "DELETE", "PUT", "PATCH"):
                _fuzz(operation, mode, served, {}, failures)  # and without the token
    assert operations >= 20
    assert not failures, "\n".join(failures[:20])
