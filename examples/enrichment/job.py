"""The enrichment job: each order joined with its customer, as the customer is at that time.

The topic ``customers`` (``{"id", "name", "tier"}`` keyed by the customer id) is a **table**: the
job keeps the latest value per customer (a JSON ``null`` payload deletes one). The topic
``orders`` (``{"id", "customer", "amount"}`` keyed by the customer id) is joined with it, a left
join: every order goes to ``orders-enriched`` with the customer's ``customer_name`` and ``tier``,
``null`` when the customer is unknown. Both topics have the same partition count (the join is
co-partitioned: an order is looked up beside its own partition's customers).
"""

from __future__ import annotations

from pydantic import BaseModel

from redis_streaming import Job

__all__ = [
    "CUSTOMERS",
    "JOB",
    "ORDERS",
    "OUTPUT",
    "PARTITIONS",
    "TABLE",
    "Customer",
    "EnrichedOrder",
    "Order",
    "build_job",
    "enrich",
]

JOB = "enrichment"
CUSTOMERS = "customers"
ORDERS = "orders"
OUTPUT = "orders-enriched"
TABLE = "table-customers"  # the table's state store
PARTITIONS = 4


class Customer(BaseModel):
    """One entry of ``customers``, keyed by ``id``."""

    id: str
    name: str
    tier: str


class Order(BaseModel):
    """One entry of ``orders``, keyed by ``customer``."""

    id: str
    customer: str
    amount: float


class EnrichedOrder(Order):
    """One entry of ``orders-enriched``: the order and its customer's name and tier (None when
    the customer is unknown)."""

    customer_name: str | None
    tier: str | None


def enrich(order: Order, customer: Customer | None) -> EnrichedOrder:
    """The order with ``customer``'s name and tier."""
    return EnrichedOrder(
        **order.model_dump(),
        customer_name=customer.name if customer is not None else None,
        tier=customer.tier if customer is not None else None,
    )


def build_job(partitions: int = PARTITIONS) -> Job:
    """The job ``enrichment`` (``partitions``: of its internal topics; it has none)."""
    job = Job(JOB, partitions=partitions)
    customers = job.table(CUSTOMERS, value_type=Customer)
    job.source(ORDERS, value_type=Order).join_table(customers, how="left", joiner=enrich).to(OUTPUT)
    return job
