"""How many candidates a study database holds, read by another connection while (or after) a
search writes it: its ``COMPLETE`` trials and the candidates of a single writer's candidate table
(:mod:`nasforge.strategies.storage._candidate_table`)."""

from __future__ import annotations

from nasforge.strategies.storage._candidate_table import TABLE_NAME


def completed(url: str) -> int:
    """Completed candidates in the database at ``url`` (an SQLAlchemy URL of SQLite or a
    server); -1 when it cannot be read (no schema yet, the server down)."""
    from sqlalchemy import create_engine
    from sqlalchemy import inspect
    from sqlalchemy import text

    from nasforge.strategies.storage.url import _with_driver

    engine = create_engine(_with_driver(url, url))
    try:
        with engine.connect() as con:
            n = int(con.execute(text(
                "select count(*) from trials where state = 'COMPLETE'")).scalar() or 0)
            if inspect(con).has_table(TABLE_NAME):
                n += int(con.execute(text(  # a row holds n candidates (NULL: one)
                    f"select sum(coalesce(n, 1)) from {TABLE_NAME}")).scalar() or 0)
            return n
    except Exception:  # no schema yet, or the server is down
        return -1
    finally:
        engine.dispose()
