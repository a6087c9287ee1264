"""Small named values the pipeline keeps between runs (``pipeline_state``)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from sqlite_utils import Database


def load_state(db: Database, name: str) -> str | None:
    row = db.execute("SELECT value FROM pipeline_state WHERE name = ?", [name]).fetchone()
    return None if row is None else str(row[0])


def save_state(db: Database, name: str, value: str) -> None:
    db.table("pipeline_state").upsert({"name": name, "value": value}, pk="name")


def load_stage_state(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    """A derived stage's bookmark (JSON), or None when there is none (a new database, or a migration dropped it)."""
    row = conn.execute("SELECT value FROM pipeline_state WHERE name = ?", [name]).fetchone()
    if row is None:
        return None
    value = json.loads(row[0])
    return value if isinstance(value, dict) else None


def save_stage_state(conn: sqlite3.Connection, name: str, value: dict[str, Any]) -> None:
    conn.execute("INSERT INTO pipeline_state (name, value) VALUES (?, ?) "
                 "ON CONFLICT (name) DO UPDATE SET value = excluded.value", [name, json.dumps(value)])


def load_max_message(conn: sqlite3.Connection) -> int:
    """The highest message id: rows are never deleted and a new message always gets a higher id."""
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0])
