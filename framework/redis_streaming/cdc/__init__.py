"""PostgreSQL change data capture (docs/cdc.md): logical decoding with the built-in ``pgoutput``
plugin over a publication, read through SQL functions, after an initial snapshot with no gap and
no duplicate; run by a :class:`~redis_streaming.source.SourceRunner`, exactly once into one
topic per table (``pg.<schema>.<table>``), keyed by primary key. Needs the ``postgres`` extra.
"""

from redis_streaming.cdc.changes import format_lsn
from redis_streaming.cdc.snapshot import Visibility
from redis_streaming.cdc.source import PostgresCdcSource

__all__ = ["PostgresCdcSource", "Visibility", "format_lsn"]
