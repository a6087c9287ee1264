"""Reads of the derived per-contact figures (``contact_ledger``, the ``contact_summary`` view over it) and the ``companies`` view."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database


def load_summary_row(db: Database, contact_id: int) -> dict[str, Any]:
    """One contact's ``contact_summary`` row ({} when the contact has none)."""
    cur = db.execute("SELECT * FROM contact_summary WHERE contact_id = ?", [contact_id])
    row = cur.fetchone()
    return dict(zip([d[0] for d in cur.description], row)) if row else {}


def load_responsiveness(db: Database) -> list[str | None]:
    """Each contact's responsiveness class as the last sync derived it (None: not classed yet)."""
    return [c for (c,) in db.execute("SELECT responsiveness FROM contact_ledger")]


def count_responsiveness(db: Database) -> dict[str, int]:
    """How many contacts are in each responsiveness class (unclassed contacts are not counted)."""
    return {str(cls): int(n) for cls, n in db.execute(
        "SELECT responsiveness, count(*) FROM contact_summary WHERE responsiveness IS NOT NULL "
        "GROUP BY responsiveness").fetchall()}


_COMPANY_FIELDS = ("company", "company_key", "tracked", "reached", "replied", "reply_rate", "owed", "owed_kinds")


def load_companies(db: Database) -> list[dict[str, Any]]:
    """The stored ``companies`` view, one dict per target company."""
    cur = db.execute(f"SELECT {', '.join(_COMPANY_FIELDS)} FROM companies")
    return [dict(zip(_COMPANY_FIELDS, row)) for row in cur.fetchall()]
