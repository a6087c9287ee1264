"""Invitations, meetings and who was in them: the reads and writes of the meetings stage.

``invitations`` holds every VEVENT parsed from ``calendar_parts`` (one row per
event per message, in its order in the part), so a pass parses only new parts
and re-resolves only the UIDs they name. ``meeting_people`` keeps each
meeting's organizer and attendees, so ``meeting_contacts`` can follow the
contacts without parsing again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator

from syncagent.parse.calendar import Invitation

_FIELDS = ("uid", "recurrence_id", "method", "sequence", "status", "summary", "organizer", "start_at", "end_at",
           "message", "message_date")


def load_calendar_parts(conn: sqlite3.Connection, after: int = 0) -> Iterator[tuple[int, str, str]]:
    """(message, ics, message date) of the parts of messages with an id above ``after``, in message order.

    Streamed: the full pass parses every stored invitation and keeps only what it parsed.
    """
    for r in conn.execute(
            "SELECT c.message, c.ics, m.date FROM calendar_parts c JOIN messages m ON m.id = c.message "
            "WHERE c.message > ? ORDER BY c.message", [after]):
        yield int(r[0]), str(r[1]), str(r[2])


def load_calendar_part_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM calendar_parts").fetchone()[0])


def load_contacts_fingerprint(conn: sqlite3.Connection) -> str:
    """Changes whenever an address is added to a contact, moved or removed."""
    # Concatenated by SQLite (in address order, the primary key's): one row back, whatever the book's size.
    text = conn.execute("SELECT group_concat(address || ' ' || contact_id, char(10)) FROM "
                        "(SELECT address, contact_id FROM contact_emails ORDER BY address)").fetchone()[0]
    return hashlib.sha1((text or "").encode()).hexdigest()


def save_invitations(conn: sqlite3.Connection, events: Iterable[Invitation], *, replace: bool = False) -> None:
    """Store parsed events as they came (before resolving); ``replace`` drops every stored one first."""
    if replace:
        conn.execute("DELETE FROM invitations")
    position: dict[int, int] = {}
    rows = []
    for e in events:
        position[e.message] = position.get(e.message, -1) + 1
        rows.append((*(getattr(e, f) for f in _FIELDS), json.dumps(sorted(e.people)), position[e.message]))
    conn.executemany(f"INSERT INTO invitations ({', '.join(_FIELDS)}, people, position) "
                     f"VALUES ({', '.join('?' for _ in _FIELDS)}, ?, ?)", rows)


def load_invitations(conn: sqlite3.Connection, uids: Iterable[str]) -> list[Invitation]:
    """Every stored event of these UIDs, in message order and their order within a message."""
    wanted = sorted(set(uids))
    events: list[tuple[int, int, Invitation]] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT {', '.join(_FIELDS)}, people, position FROM invitations "
                                f"WHERE uid IN ({marks})", chunk):
            values = dict(zip(_FIELDS, row))
            event = Invitation(**values, people=set(json.loads(row[len(_FIELDS)])))
            events.append((event.message, int(row[-1]), event))
    events.sort(key=lambda t: (t[0], t[1]))
    return [e for _m, _p, e in events]


def load_meeting_ids(conn: sqlite3.Connection, uids: Iterable[str] | None = None) -> dict[tuple[str, str], int]:
    """(uid, recurrence_id) -> meeting id, of these UIDs (None: of every meeting)."""
    if uids is None:
        return {(str(u), str(r)): int(i) for i, u, r in conn.execute("SELECT id, uid, recurrence_id FROM meetings")}
    wanted = sorted(set(uids))
    found: dict[tuple[str, str], int] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for i, u, r in conn.execute(f"SELECT id, uid, recurrence_id FROM meetings WHERE uid IN ({marks})", chunk):
            found[(str(u), str(r))] = int(i)
    return found


def load_meeting_contacts(conn: sqlite3.Connection, meetings: Iterable[int]) -> set[int]:
    wanted = sorted(set(meetings))
    found: set[int] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        marks = ",".join("?" * len(chunk))
        found.update(int(r[0]) for r in conn.execute(
            f"SELECT contact_id FROM meeting_contacts WHERE meeting IN ({marks})", chunk))
    return found


def save_meetings(conn: sqlite3.Connection, meetings: list[Invitation], gone: Iterable[int] = ()) -> list[int]:
    """Upsert by (uid, recurrence_id), in the order given, so a meeting keeps its id; drop ``gone``.

    Each meeting's people and contacts are replaced. Returns the ids, in the order of ``meetings``.
    """
    ids: list[int] = []
    for m in meetings:
        ids.append(int(conn.execute(
            "INSERT INTO meetings (uid, recurrence_id, sequence, status, summary, organizer, start_at, end_at, message) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uid, recurrence_id) DO UPDATE SET "
            "sequence = excluded.sequence, status = excluded.status, summary = excluded.summary, "
            "organizer = excluded.organizer, start_at = excluded.start_at, end_at = excluded.end_at, "
            "message = excluded.message RETURNING id",
            [m.uid, m.recurrence_id, m.sequence, m.status, m.summary, m.organizer, m.start_at, m.end_at, m.message],
        ).fetchone()[0]))
    conn.executemany("DELETE FROM meeting_people WHERE meeting = ?", [(i,) for i in ids])
    conn.executemany("INSERT INTO meeting_people (meeting, address) VALUES (?, ?)",
                     [(i, a) for i, m in zip(ids, meetings) for a in sorted(m.people)])
    conn.executemany("DELETE FROM meetings WHERE id = ?", [(i,) for i in gone])
    save_meeting_contacts(conn, ids)
    return ids


def save_meeting_contacts(conn: sqlite3.Connection, meetings: list[int] | None = None) -> None:
    """Link these meetings (None: every meeting) to the contacts owning their people's addresses."""
    if meetings is None:
        conn.execute("DELETE FROM meeting_contacts")
        conn.execute("INSERT OR IGNORE INTO meeting_contacts (meeting, contact_id) SELECT DISTINCT p.meeting, "
                     "e.contact_id FROM meeting_people p JOIN contact_emails e ON e.address = p.address")
        return
    for start in range(0, len(meetings), 500):
        chunk = meetings[start:start + 500]
        marks = ",".join("?" * len(chunk))
        conn.execute(f"DELETE FROM meeting_contacts WHERE meeting IN ({marks})", chunk)
        conn.execute("INSERT OR IGNORE INTO meeting_contacts (meeting, contact_id) SELECT DISTINCT p.meeting, "
                     "e.contact_id FROM meeting_people p JOIN contact_emails e ON e.address = p.address "
                     f"WHERE p.meeting IN ({marks})", chunk)
