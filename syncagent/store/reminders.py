"""The ``reminders`` table's reads and writes: the derived stage's (``pipeline.reminders.apply`` and
``reconcile``), the listings' and the user's done, dismiss and snooze (``mark_many``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from typing import Any, Literal

ActiveRow = tuple[int, int, str, str, str | None, int | None]  # id, contact, kind, anchor, company, about


def load_active(conn: sqlite3.Connection, contacts: Collection[int] | None, introduced: Collection[int] | None,
                companies: Collection[str] | None) -> list[ActiveRow]:
    """The open and snoozed rows whose obligation a pass re-evaluated (None everywhere: every row).

    Turn-ledger kinds of ``contacts``, close_loops of an introducer in ``contacts`` or an
    introduced contact in ``introduced``, next_contacts of ``companies``.
    """
    sql = ("SELECT id, contact_id, kind, anchor, company, about_contact_id FROM reminders "
           "WHERE status IN ('open', 'snoozed')")
    if contacts is None:
        return [tuple(r) for r in conn.execute(sql + " ORDER BY id")]  # type: ignore[misc]
    # Three queries rather than one with OR, so each is an index lookup per holder, not a scan.
    found: dict[int, ActiveRow] = {}
    for where, values in (("contact_id IN (SELECT value FROM json_each(?)) AND kind != 'next_contact'", contacts),
                          ("kind = 'close_loop' AND about_contact_id IN (SELECT value FROM json_each(?))",
                           introduced or ()),
                          ("kind = 'next_contact' AND company IN (SELECT value FROM json_each(?))", companies or ())):
        if values:
            for row in conn.execute(f"{sql} AND {where}", [json.dumps(sorted(values))]):
                found[row[0]] = tuple(row)  # type: ignore[assignment]
    return [found[rid] for rid in sorted(found)]


def save_settled(conn: sqlite3.Connection, rows: Iterable[tuple[str, int | None, int]]) -> int:
    """Mark rows done: (resolved_at, resolved_by message or None, id)."""
    rows = list(rows)
    conn.executemany("UPDATE reminders SET status = 'done', resolved_at = ?, resolved_by = ?, snoozed_until = NULL "
                     "WHERE id = ?", rows)
    return len(rows)


OwedRow = tuple[int, str, str, str, str, int | None, str | None]  # contact, kind, anchor, due, reason, about, company


def save_owed(conn: sqlite3.Connection, rows: Iterable[OwedRow], now: str) -> int:
    """Insert a row for each obligation not stored yet; move the due time and reason of the active
    ones (settings move the due, the clock the reason's "N days ago"). Returns rows created."""
    created = 0
    for contact, kind, anchor, due, reason, about, company in rows:
        created += conn.execute(
            "INSERT INTO reminders (contact_id, kind, anchor, due_at, status, created_at, reason, "
            "about_contact_id, company) VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [contact, kind, anchor, due, now, reason, about, company]).rowcount
        conn.execute(
            "UPDATE reminders SET due_at = ?, reason = ? WHERE contact_id = ? AND kind = ? AND anchor = ? "
            "AND status IN ('open', 'snoozed') AND (due_at IS NOT ? OR reason IS NOT ?)",
            [due, reason, contact, kind, anchor, due, reason])
    return created


def save_woken(conn: sqlite3.Connection, now: str) -> int:
    """Reopen the snoozed rows whose date has come."""
    return conn.execute("UPDATE reminders SET status = 'open' WHERE status = 'snoozed' AND snoozed_until <= ?",
                        [now]).rowcount


OPEN_COLUMNS = ("id", "contact_id", "contact_name", "contact_email", "company", "kind", "due_at", "reason",
                "last_subject", "anchor", "created_at", "snoozed_until", "notified_at")


def load_open(conn: sqlite3.Connection, now: str) -> list[dict[str, object]]:
    """The stored rows open at ``now`` (snoozed ones whose date has come count as open), with the
    contact's name, company, first address and last message's subject."""
    cur = conn.execute(
        "SELECT r.id, r.contact_id, c.name, (SELECT e.address FROM contact_emails e WHERE e.contact_id = c.id "
        "ORDER BY e.position, e.address LIMIT 1), c.company, r.kind, r.due_at, r.reason, l.last_subject, r.anchor, "
        "r.created_at, r.snoozed_until, r.notified_at FROM reminders r JOIN contacts c ON c.id = r.contact_id "
        "LEFT JOIN contact_ledger l ON l.contact_id = r.contact_id "
        "WHERE r.status = 'open' OR (r.status = 'snoozed' AND r.snoozed_until <= ?) ORDER BY r.id", [now])
    return [dict(zip(OPEN_COLUMNS, row)) for row in cur.fetchall()]


def load_all(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every stored row, column name -> value."""
    cur = conn.execute("SELECT * FROM reminders")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def load_reminder(conn: sqlite3.Connection, reminder_id: int) -> dict[str, Any] | None:
    """The row ``reminder_id``, column name -> value, or None when there is none."""
    cur = conn.execute("SELECT * FROM reminders WHERE id = ?", [reminder_id])
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row))


def load_statuses(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, str]:
    """id -> status of those of ``ids`` that exist."""
    found: dict[int, str] = {}
    for start in range(0, len(ids), 500):  # SQLite's bound-variable limit
        chunk = list(ids[start:start + 500])
        found.update(conn.execute(
            f"SELECT id, status FROM reminders WHERE id IN ({', '.join('?' for _ in chunk)})", chunk).fetchall())
    return found


def save_resolved(conn: sqlite3.Connection, ids: Iterable[int], status: Literal["done", "dismissed"], at: str) -> None:
    """The user settled the rows ``ids`` at ``at`` (no message did: ``resolved_by`` is cleared)."""
    sql = {"done": "UPDATE reminders SET status = 'done', resolved_at = ?, resolved_by = NULL, "
                   "snoozed_until = NULL WHERE id = ?",
           "dismissed": "UPDATE reminders SET status = 'dismissed', resolved_at = ?, resolved_by = NULL, "
                        "snoozed_until = NULL WHERE id = ?"}[status]
    conn.executemany(sql, [(at, i) for i in ids])


def save_snoozed(conn: sqlite3.Connection, ids: Iterable[int], until: str) -> None:
    """Snooze the rows ``ids`` until ``until``."""
    conn.executemany("UPDATE reminders SET status = 'snoozed', snoozed_until = ?, resolved_at = NULL, "
                     "resolved_by = NULL WHERE id = ?", [(until, i) for i in ids])
