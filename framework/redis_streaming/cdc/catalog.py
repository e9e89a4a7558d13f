"""What CDC needs from the PostgreSQL catalog: the publication, its tables and their primary
keys, and the replication slot. SQL only (psycopg 3 async connections)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from redis_streaming.errors import ConfigurationError, SourceError
from redis_streaming.mq.keys import NAME_PATTERN

__all__ = ["TableInfo", "create_publication", "load_tables", "require_logical", "slot_exists"]

_TABLES = """
SELECT c.oid, n.nspname, c.relname,
       array_agg(a.attname ORDER BY a.attnum), array_agg(a.atttypid::int ORDER BY a.attnum),
       (SELECT array_agg(k.attname ORDER BY array_position(i.indkey::int2[], k.attnum))
          FROM pg_index i
          JOIN pg_attribute k ON k.attrelid = i.indrelid AND k.attnum = ANY(i.indkey)
         WHERE i.indrelid = c.oid AND i.indisprimary)
  FROM pg_publication_tables p
  JOIN pg_namespace n ON n.nspname = p.schemaname
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE p.pubname = %s
 GROUP BY c.oid, n.nspname, c.relname
 ORDER BY n.nspname, c.relname
"""


@dataclass(slots=True, frozen=True)
class TableInfo:
    """A captured table: ``schema.table`` as ``name``, columns in order, primary key columns."""

    schema: str
    table: str
    columns: tuple[str, ...]
    type_oids: tuple[int, ...]
    primary_key: tuple[str, ...]

    @property
    def name(self) -> str:
        """``schema.table``."""
        return f"{self.schema}.{self.table}"


async def require_logical(conn: Any) -> None:
    """Raise ConfigurationError unless the server runs with ``wal_level=logical``."""
    cur = await conn.execute("SHOW wal_level")
    level = (await cur.fetchone())[0]
    if level != "logical":
        raise ConfigurationError(
            f"PostgreSQL runs with wal_level={level}; CDC needs wal_level=logical "
            "(ALTER SYSTEM SET wal_level = logical, then restart the server)"
        )


async def create_publication(conn: Any, publication: str, tables: list[str]) -> None:
    """Create ``publication`` for ``tables`` (``schema.table`` or ``table``) unless it exists;
    raise ConfigurationError when it does not exist and no tables are given."""
    from psycopg import sql

    cur = await conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", [publication])
    if await cur.fetchone() is not None:
        return
    if not tables:
        raise ConfigurationError(
            f"publication {publication!r} does not exist: create it (CREATE PUBLICATION "
            f"{publication} FOR TABLE ...) or pass tables=[...] to create it"
        )
    names = sql.SQL(", ").join(sql.Identifier(*t.split(".")) for t in tables)
    statement = sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
        sql.Identifier(publication), names
    )
    await conn.execute(statement)


async def load_tables(conn: Any, publication: str, topic_prefix: str) -> dict[str, TableInfo]:
    """The publication's tables by ``schema.table``; raises SourceError when the publication is
    gone, ConfigurationError for a table without a primary key or whose topic name is invalid."""
    cur = await conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", [publication])
    if await cur.fetchone() is None:
        raise SourceError(
            f"publication {publication!r} does not exist (dropped?): changes are no longer "
            "published; recreate it and reset the source (delete its position) to take a new "
            "snapshot"
        )
    cur = await conn.execute(_TABLES, [publication])
    tables = {}
    for _oid, schema, table, columns, oids, pk in await cur.fetchall():
        info = TableInfo(schema, table, tuple(columns), tuple(oids), tuple(pk or ()))
        if not info.primary_key:
            raise ConfigurationError(
                f"table {info.name} has no primary key: CDC keys messages by primary key; add "
                f"one (ALTER TABLE {info.name} ADD PRIMARY KEY (...)) or remove the table from "
                f"publication {publication!r}"
            )
        topic = f"{topic_prefix}.{schema}.{table}"
        if not re.fullmatch(NAME_PATTERN, topic):
            raise ConfigurationError(
                f"table {info.name} gives topic {topic!r}, outside [A-Za-z0-9._-]{{1,200}}: "
                "rename the table or leave it out of the publication"
            )
        tables[info.name] = info
    return tables


async def slot_exists(conn: Any, slot: str) -> bool:
    """True when the logical replication slot ``slot`` exists in this database."""
    cur = await conn.execute(
        "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND database = current_database()",
        [slot],
    )
    return await cur.fetchone() is not None
