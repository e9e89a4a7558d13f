"""Actuator endpoints ``/loggers``, ``/loggers/{name}`` and ``POST /loggers/{name}``.

Levels are Python's (``OFF``, ``CRITICAL``, ``ERROR``, ``WARNING``, ``INFO``, ``DEBUG``); Spring's
names are accepted too, in any case: ``FATAL`` is CRITICAL, ``WARN`` is WARNING and ``TRACE`` is
DEBUG, Python's most verbose level (so tools such as Spring Boot Admin work unchanged). ``OFF``
is a level above CRITICAL: the logger then passes nothing on. ``ROOT`` names the root logger.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field, field_validator

from redis_streaming_starter.actuator.context import ActuatorContext

__all__ = ["LoggerLevelChange", "LoggerLevels", "Loggers", "routes"]

ROOT = "ROOT"
OFF = logging.CRITICAL + 10
LEVELS = ("OFF", "CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
_NUMBERS = {"OFF": OFF, **{n: logging.getLevelNamesMapping()[n] for n in LEVELS[1:]}}
_ALIASES = {"FATAL": "CRITICAL", "WARN": "WARNING", "TRACE": "DEBUG"}
_NAME = "A logger name (dotted, e.g. redis_streaming.mq) or ROOT."
_ACCEPTED = "OFF, CRITICAL (or FATAL), ERROR, WARNING (or WARN), INFO, DEBUG (or TRACE)"

LevelName = Literal[
    "OFF", "CRITICAL", "FATAL", "ERROR", "WARNING", "WARN", "INFO", "DEBUG", "TRACE"
]


class LoggerLevels(BaseModel):
    configuredLevel: str | None = Field(description="Set on this logger; null = inherited.")
    effectiveLevel: str = Field(description="The level it logs at (its own or an ancestor's).")


class LoggerGroup(BaseModel):
    configuredLevel: str | None
    members: list[str]


class Loggers(BaseModel):
    """``GET /loggers``: ROOT first, then every logger created so far, by name."""

    levels: list[str] = Field(description="The levels a logger can be set to.")
    loggers: dict[str, LoggerLevels]
    groups: dict[str, LoggerGroup] = Field(description="Always empty: there are no groups.")


class LoggerLevelChange(BaseModel):
    """Body of ``POST /loggers/{name}``."""

    model_config = ConfigDict(extra="forbid")

    configuredLevel: LevelName | None = Field(
        description=f"{_ACCEPTED} (any case), or null to reset: other loggers then inherit "
        "their parent's level again, ROOT goes back to logging.level."
    )

    @field_validator("configuredLevel", mode="before")
    @classmethod
    def _known(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        name = value.strip().upper()
        if name not in _NUMBERS and name not in _ALIASES:
            raise ValueError(f"unknown level {value!r}; use one of {_ACCEPTED}, or null to reset")
        return name


def routes(ctx: ActuatorContext) -> APIRouter:
    """The logger endpoints when ``loggers`` is exposed; POST needs the bearer token."""
    router = ctx.router()
    if not ctx.is_exposed("loggers"):
        return router

    @router.get("/loggers", summary="Levels of every logger")
    async def loggers() -> Loggers:
        manager = logging.root.manager
        found = {ROOT: _levels(logging.root)}
        for name in sorted(manager.loggerDict):
            logger = manager.loggerDict[name]
            if isinstance(logger, logging.Logger):  # not a PlaceHolder for children
                found[name] = _levels(logger)
        return Loggers(levels=list(LEVELS), loggers=found, groups={})

    @router.get(
        "/loggers/{name}",
        summary="Levels of one logger",
        responses={404: {"description": "No logger of that name exists yet."}},
    )
    async def logger_levels(name: Annotated[str, Path(description=_NAME)]) -> LoggerLevels:
        if name == ROOT:
            return _levels(logging.root)
        logger = logging.root.manager.loggerDict.get(name)
        if not isinstance(logger, logging.Logger):
            raise HTTPException(
                404, f"no logger {name!r} yet (GET /loggers lists them); POST a level to create it"
            )
        return _levels(logger)

    @router.post(
        "/loggers/{name}",
        summary="Set or reset (null) the level of a logger",
        status_code=204,
        responses={
            400: {"description": "Not a logger name."},
            401: {"description": "Missing or wrong bearer token."},
            403: {"description": "No actuator.token is configured."},
        },
    )
    async def set_level(
        name: Annotated[str, Path(description=_NAME)], change: LoggerLevelChange
    ) -> None:
        level = change.configuredLevel
        if name == ROOT:
            default = ctx.app.settings.logging.level
            logging.root.setLevel(_number(level) if level else _NUMBERS[default])
            return
        if not name.strip() or any(not part for part in name.split(".")):
            raise HTTPException(
                400, f"{name!r} is not a logger name: use dotted names such as redis_streaming.mq"
            )
        logging.getLogger(name).setLevel(_number(level) if level else logging.NOTSET)

    return router


def _number(name: str) -> int:
    return _NUMBERS[_ALIASES.get(name, name)]


def _name(level: int) -> str:
    if level >= OFF:
        return "OFF"
    return str(logging.getLevelName(level))


def _levels(logger: logging.Logger) -> LoggerLevels:
    configured = _name(logger.level) if logger.level != logging.NOTSET else None
    return LoggerLevels(
        configuredLevel=configured, effectiveLevel=_name(logger.getEffectiveLevel())
    )
