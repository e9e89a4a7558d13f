"""A join or table the runtime cannot run is refused where it is written, before any I/O."""

from __future__ import annotations

import pytest

from redis_streaming import InvalidArgument, Job


def test_join_asof_needs_a_table_with_versions() -> None:
    job = Job("build")
    latest_only = job.table("customers")
    with pytest.raises(InvalidArgument, match=r"job.table\('customers', versions=10\)"):
        job.source("orders").join_asof(latest_only)


@pytest.mark.parametrize("versions", [0, -1, 2.5, "3"])
def test_versions_must_be_a_positive_int(versions: object) -> None:
    with pytest.raises(InvalidArgument, match="versions must be a positive int"):
        Job("build").table("customers", versions=versions)  # type: ignore[arg-type]


def test_a_join_is_inner_or_left_with_a_function_joiner() -> None:
    job = Job("build")
    customers = job.table("customers", versions=3)
    orders = job.source("orders")
    for join in (orders.join_table, orders.join_asof):
        with pytest.raises(InvalidArgument, match="'inner' or 'left', got 'outer'"):
            join(customers, how="outer")
        with pytest.raises(InvalidArgument, match="joiner must be a function"):
            join(customers, joiner="name")  # type: ignore[arg-type]


def test_a_table_belongs_to_one_job_and_reads_its_topic_once() -> None:
    job, other = Job("build"), Job("other")
    customers = job.table("customers")
    with pytest.raises(InvalidArgument, match="a table of the same job"):
        other.source("orders").join_table(customers)
    for read_again in (lambda: job.table("customers"), lambda: job.source("customers")):
        with pytest.raises(InvalidArgument, match="reads topic 'customers' twice"):
            read_again()
