"""Meetings from calendar invitations (the text/calendar parts stored in ``calendar_parts``).

``rebuild(db)`` reads every stored invitation and rewrites ``meetings`` and
``meeting_contacts``, so it can run after every sync and gives the same result
each time. Per event (UID, RECURRENCE-ID) the invitation with the highest
SEQUENCE wins (a tie goes to the later message); a CANCEL with a sequence at
least as high (or STATUS:CANCELLED) marks the meeting ``cancelled``, and every
other meeting is ``confirmed``. The ledger counts a meeting at its ``end_at``
and ignores cancelled ones.

Recurring events: a master event with an RRULE is one meeting, its first
occurrence (DTSTART of the master). Occurrences are not expanded, so a weekly
call does not turn into a meeting every week in the ledger; an occurrence that
was moved or cancelled on its own arrives with a RECURRENCE-ID and becomes its
own row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo

from syncagent.parse.addresses import normalize_address
from syncagent.timeutil import iso

log = logging.getLogger(__name__)


@dataclass
class Event:
    """One VEVENT as one message carried it."""

    uid: str
    recurrence_id: str
    method: str  # "REQUEST" (also PUBLISH or no METHOD) | "CANCEL"
    sequence: int
    status: str
    summary: str | None
    organizer: str | None
    start_at: str | None
    end_at: str | None
    message: int
    message_date: str
    people: set[str] = field(default_factory=set)


def rebuild(db, default_tz: str = "UTC") -> int:
    """Recompute meetings from every stored invitation in one transaction; return how many there are.

    ``default_tz`` (the config's timezone) places floating times and all-day dates.
    """
    tz = _zone(default_tz)
    rows = db.execute(
        "SELECT c.message, c.ics, m.date FROM calendar_parts c JOIN messages m ON m.id = c.message ORDER BY c.message"
    ).fetchall()
    events: list[Event] = []
    for message, ics, message_date in rows:
        events.extend(parse_invitation(ics, message, message_date, tz))
    meetings = resolve(events)
    _write(db, meetings)
    return len(meetings)


def _zone(name: str) -> tzinfo:
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    except Exception:  # an unknown name was already reported by config; UTC keeps the stage running
        log.warning("unknown time zone %r for calendar times; using UTC", name)
        return timezone.utc


def parse_invitation(ics: str, message: int, message_date: str, tz: tzinfo = timezone.utc) -> list[Event]:
    """The VEVENTs of one text/calendar part; malformed input logs a warning and yields what it can."""
    import icalendar

    try:
        calendar = icalendar.Calendar.from_ical(ics)
    except Exception as exc:  # icalendar raises ValueError and friends on broken input
        # icalendar's messages quote the sender's content lines: those go to the debug log only.
        log.warning("message %s: calendar invitation cannot be read (%s); skipped", message, exc.__class__.__name__)
        log.debug("message %s: %s", message, exc)
        return []
    method = str(calendar.get("METHOD") or "REQUEST").strip().upper()
    if method not in ("REQUEST", "PUBLISH", "CANCEL"):
        return []  # REPLY, COUNTER, REFRESH...: answers, not events
    method = "CANCEL" if method == "CANCEL" else "REQUEST"
    events = []
    for component in calendar.walk("VEVENT"):
        try:
            event = _event(component, method, message, message_date, tz)
        except Exception as exc:
            log.warning("message %s: a calendar event cannot be read (%s); skipped", message, exc.__class__.__name__)
            log.debug("message %s: %s", message, exc)
            continue
        if event is not None:
            events.append(event)
    return events


def _first(component, name: str):
    value = component.get(name)
    if isinstance(value, list):  # a property given twice: the first one counts
        value = value[0] if value else None
    return value


def _moment(prop, tz: tzinfo) -> tuple[datetime, bool] | None:
    """(aware UTC datetime, all_day) from a DTSTART/DTEND-like property, None when absent or not a time."""
    if prop is None:
        return None
    value = getattr(prop, "dt", None)
    if isinstance(value, datetime):
        if value.tzinfo is None:  # floating time: the user's own zone
            value = value.replace(tzinfo=tz)
        return value.astimezone(timezone.utc), False
    if isinstance(value, date):
        local = datetime(value.year, value.month, value.day, tzinfo=tz)
        return local.astimezone(timezone.utc), True
    raise ValueError(f"{prop!r} is not a date or time")


def _event(component, method: str, message: int, message_date: str, tz: tzinfo) -> Event | None:
    uid = str(_first(component, "UID") or "").strip()
    if not uid:
        log.warning("message %s: a calendar event has no UID; skipped", message)
        return None
    start = _moment(_first(component, "DTSTART"), tz)
    end = _moment(_first(component, "DTEND"), tz)
    if end is None and start is not None:
        duration = getattr(_first(component, "DURATION"), "dt", None)
        if isinstance(duration, timedelta):
            end = (start[0] + duration, start[1])
        elif start[1]:
            end = (start[0] + timedelta(days=1), True)  # an all-day event lasts its day
        else:
            end = start  # RFC 5545: a DATE-TIME start alone ends when it starts
    recurrence = _moment(_first(component, "RECURRENCE-ID"), tz)
    try:
        sequence = int(str(_first(component, "SEQUENCE") or 0).strip())
    except ValueError:
        sequence = 0
    status = str(_first(component, "STATUS") or "CONFIRMED").strip().lower()
    organizer = normalize_address(str(_first(component, "ORGANIZER") or ""))
    attendees = component.get("ATTENDEE") or []
    if not isinstance(attendees, list):
        attendees = [attendees]
    people = {a for a in (normalize_address(str(x)) for x in attendees) if a}
    if organizer:
        people.add(organizer)
    summary = _first(component, "SUMMARY")
    return Event(
        uid=uid,
        recurrence_id=_recurrence_text(recurrence),
        method=method,
        sequence=sequence,
        status=status,
        summary=str(summary).strip() if summary is not None else None,
        organizer=organizer,
        start_at=iso(start[0]) if start else None,
        end_at=iso(end[0]) if end else None,
        message=message,
        message_date=message_date or "",
        people=people,
    )


def _recurrence_text(value: tuple[datetime, bool] | None) -> str:
    if value is None:
        return ""
    return value[0].strftime("%Y-%m-%d") if value[1] else iso(value[0])


def _rank(event: Event) -> tuple:
    return (event.sequence, event.message_date, event.message)


def resolve(events: list[Event]) -> list[Event]:
    """One event per (UID, RECURRENCE-ID): the latest invitation, cancelled where a CANCEL covers it."""
    requests: dict[tuple[str, str], Event] = {}
    cancels: dict[tuple[str, str], Event] = {}
    for event in events:
        key = (event.uid, event.recurrence_id)
        bucket = cancels if event.method == "CANCEL" else requests
        if key not in bucket or _rank(event) > _rank(bucket[key]):
            bucket[key] = event
    result: dict[tuple[str, str], Event] = {}
    for key, event in requests.items():
        cancel = cancels.get(key)
        series_cancel = cancels.get((key[0], "")) if key[1] else None  # a CANCEL of the whole series
        for c in (cancel, series_cancel):
            if c is not None and c.sequence >= event.sequence:
                event.status = "cancelled"
        result[key] = event
    for key, cancel in cancels.items():
        if key not in result:  # only the cancellation reached this mailbox
            cancel.status = "cancelled"
            result[key] = cancel
    for event in result.values():
        # Two statuses only, so readers can filter on 'confirmed': a TENTATIVE invitation is still a meeting.
        if event.status != "cancelled":
            event.status = "confirmed"
    return sorted(result.values(), key=lambda e: (e.start_at or "", e.uid, e.recurrence_id))


def _write(db, meetings: list[Event]) -> None:
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
