"""Instance filters: ``{"weight:>=": "80", "region": "eu", "status:!=": "maintenance"}``.

A filter key is ``field`` (meaning ``field:==``) or ``field:op`` with op one of
``== != > >= < <=``; the operator is what follows the *last* colon, so a metadata key that
contains a colon needs an explicit operator (``"zone:a:=="``). All conditions must hold.

Fields: ``instance_id``, ``host``, ``port``, ``protocol``, ``weight``, ``healthy``
(``"true"``/``"false"``) and ``ephemeral`` are the instance's own; any other name is a metadata
key, and ``metadata.<key>`` names a metadata key explicitly (for one called like a built-in
field). Values are compared as numbers when both sides are decimal numbers, else as strings.
A metadata key the instance lacks fails every condition except ``!=`` (as in Kubernetes label
selectors: ``"status:!=": "maintenance"`` keeps instances without a status).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from redis_streaming.registry.instance import ServiceInstance

__all__ = ["FilterValue", "InstanceFilter", "Operator", "compile_filters", "matches"]

FilterValue = str | int | float | bool
Operator = Callable[[Any, Any], Any]

OPERATORS: dict[str, Operator] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_ALLOWED = " ".join(OPERATORS)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_BUILTIN = ("instance_id", "host", "port", "protocol", "weight", "healthy", "ephemeral")


def _as_text(value: FilterValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(
        f"filter value {value!r} must be a str, int, float or bool, not {type(value).__name__}"
    )


def _field_value(instance: ServiceInstance, name: str) -> str | None:
    if name.startswith("metadata."):
        return instance.metadata.get(name[len("metadata.") :])
    if name in _BUILTIN:
        value = getattr(instance, name)
        return _as_text(value)
    return instance.metadata.get(name)


@dataclass(frozen=True, slots=True)
class InstanceFilter:
    """One condition: ``field op value``."""

    field: str
    op: str
    value: str

    def __call__(self, instance: ServiceInstance) -> bool:
        actual = _field_value(instance, self.field)
        if actual is None:
            return self.op == "!="
        compare = OPERATORS[self.op]
        if _NUMBER.fullmatch(actual) and _NUMBER.fullmatch(self.value):
            return bool(compare(float(actual), float(self.value)))
        return bool(compare(actual, self.value))


def compile_filters(filters: Mapping[str, FilterValue] | None) -> list[InstanceFilter]:
    """Parse a filter mapping; raises ``ValueError`` naming the allowed operators for a bad
    one, or for an empty field name."""
    out: list[InstanceFilter] = []
    for key, value in (filters or {}).items():
        if not isinstance(key, str):
            raise ValueError(f"filter key {key!r} must be a str such as 'region' or 'weight:>='")
        field, sep, op = key.rpartition(":")
        if not sep:
            field, op = key, "=="
        if op not in OPERATORS:
            raise ValueError(
                f"unknown operator {op!r} in filter {key!r}: use one of {_ALLOWED} after the "
                "last ':' (e.g. 'weight:>='); a metadata key containing ':' needs an explicit "
                "operator, e.g. 'zone:a:=='"
            )
        if not field or field == "metadata.":
            raise ValueError(f"filter {key!r} names no field: write 'field' or 'field:op'")
        out.append(InstanceFilter(field, op, _as_text(value)))
    return out


def matches(instance: ServiceInstance, filters: Iterable[InstanceFilter]) -> bool:
    """True when ``instance`` meets every condition."""
    return all(f(instance) for f in filters)
