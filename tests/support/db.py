"""One SQL statement against a database by URL, for tests and benchmarks that look at or
reset the tables a `dripper` process wrote."""

from __future__ import annotations

from typing import Any


def sql(url: str, statement: str, **params: Any) -> list[Any]:
    """Run `statement` in its own transaction; the rows it returns, if any."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()
