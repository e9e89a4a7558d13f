"""What every actuator route goes through before its handler: the bearer token (checked before
the request body is read), a size cap on that body, the token for sensitive reads, error texts
cut short, and ``HEAD`` on ``GET`` routes.

Every endpoint module builds its router with :meth:`ActuatorContext.router
<redis_streaming_starter.actuator.context.ActuatorContext.router>`, whose route class is made
here, so no route can forget these checks: a route whose method is not ``GET`` needs the token,
whatever its module declares.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from redis_streaming_starter.settings_sections import SENSITIVE_ENDPOINTS

if TYPE_CHECKING:
    from starlette.routing import Match

    from redis_streaming_starter.actuator.context import ActuatorContext
    from redis_streaming_starter.settings import Settings

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DETAIL_CHARS",
    "clip",
    "exposure_warning",
    "is_loopback",
    "reads_need_token",
    "route_class",
]

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body an actuator route reads (413 beyond). The largest legitimate one, a
replay of 1,000 ids, is about 45 KB."""
MAX_DETAIL_CHARS = 1000
"""Longest error text (``detail``) an actuator route answers; longer ones are cut in the middle,
keeping the start (what was wrong) and the end (what to do)."""
_MAX_INPUT_CHARS = 200  # of an invalid value echoed in a 422 body
_READS = frozenset({"GET", "HEAD"})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ``::1``); False for
    wildcards (``0.0.0.0``, ``::``, empty) and every other address or name."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def reads_need_token(settings: Settings) -> bool:
    """``actuator.secure_reads``, or when unset: whether ``app.host`` is not a loopback
    address (then anyone who can reach the port could read dead letters and configuration)."""
    chosen = settings.actuator.secure_reads
    return not is_loopback(settings.app.host) if chosen is None else chosen


def exposure_warning(settings: Settings) -> str | None:
    """A warning when the actuator listens beyond this machine with sensitive endpoints that
    anyone reaching it could read (or that answer 403 for want of a token); else None."""
    actuator, host = settings.actuator, settings.app.host
    exposed = [e for e in SENSITIVE_ENDPOINTS if actuator.is_exposed(e)]
    if not actuator.enabled or is_loopback(host) or not exposed:
        return None
    where = f"app.host {host or '(all addresses)'}"
    if not reads_need_token(settings):
        return (
            f"the actuator listens on {where} and exposes {', '.join(exposed)} with "
            "actuator.secure_reads=false: anyone who reaches the port can read dead-letter "
            "payloads, configuration and stack traces. Set REDIS_STREAMING_ACTUATOR__SECURE_READS"
            "=true (and a token), bind 127.0.0.1, or exclude those endpoints "
            "(REDIS_STREAMING_ACTUATOR__EXCLUDE)"
        )
    if actuator.token is None:
        return (
            f"the actuator listens on {where} and exposes {', '.join(exposed)}, which need the "
            "token there (actuator.secure_reads), but no REDIS_STREAMING_ACTUATOR__TOKEN is "
            "set: they answer 403"
        )
    return None


def clip(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and end around a note
    of how much was cut (error texts echo input, which can be megabytes)."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 4
    return f"{text[:head]}... ({len(text) - head - tail} characters cut) ...{text[-tail:]}"


def _clip_input(value: Any) -> Any:
    if isinstance(value, str | bytes) and len(value) > _MAX_INPUT_CHARS:
        return f"{value[:_MAX_INPUT_CHARS]!r}... ({len(value)} long, cut)"
    if isinstance(value, list | dict) and len(repr(value)) > _MAX_INPUT_CHARS:
        return f"({type(value).__name__} of {len(value)} items, not shown)"
    return value


class _CappedRequest(Request):
    """A request whose body is read at most up to ``limit`` bytes, with or without a
    ``Content-Length`` (chunked): a larger one is refused with 413 as soon as it is seen."""

    limit = MAX_BODY_BYTES

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.limit:
                raise _too_large(int(declared))
            chunks: list[bytes] = []
            size = 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > self.limit:
                    raise _too_large(size)
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body


def _too_large(size: int) -> HTTPException:
    return HTTPException(
        413,
        f"the request body has more than {MAX_BODY_BYTES} bytes ({size} seen); actuator "
        "requests are small JSON documents (replay at most 1,000 ids per request)",
    )


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def route_class(ctx: ActuatorContext, sensitive: bool) -> type[APIRoute]:
    """The ``APIRoute`` class of the actuator's routes (``sensitive``: reads need the token
    when ``actuator.secure_reads`` is on)."""
    reads_guarded = sensitive and ctx.secure_reads

    class ActuatorRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                # Before anything reads the body: an anonymous client cannot make the
                # application read or parse megabytes (or learn the schema from a 422).
                if request.method not in _READS or reads_guarded:
                    await ctx.require_token(request)
                try:
                    return await handler(_CappedRequest(request.scope, request.receive))
                except HTTPException as exc:
                    if isinstance(exc.detail, str) and len(exc.detail) > MAX_DETAIL_CHARS:
                        raise HTTPException(
                            exc.status_code, clip(exc.detail), headers=exc.headers
                        ) from exc
                    raise
                except RequestValidationError as exc:
                    errors = [
                        {**e, "input": _clip_input(e["input"])} if "input" in e else e
                        for e in exc.errors()
                    ]
                    raise RequestValidationError(errors) from exc

            return guarded

        # HEAD is answered like GET (the server sends no body), as Starlette does for its
        # own routes; FastAPI's would answer 405.
        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            return super().matches(self._as_get(scope))

        async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
            await super().handle(self._as_get(scope), receive, send)

        def _as_get(self, scope: Scope) -> Scope:
            if scope.get("method") == "HEAD" and "GET" in (self.methods or ()):
                return {**scope, "method": "GET"}
            return scope

    return ActuatorRoute
