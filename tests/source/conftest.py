from tests.pgtemp import rs_pg_database, rs_postgres_url

__all__ = ["rs_pg_database", "rs_postgres_url"]
