"""Health probes: HTTP GET and TCP connect, on asyncio streams (no HTTP client dependency)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

from redis_streaming.registry.instance import ServiceInstance

__all__ = ["http_probe", "probe_target", "tcp_probe"]

_MAX_BODY = 64 * 1024  # read (and drop) at most this much of a health response
_CLOSE_S = 0.5


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_CLOSE_S):
            await writer.wait_closed()


async def tcp_probe(host: str, port: int, timeout_s: float) -> bool:
    """True when a TCP connection to ``host:port`` opens within ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    await _close(writer)
    return True


async def http_probe(url: str, timeout_s: float, *, verify_tls: bool = True) -> bool:
    """True when ``GET url`` answers a 2xx status within ``timeout_s`` (redirects are not
    followed). Connection errors, timeouts, TLS errors and malformed answers are False."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    tls: ssl.SSLContext | None = None
    if parts.scheme == "https":
        tls = ssl.create_default_context()
        if not verify_tls:
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        return False
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc.rpartition("@")[2]
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: redis-streaming-health\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode()
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        async with asyncio.timeout_at(deadline):
            reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=tls)
    except (OSError, TimeoutError):  # ssl.SSLError is an OSError
        return False
    try:
        async with asyncio.timeout_at(deadline):
            writer.write(request)
            await writer.drain()
            status = await reader.readline()
            read = 0  # drain the rest politely, so the server does not see a reset
            while read < _MAX_BODY:
                chunk = await reader.read(4096)
                if not chunk:
                    break
                read += len(chunk)
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
        return False
    finally:
        await _close(writer)
    fields = status.split(None, 2)
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
        return False
    return 200 <= int(fields[1]) < 300


def probe_target(instance: ServiceInstance, health_path: str) -> tuple[str, str] | None:
    """How to check ``instance``: ``("http", url)``, ``("tcp", "")``, or ``None`` (not checked).

    Metadata ``health_check`` = ``none`` turns checks off, ``tcp`` forces a TCP connect,
    ``http`` forces HTTP. Metadata ``health_url`` (a full URL) is probed with GET. Otherwise
    http and https instances get ``GET <protocol>://host:port<health_path>`` and every other
    protocol a TCP connect to ``host:port``.
    """
    mode = instance.metadata.get("health_check", "").lower()
    if mode == "none":
        return None
    if mode == "tcp":
        return ("tcp", "")
    url = instance.metadata.get("health_url")
    if url:
        return ("http", url)
    if mode == "http" or instance.protocol in ("http", "https"):
        scheme = "https" if instance.protocol == "https" else "http"
        base = instance.replace(protocol=scheme).url
        return ("http", f"{base}{health_path}")
    return ("tcp", "")
