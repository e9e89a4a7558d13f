"""The operator's commands (docs/cli.md): produce, tail, groups reset, topics add-partitions,
and ``--json`` anywhere on the line; each against the suite's real server."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from redis_streaming import Admin, Consumer, Message, partition_for_key
from redis_streaming_starter.cli import main
from tests.helpers import fast_mq, wait_until
from tests.starter.support import clean_env, cli

T0 = 1_700_000_000_000  # entry ids of the hand-made streams: T0 + n ms


@pytest.fixture
def client(rs_server_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(rs_server_url)
    yield c
    c.close()


def stream(ns: str, topic: str, partition: int) -> str:
    return f"{ns}:stream:{{{topic}:{partition}}}"


def add(client: redis.Redis, ns: str, topic: str, partition: int, n: int, payload: str = "") -> str:
    """A text entry with id ``T0+n-0`` on the partition; returns the id."""
    fields = {"payload": payload or f"m{n}", "content_type": "text/plain", "ts": T0 + n}
    return client.xadd(stream(ns, topic, partition), fields, id=f"{T0 + n}-0").decode()  # type: ignore[arg-type, union-attr]


def groups_of(client: redis.Redis, ns: str, topic: str, partitions: int) -> list[Any]:
    return [client.xinfo_groups(stream(ns, topic, p)) for p in range(partitions)]


def lines(out: str) -> list[str]:
    return out.splitlines()


# -- produce ----------------------------------------------------------------------------------


def test_produce_sends_json_as_json_and_the_rest_as_text(
    cli_env: str, capsys: pytest.CaptureFixture[str], client: redis.Redis
) -> None:
    assert cli(capsys, "topics", "create", "t", "-p", "3")[0] == 0
    code, out, err = cli(capsys, "produce", "t", '{"id": 1}', "--key", "k",
                         "--header", "a=1", "--header", "b=x=y")  # fmt: skip
    assert (code, err) == (0, "")
    p = partition_for_key("k", 3)
    ((entry_id, fields),) = client.xrange(stream(cli_env, "t", p))
    assert out == f"partition {p}  {entry_id.decode()}\n"
    assert fields[b"content_type"] == b"application/json"
    assert json.loads(fields[b"payload"]) == {"id": 1}
    assert fields[b"key"] == b"k"
    assert json.loads(fields[b"headers"]) == {"a": "1", "b": "x=y"}

    sent = {}
    for argv in (("hello",), ("42",), ("[1, 2]",), ("42", "--content-type", "json"),
                 ('{"a": 1}', "--content-type", "text")):  # fmt: skip
        code, out, _ = cli(capsys, "--json", "produce", "t", *argv, "--key", "same")
        assert code == 0
        result = json.loads(out)
        assert result["topic"] == "t"
        sent[argv] = client.xrange(stream(cli_env, "t", result["partition"]), result["id"])[0][1]
    assert sent[("hello",)][b"content_type"] == b"text/plain"
    assert sent[("42",)][b"content_type"] == b"text/plain"  # auto: objects and arrays are JSON
    assert sent[("[1, 2]",)][b"content_type"] == b"application/json"
    assert sent[("42", "--content-type", "json")][b"content_type"] == b"application/json"
    forced_text = sent[('{"a": 1}', "--content-type", "text")]
    assert (forced_text[b"content_type"], forced_text[b"payload"]) == (b"text/plain", b'{"a": 1}')

    code, _, err = cli(capsys, "produce", "t", "nope", "--content-type", "json")
    assert code == 2
    assert "not valid JSON" in err
    assert "--content-type text" in err
    code, _, err = cli(capsys, "produce", "t", "x", "--header", "novalue")
    assert code == 2
    assert "name=value" in err


def test_produce_sends_one_message_per_stdin_line(
    cli_env: str, capsys: pytest.CaptureFixture[str], client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    cli(capsys, "topics", "create", "t", "-p", "2")
    monkeypatch.setattr(sys, "stdin", io.StringIO('first\n{"n": 2}\n\n  \nlast line\r\n'))
    code, out, err = cli(capsys, "produce", "t", "--json")
    assert (code, err) == (0, "")
    results = [json.loads(line) for line in lines(out)]
    assert len(results) == 3  # blank lines are skipped
    payloads = [
        client.xrange(stream(cli_env, "t", r["partition"]), r["id"])[0][1][b"payload"]
        for r in results
    ]
    assert payloads == [b"first", b'{"n":2}', b"last line"]  # JSON is sent as JSON

    monkeypatch.setattr(sys, "stdin", io.StringIO('{"ok": 1}\nbad\n{"never": 3}\n'))
    code, out, err = cli(capsys, "produce", "t", "--content-type", "json")
    assert code == 2
    assert "line 2 is not valid JSON" in err
    # It stops at the bad line; the lines before it may have gone (each printed), none after.
    assert len(lines(out)) <= 1
    total = sum(client.xlen(stream(cli_env, "t", p)) for p in range(2))
    assert total == 3 + len(lines(out))


def test_produce_to_an_unknown_topic(
    cli_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_STREAMING_MQ__AUTO_CREATE_TOPICS", "false")
    code, out, err = cli(capsys, "produce", "nope", "x")
    assert (code, out) == (1, "")
    assert "does not exist" in err
    assert "topics create nope" in err
    assert cli(capsys, "topics", "list")[1] == "(no topics)\n"

    monkeypatch.setenv("REDIS_STREAMING_MQ__AUTO_CREATE_TOPICS", "true")
    monkeypatch.setenv("REDIS_STREAMING_MQ__DEFAULT_PARTITIONS", "2")
    code, out, err = cli(capsys, "produce", "fresh", "x")
    assert code == 0
    assert out.startswith("partition ")
    assert "topic 'fresh' did not exist; created it with 2 partitions" in err


# -- tail -------------------------------------------------------------------------------------


def test_tail_merges_the_partitions_in_id_order_without_joining_a_group(
    cli_env: str, capsys: pytest.CaptureFixture[str], client: redis.Redis
) -> None:
    cli(capsys, "topics", "create", "t", "-p", "3")
    client.xgroup_create(stream(cli_env, "t", 0), "g", id="0", mkstream=True)
    # Uneven partitions over more than one page (500 per partition): partition 1 covers twice
    # the time of partition 0 in as many entries.
    pipe = client.pipeline(transaction=False)
    for n in range(1, 701):
        pipe.xadd(stream(cli_env, "t", 0), {"payload": f"a{n}", "ts": T0 + n}, id=f"{T0 + n}-0")
        pipe.xadd(stream(cli_env, "t", 1), {"payload": f"b{n}", "ts": T0}, id=f"{T0 + 2 * n}-1")
    pipe.execute()
    bad = client.xadd(stream(cli_env, "t", 2), {"payload": b"{not json\n", "content_type":
                      "application/json", "key": "k"}, id=f"{T0 + 1}-5").decode()  # fmt: skip
    keys_before = sorted(client.keys(f"{cli_env}:*"))
    groups_before = groups_of(client, cli_env, "t", 3)

    code, out, err = cli(capsys, "tail", "t")
    assert (code, err) == (0, "")
    shown = [line.split("  ")[:2] for line in lines(out)]
    assert len(shown) == 1401
    order = [(*tuple(map(int, i.split("-"))), int(p)) for p, i in shown]
    assert order == sorted(order)
    assert lines(out)[1] == f"2  {bad}  k  -  {{not json\\n"  # undecodable: its raw bytes

    code, out, _ = cli(capsys, "tail", "t", "--json", "--partition", "2")
    (only,) = map(json.loads, lines(out))
    assert (only["partition"], only["content_type"], only["payload"]) == (
        2, "application/octet-stream", "e25vdCBqc29uCg==")  # fmt: skip

    assert sorted(client.keys(f"{cli_env}:*")) == keys_before
    assert groups_of(client, cli_env, "t", 3) == groups_before  # no group, no consumer


def test_tail_from_a_position_partition_and_limit(
    cli_env: str, capsys: pytest.CaptureFixture[str], client: redis.Redis
) -> None:
    cli(capsys, "topics", "create", "t", "-p", "2")
    ids = [add(client, cli_env, "t", n % 2, n) for n in range(1, 7)]

    def shown(*argv: str) -> list[str]:
        code, out, err = cli(capsys, "tail", "t", *argv)
        assert (code, err) == (0, "")
        return [line.split("  ")[1] for line in lines(out)]

    assert shown() == ids
    assert shown("--from", "earliest", "--limit", "2") == ids[:2]
    assert shown("--from", "latest") == []
    assert shown("--from", ids[3]) == ids[3:]  # an id: from that entry on
    assert shown("--from", str(T0 + 3)) == ids[2:]  # epoch ms: the first entry at or after it
    iso = datetime.fromtimestamp((T0 + 5) / 1000, UTC).isoformat()
    assert shown("--from", iso) == ids[4:]
    assert shown("--partition", "1") == ids[::2]
    code, out, err = cli(capsys, "--json", "tail", "t", "--limit", "1")
    assert json.loads(out)["payload"] == "m1"

    for argv, words in [
        (("--from", "yesterday"), "ISO-8601"),
        (("--from", "1700000000"), "epoch milliseconds"),
        (("--partition", "5"), "partitions 0..1"),
        (("--group", "g", "--from", "earliest"), "pass one of them"),
        (("--limit", "0"), "--limit"),
    ]:
        code, out, err = cli(capsys, "tail", "t", *argv)
        assert (code, out) == (2, ""), argv
        assert words in err
    code, _, err = cli(capsys, "tail", "nope")
    assert code == 1
    assert "does not exist" in err


def test_tail_group_shows_what_the_group_has_not_read_and_leaves_it_alone(
    cli_env: str, capsys: pytest.CaptureFixture[str], client: redis.Redis
) -> None:
    cli(capsys, "topics", "create", "t", "-p", "2")
    ids = [add(client, cli_env, "t", n % 2, n) for n in range(1, 9)]
    # The group has read up to ids[4] on partition 1 and ids[1] on partition 0 (one pending).
    client.xgroup_create(stream(cli_env, "t", 1), "g", id=ids[4])
    client.xgroup_create(stream(cli_env, "t", 0), "g", id="0")
    client.xreadgroup("g", "c1", {stream(cli_env, "t", 0): ">"}, count=1)
    before = groups_of(client, cli_env, "t", 2)

    code, out, err = cli(capsys, "tail", "t", "--group", "g")
    assert (code, err) == (0, "")
    assert [line.split("  ")[1] for line in lines(out)] == [ids[3], ids[5], ids[6], ids[7]]
    assert groups_of(client, cli_env, "t", 2) == before  # position, pending, consumers as were

    code, _, err = cli(capsys, "tail", "t", "--group", "typo")
    assert code == 1
    assert "group 'typo' has no position on topic 't'" in err
    assert "groups: g" in err


def test_tail_follow_prints_new_messages_until_signalled(
    rs_server_url: str, rs_namespace: str, client: redis.Redis
) -> None:
    env = clean_env(REDIS_STREAMING_REDIS__URL=rs_server_url,
                    REDIS_STREAMING_MQ__NAMESPACE=rs_namespace,
                    REDIS_STREAMING_MQ__BLOCK_MS="300")  # fmt: skip
    client.hset(f"{rs_namespace}:topic:{{t}}", mapping={"partitions": 2, "created_ms": 1})
    payloads = ["before"]
    add(client, rs_namespace, "t", 0, 1, "before")
    cmd = [sys.executable, "-m", "redis_streaming_starter.cli", "tail", "t", "--follow", "--json"]
    for n, sig in enumerate((signal.SIGTERM, signal.SIGINT), start=10):
        proc = subprocess.Popen([*cmd, "--from", "earliest"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert proc.stdout is not None
            for payload in payloads:  # what was there, then what comes while it runs
                assert json.loads(proc.stdout.readline())["payload"] == payload
            with pytest.raises(subprocess.TimeoutExpired):  # nothing new (3 reads): it waits on
                proc.wait(timeout=1)
            sent = add(client, rs_namespace, "t", 1, n, f"after {sig.name}")
            line = json.loads(proc.stdout.readline())
            assert (line["id"], line["partition"]) == (sent, 1)
            payloads.append(line["payload"])
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert (proc.returncode, err) == (0, ""), sig.name
    assert payloads == ["before", "after SIGTERM", "after SIGINT"]


# -- groups reset -----------------------------------------------------------------------------


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The command line in a thread (it runs its own event loop), from an async test."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_groups_reset_refuses_while_a_consumer_owns_partitions(
    cli_env: str, capsys: pytest.CaptureFixture[str], rs_redis: Any
) -> None:
    assert (await run_cli(capsys, "topics", "create", "t", "-p", "2"))[0] == 0
    for n in range(4):
        assert (await run_cli(capsys, "produce", "t", f"m{n}", "--key", str(n)))[0] == 0
    admin = Admin(rs_redis, fast_mq(cli_env))
    seen: list[str] = []

    async def handle(message: Message) -> None:
        seen.append(message.id)

    async def owners() -> set[str]:
        info = await admin.describe_topic("t")
        return {g.owner for p in info.partitions for g in p.groups if g.owner}

    async def owned_by(consumer: str) -> bool:
        return await owners() == {consumer}

    async def positions() -> list[str]:
        info = await admin.describe_topic("t")
        return [g.last_delivered_id for p in info.partitions for g in p.groups]

    consumer = Consumer(rs_redis, fast_mq(cli_env), consumer_id="worker-1")
    consumer.subscribe("t", handle, group="g")
    async with consumer:
        await wait_until(lambda: len(seen) == 4, what="the consumer to handle the 4 messages")
        await wait_until(lambda: owned_by("worker-1"), what="worker-1 to own both partitions")
        read = await positions()
        code, out, err = await run_cli(capsys, "groups", "reset", "t", "g", "--to", "earliest")
        assert (code, out) == (1, "")
        assert len(lines(err)) == 1
        assert "group 'g' is active on topic 't'" in err
        assert "consumer worker-1 owns partitions 0, 1" in err
        assert "--force" in err
        assert await positions() == read

        code, out, err = await run_cli(capsys, "groups", "reset", "t", "g", "--to", "earliest",
                                       "--force")  # fmt: skip
        assert (code, err) == (0, "")
        assert "forced while active: consumer worker-1 owns partitions 0, 1" in out
        assert "partition 0: position" in out
        assert "-> 0-0" in out
        await wait_until(lambda: len(seen) == 8, what="the running consumer to read them again")
    assert await owners() == set()  # a stopped consumer gives its leases back
    code, out, err = await run_cli(capsys, "--json", "groups", "reset", "t", "g", "--to", "latest")
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert (result["forced"], result["owners"]) == (False, {})
    assert [p["after"] for p in result["partitions"]] == await positions() == read
    assert [p["lag_after"] for p in result["partitions"]] == [0, 0]


def test_groups_reset_to_an_id_or_a_time(
    cli_env: str, capsys: pytest.CaptureFixture[str], client: redis.Redis
) -> None:
    cli(capsys, "topics", "create", "t", "-p", "2")
    ids = [add(client, cli_env, "t", n % 2, n) for n in range(1, 9)]
    for p in range(2):
        client.xgroup_create(stream(cli_env, "t", p), "g", id="$")

    def tail_group() -> list[str]:
        return [line.split("  ")[1] for line in lines(cli(capsys, "tail", "t", "--group", "g")[1])]

    assert tail_group() == []
    code, out, err = cli(capsys, "groups", "reset", "t", "g", "--to", ids[5])
    assert (code, err) == (0, "")
    assert tail_group() == ids[5:]  # an id: the group reads that entry next
    assert f"partition 0: position {ids[7]} -> {T0 + 5}-18446744073709551615, lag 0 -> 2" in out

    iso = datetime.fromtimestamp((T0 + 3) / 1000, UTC).isoformat().replace("+00:00", "Z")
    code, out, _ = cli(capsys, "groups", "reset", "t", "g", "--to", iso, "--partition", "1")
    assert code == 0
    assert f"reset to {iso} ({T0 + 3} ms)" in out
    assert "partition 0" not in out
    assert tail_group() == [ids[2], ids[4], *ids[5:]]  # partition 1 from T0+3, partition 0 as was

    code, out, _ = cli(capsys, "--json", "groups", "reset", "t", "g", "--to", str(T0 + 7))
    assert [p["after"] for p in json.loads(out)["partitions"]] == [ids[5], ids[4]]
    assert tail_group() == ids[6:]

    code, _, err = cli(capsys, "groups", "reset", "t", "typo", "--to", "earliest")
    assert code == 1
    assert "group 'typo' has no position" in err
    code, _, err = cli(capsys, "groups", "reset", "t", "g", "--to", "soon")
    assert code == 2
    assert "--to 'soon'" in err
    code, _, err = cli(capsys, "groups", "reset", "nope", "g", "--to", "earliest")
    assert code == 1
    assert "does not exist" in err


# -- topics add-partitions, --json ------------------------------------------------------------


def test_topics_add_partitions_takes_the_new_total(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(capsys, "topics", "create", "t", "-p", "2")
    assert cli(capsys, "topics", "add-partitions", "t", "3") == (
        0,
        "topic t: 2 -> 3 partitions\n",
        "",
    )
    code, out, _ = cli(capsys, "topics", "add-partitions", "t", "5", "--json")
    assert (code, json.loads(out)) == (0, {"topic": "t", "partitions_before": 3, "partitions": 5})
    code, _, err = cli(capsys, "topics", "add-partitions", "t", "2")
    assert code == 2
    assert "already has 5 partitions" in err
    assert "above 5" in err
    code, _, err = cli(capsys, "topics", "add-partitions", "nope", "4")
    assert code == 1
    assert "does not exist" in err


@pytest.mark.parametrize(
    "argv",
    [
        ("--json", "topics", "describe", "t"),
        ("topics", "describe", "t", "--json"),
        ("topics", "--json", "describe", "t"),
        ("dlq", "list", "t", "--json"),
        ("health", "--json"),
        ("tail", "t", "--json"),
    ],
)
def test_json_is_accepted_anywhere_on_the_line(
    cli_env: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    cli(capsys, "topics", "create", "t", "-p", "1")
    cli(capsys, "produce", "t", "{}")
    code, out, err = cli(capsys, *argv)
    assert (code, err) == (0, "")
    assert json.loads(out) is not None
    code, out, _ = cli(capsys, *[a for a in argv if a != "--json"])
    assert code == 0
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
