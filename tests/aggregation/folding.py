"""Folding records into aggregator states the way the windowed-aggregation operator does: the
state decoded from the codec's bytes before each record and encoded again after it."""

from __future__ import annotations

import itertools
import random
from typing import Any

from redis_streaming.state.codec import decode, encode

Item = tuple[int, Any]  # (event time in ms, record value), in arrival order


def fold(aggregator: Any, items: list[Item], *, stored: bool = True) -> Any:
    """The state after ``items``; through the codec after every record when ``stored``."""
    state = aggregator.initial()
    add_at = getattr(aggregator, "add_at", None)
    for ts, value in items:
        if stored:
            state = decode(encode(state))
        state = aggregator.add(state, value) if add_at is None else add_at(state, value, ts)
    return decode(encode(state)) if stored else state


def merged(aggregator: Any, parts: list[list[Item]]) -> Any:
    """The states of ``parts`` folded separately, stored, and merged left to right."""
    states = [fold(aggregator, part) for part in parts]
    state = states[0]
    for other in states[1:]:
        state = decode(encode(aggregator.merge(state, other)))
    return state


def tree_merged(aggregator: Any, parts: list[list[Item]]) -> Any:
    """As :func:`merged`, but merging neighbours pairwise (a different association)."""
    states = [fold(aggregator, part) for part in parts]
    while len(states) > 1:
        paired = [aggregator.merge(a, b) for a, b in zip(states[::2], states[1::2], strict=False)]
        states = paired + ([states[-1]] if len(states) % 2 else [])
    return decode(encode(states[0]))


def cuts(rng: random.Random, items: list[Item], max_parts: int = 4) -> list[list[Item]]:
    """``items`` cut into 1..max_parts contiguous parts (some may be empty)."""
    points = sorted(rng.randint(0, len(items)) for _ in range(rng.randint(0, max_parts - 1)))
    bounds = [0, *points, len(items)]
    return [items[a:b] for a, b in itertools.pairwise(bounds)]


def scatter(rng: random.Random, items: list[Item], parts: int = 3) -> list[list[Item]]:
    """``items`` dealt at random into ``parts`` parts, each keeping its items' arrival order."""
    out: list[list[Item]] = [[] for _ in range(parts)]
    for item in items:
        out[rng.randrange(parts)].append(item)
    return out


def records(rng: random.Random, n: int) -> list[Item]:
    """``n`` records with out-of-order, repeating event times and some missing fields."""
    names = ["ann", "bob", "cy", "dee", "eve"]
    items: list[Item] = []
    for i in range(n):
        value = {
            "id": i,
            "x": None if rng.random() < 0.1 else rng.randint(-20, 20),
            "num": rng.choice([1, 1.0, True, 2, 2.0]),  # equal values of three types
            "name": rng.choice(names),
        }
        items.append((rng.randint(0, 30), value))
    return items


def same(a: Any, b: Any) -> bool:
    """``a == b`` with the same types all the way down (``1``, ``1.0`` and ``True`` differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)
