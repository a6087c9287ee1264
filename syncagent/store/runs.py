"""The record of sync passes (``sync_runs``): when each ran, how it ended, what it brought."""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from sqlite_utils import Database


class Run(NamedTuple):
    started_at: str
    finished_at: str | None
    status: str  # running | ok | failed | interrupted
    new_messages: int | None
    error: str | None
    notes: str | None  # warnings of a pass that still succeeded, one a line


def load_last_run(db: Database, account: str) -> Run | None:
    """The account's latest pass, or None if it never synced.

    Works on a database not migrated yet (doctor never migrates): an older one has no ``notes``.
    """
    notes = "notes" if "notes" in db.table("sync_runs").columns_dict else "NULL"
    row = db.execute(f"SELECT started_at, finished_at, status, new_messages, error, {notes} FROM sync_runs "
                     "WHERE account = ? ORDER BY id DESC LIMIT 1", [account]).fetchone()
    return None if row is None else Run(*row)


def save_stale_runs_interrupted(db: Database | sqlite3.Connection, at: str) -> None:
    """Mark every pass still 'running' as interrupted at ``at`` (call it only holding the sync lock)."""
    db.execute(
        "UPDATE sync_runs SET status = 'interrupted', finished_at = ?, "
        "error = 'stopped before the end; the next sync continues from the last commit' WHERE status = 'running'",
        [at],
    )
