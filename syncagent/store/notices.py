"""What was announced to the user, so each thing is announced once: ``reminders.notified_at`` and
``brief_notices`` (one row per meeting brief sent)."""

from __future__ import annotations

from typing import TypedDict

from sqlite_utils import Database

from syncagent.store.db import transaction


class DueBrief(TypedDict):
    """A tracked contact in a confirmed meeting whose brief has not been sent."""

    uid: str
    recurrence_id: str
    start_at: str
    summary: str | None
    contact_id: int
    name: str


def load_unsent_briefs(db: Database, start: str, end: str) -> list[DueBrief]:
    """(meeting, contact) pairs of the confirmed meetings starting in (start, end] with no brief sent yet."""
    rows = db.execute(
        "SELECT m.uid, m.recurrence_id, m.start_at, m.summary, c.id, c.name FROM meetings m "
        "JOIN meeting_contacts mc ON mc.meeting = m.id JOIN contacts c ON c.id = mc.contact_id "
        "WHERE m.status = 'confirmed' AND m.start_at > ? AND m.start_at <= ? "
        "AND NOT EXISTS (SELECT 1 FROM brief_notices b WHERE b.uid = m.uid AND b.recurrence_id = m.recurrence_id "
        "AND b.start_at = m.start_at AND b.contact_id = c.id) ORDER BY m.start_at, c.id",
        [start, end],
    ).fetchall()
    return [{"uid": uid, "recurrence_id": rid, "start_at": at, "summary": summary, "contact_id": cid, "name": name}
            for uid, rid, at, summary, cid, name in rows]


def save_brief_sent(db: Database, brief: DueBrief, sent_at: str) -> None:
    """Record that this meeting's brief about this contact went out (a second record is ignored)."""
    db.table("brief_notices").insert(
        {"uid": brief["uid"], "recurrence_id": brief["recurrence_id"], "start_at": brief["start_at"],
         "contact_id": brief["contact_id"], "sent_at": sent_at}, ignore=True)


def save_reminders_notified(db: Database, ids: list[int], at: str) -> None:
    """Record that these reminders were announced at ``at``."""
    with transaction(db, "notified") as conn:
        conn.executemany("UPDATE reminders SET notified_at = ? WHERE id = ?", [(at, i) for i in ids])
