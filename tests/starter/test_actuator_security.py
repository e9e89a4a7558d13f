"""The actuator's defences (security review 2026-12-02): the token is checked before a request
body is read, bodies are capped, sensitive reads can need the token, weak tokens are refused,
links never come from the Host header, error texts do not echo huge inputs, HEAD works.

The memory tests run the application as a real process (``redis-streaming run``, uvicorn) and
read its resident size from ``/proc/<pid>/status`` while a large body is being sent.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from redis_streaming import ConfigurationError
from redis_streaming.testing import free_port
from redis_streaming_starter import RedisStreamingApplication, Settings, load_settings
from redis_streaming_starter.actuator.security import MAX_BODY_BYTES, exposure_warning
from redis_streaming_starter.settings import ActuatorSettings
from tests.helpers import serving
from tests.starter.support import app_env, start_app, stop_app, wait_ready

TOKEN = "security-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SENSITIVE_READS = ["/env", "/configprops", "/threaddump", "/topics/orders/dlq"]
OPEN_READS = ["/health", "/info", "/beans", "/loggers", "/topics"]


def _with(settings: Settings, app: dict[str, Any] | None = None, **actuator: Any) -> Settings:
    update: dict[str, Any] = {"actuator": ActuatorSettings.model_validate(actuator)}
    if app:
        update["app"] = settings.app.model_copy(update=app)
    return settings.model_copy(update=update)


def _http(
    settings: Settings, started: bool = False
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return serving(RedisStreamingApplication(settings=settings).asgi, started=started)


# -- F1: the token before the body, and a cap on the body ----------------------------------------


async def test_every_mutating_route_checks_the_token_before_the_body(settings: Settings) -> None:
    """Every POST/DELETE in the OpenAPI schema, with a body that is not even JSON: 401 without
    the token (never 422 with the parse error), 403 when no token is configured."""
    async with _http(_with(settings, expose=["*"], token=TOKEN)) as http:
        schema = (await http.get("/openapi.json")).json()
        mutating = [
            (method.upper(), path.replace("{", "").replace("}", ""))
            for path, ops in schema["paths"].items()
            for method in ops
            if method in ("post", "delete", "put", "patch")
        ]
        assert len(mutating) >= 6
        for method, path in mutating:
            for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
                response = await http.request(
                    method, path, content=b'{"ids": [not json', headers={
                        **headers, "Content-Type": "application/json"})  # fmt: skip
                assert response.status_code == 401, (method, path, response.text)
                assert "bearer token" in response.json()["detail"]
    async with _http(_with(settings, expose=["*"])) as http:
        for method, path in mutating:
            response = await http.request(method, path, content=b"{", headers=AUTH)
            assert response.status_code == 403, (method, path, response.text)


async def test_a_body_over_the_cap_is_refused_with_413(settings: Settings) -> None:
    big = b'{"ids": ["' + b"1" * MAX_BODY_BYTES + b'"]}'

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    async with _http(_with(settings, expose=["*"], token=TOKEN)) as http:
        path = "/actuator/topics/orders/dlq/replay"
        declared = await http.post(path, content=big, headers=AUTH)
        assert declared.status_code == 413, declared.text
        assert str(MAX_BODY_BYTES) in declared.json()["detail"]
        streamed = await http.post(path, content=chunks(), headers=AUTH)
        assert streamed.status_code == 413, streamed.text
        ok = await http.post(path, json={"ids": ["1-0"] * 1000}, headers=AUTH)
        assert ok.status_code in (404, 503), ok.text  # past the cap: the topic is unknown


@pytest.fixture
def process(rs_server_url: str, rs_namespace: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """The application as a process (``redis-streaming run``), every endpoint exposed."""
    port = free_port()
    env = app_env(rs_server_url, rs_namespace, port, ACTUATOR__EXPOSE="*", ACTUATOR__TOKEN=TOKEN)
    proc = start_app("tests.starter.apps.fuzz:app", env)
    try:
        wait_ready(f"http://127.0.0.1:{port}/actuator/health/readiness", proc)
        yield port, proc
    finally:
        stop_app(proc)


def _rss(pid: int) -> int:
    """Resident set size of a process in bytes (``VmRSS`` of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _post_big(port: int, pid: int, *, size: int, chunked: bool, token: bool) -> tuple[int, int]:
    """POST ``size`` bytes of JSON to the replay route over a raw socket while sampling the
    process's RSS; returns (status code, peak RSS growth in bytes). Sending stops as soon as
    the response has come."""
    head = [
        "POST /actuator/topics/orders/dlq/replay HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}",
    ]
    if token:
        head.append(f"Authorization: Bearer {TOKEN}")
    piece = b'"1-0",' * (1 << 16)  # 384 KiB of a JSON list of ids, as the review sent
    answered, sampling = threading.Event(), threading.Event()
    base = _rss(pid)
    peak = [base]

    def sample() -> None:
        while not sampling.is_set():
            peak[0] = max(peak[0], _rss(pid))
            time.sleep(0.005)

    def send(sock: socket.socket) -> None:
        try:
            sent = len(b'{"ids": [')
            sock.sendall(_frame(b'{"ids": [', chunked))
            while sent < size - len(piece) and not answered.is_set():
                sock.sendall(_frame(piece, chunked))
                sent += len(piece)
            if not answered.is_set():
                tail = b'"1-0"]}'.rjust(size - sent, b" ")
                sock.sendall(_frame(tail, chunked) + (b"0\r\n\r\n" if chunked else b""))
        except OSError:  # the server answered and closed: exactly what is wanted
            pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sender = threading.Thread(target=send, args=(sock,), daemon=True)
        sender.start()
        reply = b""
        while b"\r\n" not in reply:
            data = sock.recv(65536)
            assert data, "the server closed the connection without an answer"
            reply += data
        answered.set()
        sock.shutdown(socket.SHUT_RDWR)
        sender.join(60)
    sampling.set()
    sampler.join(5)
    peak[0] = max(peak[0], _rss(pid))
    return int(reply.split(b" ", 2)[1]), peak[0] - base


def _frame(data: bytes, chunked: bool) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if chunked else data


BIG = 180 * 1024 * 1024  # the review's body: a JSON list of 30 million ids
GROWTH_LIMIT = 32 * 1024 * 1024  # uvicorn buffers; the body itself would be 180 MB and more


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_anonymous_huge_post_does_not_grow_the_process(
    process: tuple[int, subprocess.Popen[bytes]], chunked: bool
) -> None:
    port, proc = process
    httpx.post(f"http://127.0.0.1:{port}/actuator/topics/orders/dlq/replay", json={}, headers=AUTH)
    status, growth = _post_big(port, proc.pid, size=BIG, chunked=chunked, token=False)
    assert status == 401
    assert growth < GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.0f} MiB"
    status, growth = _post_big(port, proc.pid, size=BIG, chunked=chunked, token=True)
    assert status == 413
    assert growth < GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.0f} MiB"
    health = httpx.get(f"http://127.0.0.1:{port}/actuator/health/liveness")
    assert health.status_code == 200


def test_head_is_answered_like_get_without_a_body(
    process: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, _ = process
    for path in ("/actuator/health", "/actuator/info", "/actuator/topics", "/actuator"):
        response = httpx.head(f"http://127.0.0.1:{port}{path}")
        assert response.status_code == 200, path
        assert response.content == b""
        assert response.headers["content-type"] == "application/json"
    assert httpx.head(f"http://127.0.0.1:{port}/actuator/env").status_code == 200
    post_only = httpx.head(f"http://127.0.0.1:{port}/actuator/topics/t/dlq/replay")
    assert post_only.status_code in (404, 405)


# -- F8: sensitive reads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "secure_reads", "guarded"),
    [
        ("127.0.0.1", None, False),  # loopback: off unless asked for
        ("0.0.0.0", None, True),  # a wildcard: on
        ("127.0.0.1", True, True),
        ("0.0.0.0", False, False),
    ],
)
async def test_sensitive_reads_need_the_token_when_secure_reads(
    settings: Settings, host: str, secure_reads: bool | None, guarded: bool
) -> None:
    configured = _with(
        settings, {"host": host}, expose=["*"], token=TOKEN, secure_reads=secure_reads
    )
    async with _http(configured, started=True) as http:
        for path in SENSITIVE_READS:
            anonymous = await http.get(f"/actuator{path}")
            assert (anonymous.status_code == 401) is guarded, (path, anonymous.text)
            assert (await http.get(f"/actuator{path}", headers=AUTH)).status_code != 401
        for path in OPEN_READS:
            assert (await http.get(f"/actuator{path}")).status_code == 200, path


async def test_secure_reads_without_a_token_answer_403(settings: Settings) -> None:
    async with _http(_with(settings, expose=["*"], secure_reads=True)) as http:
        response = await http.get("/actuator/env")
    assert response.status_code == 403
    assert "REDIS_STREAMING_ACTUATOR__TOKEN" in response.json()["detail"]


# -- F9: the warning for a wide-open actuator ----------------------------------------------------


def test_exposure_warning(settings: Settings) -> None:
    wide = {"host": "0.0.0.0"}
    open_reads = exposure_warning(_with(settings, wide, expose=["*"], secure_reads=False))
    assert open_reads is not None
    assert "anyone who reaches the port" in open_reads
    assert "dlq" in open_reads
    assert "SECURE_READS" in open_reads
    no_token = exposure_warning(_with(settings, wide, expose=["env"]))
    assert no_token is not None
    assert "answer 403" in no_token
    assert exposure_warning(_with(settings, wide, expose=["*"], token=TOKEN)) is None
    assert exposure_warning(_with(settings, wide, expose=["health", "info", "topics"])) is None
    assert exposure_warning(_with(settings, expose=["*"], secure_reads=False)) is None


def test_run_warns_when_it_binds_a_wildcard_with_sensitive_endpoints(
    rs_server_url: str, rs_namespace: str
) -> None:
    port = free_port()
    env = app_env(rs_server_url, rs_namespace, port, APP__HOST="0.0.0.0",
                  ACTUATOR__EXPOSE="*", ACTUATOR__SECURE_READS="false")  # fmt: skip
    proc = start_app("tests.starter.apps.fuzz:app", env, stderr=subprocess.PIPE)
    try:
        wait_ready(f"http://127.0.0.1:{port}/actuator/health", proc)
    finally:
        err = stop_app(proc)
    assert proc.returncode == 0  # stopped by the SIGTERM, in time
    text = err.decode(errors="replace")
    assert "WARNING" in text
    assert "anyone who reaches the port can read" in text, text[-2000:]


# -- F10: weak tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("a", "1 characters, fewer than 16"),
        ("short-token-15ch", None),  # 16: accepted
        ("fifteen-chars-1", "15 characters, fewer than 16"),
        ("   ", "is blank"),
        ("", "is blank"),
        ("a-long-token with-a-space", "contains whitespace"),
    ],
)
def test_weak_tokens_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, token: str, problem: str | None
) -> None:
    monkeypatch.setenv("REDIS_STREAMING_ACTUATOR__TOKEN", token)
    if problem is None:
        loaded = load_settings().actuator.token
        assert loaded is not None
        assert loaded.get_secret_value() == token
        return
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "REDIS_STREAMING_ACTUATOR__TOKEN" in message
    assert problem in message
    assert "secrets.token_urlsafe" in message or problem == "contains whitespace"


# -- F11: links and redirects never come from the Host header -----------------------------------


async def test_links_and_redirects_ignore_the_host_header(settings: Settings) -> None:
    evil = {"Host": "evil.example", **AUTH}
    async with _http(_with(settings, expose=["*"], token=TOKEN)) as http:
        links = (await http.get("/actuator", headers=evil)).json()["_links"]
        assert links["self"]["href"] == "/actuator"
        assert links["topics"]["href"] == "/actuator/topics"
        for method in ("GET", "POST"):
            moved = await http.request(method, "/actuator/topics/?x=1", headers=evil)
            assert moved.status_code == 307, (method, moved.text)
            assert moved.headers["location"] == "/actuator/topics?x=1"
        base = await http.get("/actuator/", headers=evil)
        assert (base.status_code, base.headers["location"]) == (307, "/actuator")
        anonymous = await http.post("/actuator/topics/", json={"name": "x"})
        assert anonymous.status_code == 401  # the redirect does not skip the token
        assert (await http.get("/actuator/nope/")).status_code == 404
        assert (await http.get("/actuator/nope")).status_code == 404
    based = _with(settings, expose=["health"], links_base_url="https://shop.example.com/")
    async with _http(based) as http:
        links = (await http.get("/actuator", headers={"Host": "evil.example"})).json()["_links"]
    assert links["health"]["href"] == "https://shop.example.com/actuator/health"


def test_links_base_url_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        ActuatorSettings(links_base_url="shop.example.com")


# -- F13, F18: error texts and odd names ---------------------------------------------------------


async def test_errors_do_not_echo_huge_inputs(settings: Settings) -> None:
    async with _http(_with(settings, expose=["*"], token=TOKEN), started=True) as http:
        await http.post("/actuator/topics", json={"name": "orders"}, headers=AUTH)
        group = "g" * 500_000
        replay = await http.post(
            "/actuator/topics/orders/dlq/replay", json={"all": True, "group": group}, headers=AUTH
        )
        assert replay.status_code == 400
        assert "invalid group name" in replay.json()["detail"]
        assert len(replay.content) < 2000
        topic = await http.get(f"/actuator/topics/{'t' * 20_000}")
        assert topic.status_code in (400, 404)
        assert "characters cut" in topic.json()["detail"]
        assert len(topic.content) < 2000
        bad = await http.post(
            "/actuator/topics", json={"name": "n", "partitions": "x" * 100_000}, headers=AUTH
        )
        assert bad.status_code == 422
        assert len(bad.content) < 2000


async def test_dot_names_cannot_be_created_over_http(settings: Settings) -> None:
    async with _http(_with(settings, expose=["*"], token=TOKEN), started=True) as http:
        for name in (".", ".."):
            response = await http.post("/actuator/topics", json={"name": name}, headers=AUTH)
            assert response.status_code == 400, name
            assert "path" in response.json()["detail"]
        assert (await http.post("/actuator/topics", json={"name": ".a"}, headers=AUTH)).is_success
