"""Property-based fuzz of every actuator endpoint from the OpenAPI schema (schemathesis): whatever
the input, valid or not, with or without the token, no response is a 5xx.

The application runs as a real process (uvicorn, real Redis), as in production; each operation
gets a bounded number of generated cases, positive (valid by the schema) and negative (invalid).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from redis_streaming.testing import free_port
from tests.starter.support import app_env, start_app, stop_app, wait_ready

TOKEN = "fuzz-token-0123456789"
EXAMPLES = int(os.environ.get("RS_FUZZ_EXAMPLES", "15"))


@pytest.fixture
def served(rs_server_url: str, rs_namespace: str) -> Iterator[str]:
    port = free_port()
    env = app_env(rs_server_url, rs_namespace, port, ACTUATOR__EXPOSE="*", ACTUATOR__TOKEN=TOKEN)
    proc = start_app("tests.starter.apps.fuzz:app", env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/actuator/health/readiness", proc)
        yield url
    finally:
        err = stop_app(proc)
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
