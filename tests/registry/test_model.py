"""Registry values without Redis: instance validation, options, filters, strategies."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from pydantic import ValidationError

from redis_streaming.errors import ConfigurationError, InvalidName
from redis_streaming.registry import (
    ConsistentHash,
    RegistryKeys,
    RegistryOptions,
    RoundRobin,
    ServiceEvent,
    ServiceEventType,
    ServiceInstance,
    WeightedRandom,
)
from redis_streaming.registry._filters import compile_filters, matches
from redis_streaming.registry._probes import probe_target
from tests.registry.support import inst

BAD_NAMES = ["orders service", "a:b", "{orders}", "", "x" * 201, "zürich", "a/b", "a*"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_service_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidName, match="invalid service name") as info:
        ServiceInstance(name, "i1", "127.0.0.1", 8000)
    message = str(info.value)
    assert "A-Z, a-z, 0-9, '.', '_' and '-'" in message
    assert repr(name) in message


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_instance_ids_are_refused(name: str) -> None:
    with pytest.raises(InvalidName, match="invalid instance name") as info:
        ServiceInstance("orders", name, "127.0.0.1", 8000)
    assert "A-Z, a-z, 0-9" in str(info.value)


def test_good_names_and_defaults() -> None:
    i = ServiceInstance("orders-v2.eu_1", "host-1.pod_7", "10.0.0.1", 8080)
    assert (i.protocol, i.weight, i.healthy, i.ephemeral, i.metadata) == (
        "http",
        100,
        True,
        True,
        {},
    )
    assert i.url == "http://10.0.0.1:8080"
    assert ServiceInstance("s", "i", "::1", 80, protocol="HTTPS").url == "https://[::1]:80"
    assert i.key == ("orders-v2.eu_1", "host-1.pod_7")
    assert hash(i) == hash(i.replace(weight=5))  # hashed by identity, compared by every field
    assert i != i.replace(weight=5)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"port": 0}, "use 1 to 65535"),
        ({"port": "80"}, "port must be an int"),
        ({"host": ""}, "host"),
        ({"host": "http://x"}, "without scheme"),
        ({"weight": -1}, "weight"),
        ({"protocol": "h t"}, "protocol"),
        ({"metadata": {"a": 1}}, "str value"),
        ({"healthy": "yes"}, "healthy must be a bool"),
    ],
)
def test_bad_instance_fields_are_refused(changes: dict[str, object], match: str) -> None:
    fields: dict[str, object] = {"service": "s", "instance_id": "i", "host": "h", "port": 1}
    with pytest.raises(ConfigurationError, match=match):
        ServiceInstance(**{**fields, **changes})  # type: ignore[arg-type]


def test_metadata_is_copied() -> None:
    meta = {"region": "eu"}
    i = inst("a", metadata=meta)
    meta["region"] = "us"
    assert i.metadata == {"region": "eu"}


def test_fields_round_trip_and_events() -> None:
    from redis_streaming.registry.instance import instance_from_fields

    i = inst("a", metadata={"region": "eu", "x": "é"}, weight=7, healthy=False, ephemeral=False)
    fields = {k.encode(): v.encode() for k, v in i.to_fields().items()}
    assert instance_from_fields(fields) == i
    assert instance_from_fields({b"service": b"s"}) is None  # unusable hash: skipped
    event = ServiceEvent.from_json(
        '{"type":"REMOVED","service":"orders","instance_id":"a","ts":5,"instance":{}}'
    )
    assert event == ServiceEvent(ServiceEventType.REMOVED, "orders", "a", None, 5)
    assert ServiceEvent.from_json("not json") is None


def test_key_layout_shares_one_slot_per_service() -> None:
    from redis.crc import key_slot

    keys = RegistryKeys("rs")
    assert keys.names == "rs:svc:names"
    assert keys.instances("orders") == "rs:svc:{orders}:instances"
    assert keys.instance("orders", "a-1") == "rs:svc:{orders}:i:a-1"
    assert keys.events("orders") == "rs:svc:{orders}:events"
    slots = {key_slot(k.encode()) for k in (keys.instances("orders"), keys.instance("orders", "x"))}
    assert slots == {key_slot(b"orders")}


def test_options_timing_rules() -> None:
    RegistryOptions(ttl_s=2, heartbeat_interval_s=1)
    with pytest.raises(ValidationError, match=r"heartbeat_interval_s .* at most half of ttl_s"):
        RegistryOptions(ttl_s=2, heartbeat_interval_s=1.5)
    with pytest.raises(ValidationError, match="health_check_timeout_s"):
        RegistryOptions(health_check_interval_s=1, health_check_timeout_s=2)
    with pytest.raises(ValidationError, match="invalid namespace name"):
        RegistryOptions(namespace="my app")
    with pytest.raises(ValidationError, match="must start with '/'"):
        RegistryOptions(health_check_path="health")


# -- filters ---------------------------------------------------------------------------------


def test_filter_semantics() -> None:
    a = inst("a", weight=100, metadata={"region": "eu", "status": "up", "version": "10"})
    b = inst("b", weight=50, metadata={"region": "us"})
    c = inst("c", weight=80, healthy=False, metadata={"region": "eu", "weight": "1"})

    def ids(filters: dict[str, str | int | bool]) -> list[str]:
        compiled = compile_filters(filters)
        return [i.instance_id for i in (a, b, c) if matches(i, compiled)]

    assert ids({"weight:>=": "80"}) == ["a", "c"]
    assert ids({"weight:>": 80}) == ["a"]
    assert ids({"region": "eu"}) == ["a", "c"]
    assert ids({"region:==": "eu", "weight:<": "90"}) == ["c"]
    assert ids({"status:!=": "up"}) == ["b", "c"]  # a missing key satisfies != (as k8s)
    assert ids({"status": "up"}) == ["a"]  # ... and nothing else
    assert ids({"version:>": "9"}) == ["a"]  # numeric: 10 > 9 (as strings "10" < "9")
    assert ids({"region:>": "f"}) == ["b"]  # strings compare as strings
    assert ids({"healthy": False}) == ["c"]
    assert ids({"metadata.weight": "1"}) == ["c"]  # the metadata key, not the field
    assert ids({"port": 8000, "protocol": "http", "host": "127.0.0.1"}) == ["a", "b", "c"]


@pytest.mark.parametrize("key", ["weight:=>", "weight:gte", "zone:a", "weight:"])
def test_bad_filter_operator_names_the_allowed_ones(key: str) -> None:
    with pytest.raises(ValueError, match="use one of == != > >= < <="):
        compile_filters({key: "1"})


def test_filter_without_field() -> None:
    with pytest.raises(ValueError, match="names no field"):
        compile_filters({":==": "1"})


# -- strategies ------------------------------------------------------------------------------


def test_round_robin_is_even() -> None:
    rr, pool = RoundRobin(), [inst("c"), inst("a"), inst("b")]
    picks = [rr.choose("orders", pool) for _ in range(300)]
    assert Counter(p.instance_id for p in picks if p) == {"a": 100, "b": 100, "c": 100}
    assert [p.instance_id for p in picks[:4] if p] == ["a", "b", "c", "a"]
    assert rr.choose("orders", []) is None


def test_weighted_follows_weights_and_skips_zero() -> None:
    pool = [inst("a", weight=100), inst("b", weight=50), inst("c", weight=25), inst("d", weight=0)]
    w = WeightedRandom(random.Random(7))
    counts = Counter(p.instance_id for p in (w.choose("orders", pool) for _ in range(10_000)) if p)
    for i in pool:
        expected = 10_000 * i.weight / 175
        assert abs(counts[i.instance_id] - expected) <= 0.1 * expected, counts
    assert w.choose("orders", [inst("z", weight=0)]) is None


def test_consistent_hash_is_stable_and_moves_few_keys() -> None:
    pool = [inst(f"i{n}") for n in range(4)]
    ring = ConsistentHash()
    keys = [f"user-{n}" for n in range(10_000)]
    before = {k: ring.choose("orders", pool, k) for k in keys}
    other = ConsistentHash()  # another process: same ring, whatever the order of instances
    assert before == {k: other.choose("orders", pool[::-1], k) for k in keys}
    shares = Counter(i.instance_id for i in before.values() if i)
    assert min(shares.values()) > 10_000 / 4 * 0.7, shares  # virtual nodes keep shares even
    grown = [*pool, inst("i4")]
    after = {k: ring.choose("orders", grown, k) for k in keys}
    moved = [k for k in keys if after[k] != before[k]]
    assert all(after[k] == grown[-1] for k in moved)  # keys only move to the new instance
    assert 0.1 < len(moved) / len(keys) < 0.3  # about 1/5 of them
    with pytest.raises(ValueError, match="needs a key"):
        ring.choose("orders", pool, None)


def test_probe_target_rules() -> None:
    path = "/actuator/health"
    assert probe_target(inst("a"), path) == ("http", "http://127.0.0.1:8000/actuator/health")
    assert probe_target(inst("a", protocol="https"), path) == (
        "http",
        "https://127.0.0.1:8000/actuator/health",
    )
    assert probe_target(inst("a", protocol="grpc"), path) == ("tcp", "")
    assert probe_target(inst("a", metadata={"health_url": "http://x/h"}), path) == (
        "http",
        "http://x/h",
    )
    assert probe_target(inst("a", metadata={"health_check": "tcp"}), path) == ("tcp", "")
    assert probe_target(inst("a", metadata={"health_check": "none"}), path) is None
    assert probe_target(inst("a", protocol="tcp", metadata={"health_check": "http"}), path) == (
        "http",
        "http://127.0.0.1:8000/actuator/health",
    )
