"""Meetings from calendar invitations (the text/calendar parts stored in ``calendar_parts``).

``rebuild(db)`` reads every stored invitation and rewrites ``meetings`` and
``meeting_contacts``, so it can run after every sync and gives the same result
each time. What an invitation says and which one wins are the pure rules of
``parse.calendar``. The ledger counts a meeting at its ``end_at`` and ignores
cancelled ones.
"""

from __future__ import annotations

import logging

from syncagent.parse.calendar import Invitation, parse_invitation, resolve, zone

log = logging.getLogger(__name__)


def rebuild(db, default_tz: str = "UTC") -> int:
    """Recompute meetings from every stored invitation in one transaction; return how many there are.

    ``default_tz`` (the config's timezone) places floating times and all-day dates.
    """
    tz = zone(default_tz)
    rows = db.execute(
        "SELECT c.message, c.ics, m.date FROM calendar_parts c JOIN messages m ON m.id = c.message ORDER BY c.message"
    ).fetchall()
    events: list[Invitation] = []
    for message, ics, message_date in rows:
        events.extend(parse_invitation(ics, message, message_date, tz))
    meetings = resolve(events)
    _write(db, meetings)
    return len(meetings)


def _write(db, meetings: list[Invitation]) -> None:
    """Upsert by (uid, recurrence_id) so meeting ids stay stable across rebuilds; drop the rest."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS _meeting_keys (uid TEXT, recurrence_id TEXT)")
        conn.execute("DELETE FROM _meeting_keys")
        conn.execute("DELETE FROM meeting_contacts")
        contacts = dict(conn.execute("SELECT address, contact_id FROM contact_emails").fetchall())
        for m in meetings:
            meeting_id = conn.execute(
                "INSERT INTO meetings (uid, recurrence_id, sequence, status, summary, organizer, start_at, end_at, message) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uid, recurrence_id) DO UPDATE SET "
                "sequence = excluded.sequence, status = excluded.status, summary = excluded.summary, "
                "organizer = excluded.organizer, start_at = excluded.start_at, end_at = excluded.end_at, "
                "message = excluded.message RETURNING id",
                [m.uid, m.recurrence_id, m.sequence, m.status, m.summary, m.organizer, m.start_at, m.end_at, m.message],
            ).fetchone()[0]
            conn.execute("INSERT INTO _meeting_keys VALUES (?, ?)", [m.uid, m.recurrence_id])
            linked = sorted({contacts[a] for a in m.people if a in contacts})
            conn.executemany(
                "INSERT OR IGNORE INTO meeting_contacts (meeting, contact_id) VALUES (?, ?)",
                [(meeting_id, c) for c in linked],
            )
        conn.execute(
            "DELETE FROM meetings WHERE NOT EXISTS (SELECT 1 FROM _meeting_keys k "
            "WHERE k.uid = meetings.uid AND k.recurrence_id = meetings.recurrence_id)"
        )
        conn.execute("DELETE FROM _meeting_keys")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
