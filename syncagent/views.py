"""Views declared as data and (re)created idempotently after migrations."""

from __future__ import annotations

# name -> SELECT. Views only read tables, so replacing them is always safe.
VIEWS: dict[str, str] = {}


def ensure(db) -> None:
    current = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'").fetchall())
    for name, select in VIEWS.items():
        wanted = f"CREATE VIEW {name} AS {select}"
        if current.get(name) != wanted:
            with db.conn:
                db.execute(f"DROP VIEW IF EXISTS {name}")
                db.execute(wanted)
