"""Reads about one relationship and about the mail, for the brief and the assistant.

Each ``load_*`` returns plain dicts (JSON-ready, exact text from the database);
showing them safely is the job of the surface that prints them.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlite_utils import Database

from syncagent.parse.addresses import normalize_address


def _rows(db: Database, sql: str, args: Any = ()) -> list[dict[str, Any]]:
    cur = db.execute(sql, args)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def find_contacts(db: Database, person: str) -> list[dict[str, Any]]:
    """Contacts matching ``person``: an id (``12`` or ``#12``), an address (any of theirs), else a name
    (exact, then a part of it).

    Matching is case-insensitive. Several rows mean the name is ambiguous.
    """
    text = person.strip()
    if not text:
        return []
    if text.lstrip("#").isdigit():
        return _rows(db, "SELECT * FROM contacts WHERE id = ?", [int(text.lstrip("#"))])
    if "@" in text:
        address = normalize_address(text)
        return _rows(db, "SELECT c.* FROM contacts c JOIN contact_emails e ON e.contact_id = c.id "
                         "WHERE e.address = ? ORDER BY c.id", [address]) if address else []
    exact = _rows(db, "SELECT * FROM contacts WHERE lower(name) = lower(?) ORDER BY id", [text])
    if exact:
        return exact
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return _rows(db, "SELECT * FROM contacts WHERE name LIKE ? ESCAPE '\\' ORDER BY id", [pattern])


def load_emails(db: Database, contact_id: int) -> list[str]:
    return [r[0] for r in db.execute(
        "SELECT address FROM contact_emails WHERE contact_id = ? ORDER BY position, address", [contact_id])]


def load_messages(db: Database, ids: list[int]) -> dict[int, dict[str, Any]]:
    """messages rows by id: date, direction, subject, snippet, from name and address."""
    if not ids:
        return {}
    marks = ", ".join("?" for _ in ids)
    return {r["id"]: r for r in _rows(
        db, f"SELECT id, date, direction, subject, snippet, from_address, from_name FROM messages "
            f"WHERE id IN ({marks})", list(ids))}


def load_meetings(db: Database, contact_id: int) -> list[dict[str, Any]]:
    """The contact's confirmed meetings, by start time (past and coming)."""
    return _rows(db, "SELECT m.id, m.summary, m.start_at, m.end_at, m.status FROM meetings m "
                     "JOIN meeting_contacts mc ON mc.meeting = m.id WHERE mc.contact_id = ? "
                     "AND m.status = 'confirmed' ORDER BY m.start_at, m.id", [contact_id])


def load_upcoming_meetings(db: Database, start: str, end: str) -> list[dict[str, Any]]:
    """Confirmed meetings starting in [start, end), each with the tracked contacts in it."""
    meetings = _rows(db, "SELECT id, summary, start_at, end_at FROM meetings WHERE status = 'confirmed' "
                         "AND start_at >= ? AND start_at < ? ORDER BY start_at, id", [start, end])
    for meeting in meetings:
        meeting["contacts"] = _rows(
            db, "SELECT c.id AS contact_id, c.name, c.company FROM meeting_contacts mc "
                "JOIN contacts c ON c.id = mc.contact_id WHERE mc.meeting = ? ORDER BY c.id", [meeting["id"]])
    return meetings


def load_introductions(db: Database, contact_id: int) -> list[dict[str, Any]]:
    """Introductions of or by this contact, where the database keeps them."""
    if "introductions" not in db.table_names():
        return []
    return _rows(db, "SELECT * FROM introductions WHERE contact_id = ? OR introducer_contact_id = ? "
                     "ORDER BY at", [contact_id, contact_id])


def search_messages(db: Database, query: str, limit: int) -> list[dict[str, Any]]:
    """Full-text search over subjects and snippets, best match first.

    The query is quoted word by word, so FTS syntax in it is searched for, not obeyed.
    """
    words = [w for w in query.split() if w]
    if not words:
        return []
    match = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    try:
        return _rows(db, "SELECT m.id, m.date, m.direction, m.from_name, m.from_address, m.subject, m.snippet "
                         "FROM messages_fts f JOIN messages m ON m.id = f.rowid "
                         "WHERE messages_fts MATCH ? ORDER BY rank, m.date DESC LIMIT ?", [match, limit])
    except sqlite3.OperationalError:
        return []
