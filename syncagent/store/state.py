"""Small named values the pipeline keeps between runs (``pipeline_state``)."""

from __future__ import annotations

from sqlite_utils import Database


def load_state(db: Database, name: str) -> str | None:
    row = db.execute("SELECT value FROM pipeline_state WHERE name = ?", [name]).fetchone()
    return None if row is None else str(row[0])


def save_state(db: Database, name: str, value: str) -> None:
    db.table("pipeline_state").upsert({"name": name, "value": value}, pk="name")
