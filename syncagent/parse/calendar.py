"""Calendar invitations: the VEVENTs of one text/calendar part, and which invitation wins.

Pure: text in, records out. Per event (UID, RECURRENCE-ID) the invitation with
the highest SEQUENCE wins (a tie goes to the later message); a CANCEL with a
sequence at least as high (or STATUS:CANCELLED) marks the meeting
``cancelled``, and every other meeting is ``confirmed``.

Recurring events: a master event with an RRULE is one meeting, its first
occurrence (DTSTART of the master). Occurrences are not expanded, so a weekly
call does not turn into a meeting every week in the ledger; an occurrence that
was moved or cancelled on its own arrives with a RECURRENCE-ID and becomes its
own row.

Which events compete depends only on the UID: the events of one UID resolve
the same whether they are resolved alone or with every other invitation, so a
caller may resolve only the UIDs that new mail touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

from syncagent.parse.addresses import normalize_address
from syncagent.timeutil import iso

log = logging.getLogger(__name__)


@dataclass
class Invitation:
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


def zone(name: str) -> tzinfo:
    """The named zone for floating times and all-day dates; UTC (with a warning) when it is unknown."""
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    except Exception:  # an unknown name was already reported by config; UTC keeps the stage running
        log.warning("unknown time zone %r for calendar times; using UTC", name)
        return timezone.utc


def parse_invitation(ics: str, message: int, message_date: str, tz: tzinfo = timezone.utc) -> list[Invitation]:
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


def _first(component: Any, name: str) -> Any:
    value = component.get(name)
    if isinstance(value, list):  # a property given twice: the first one counts
        value = value[0] if value else None
    return value


def _moment(prop: Any, tz: tzinfo) -> tuple[datetime, bool] | None:
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


def _event(component: Any, method: str, message: int, message_date: str, tz: tzinfo) -> Invitation | None:
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
    return Invitation(
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


def _rank(event: Invitation) -> tuple[int, str, int]:
    return (event.sequence, event.message_date, event.message)


def resolve(events: list[Invitation]) -> list[Invitation]:
    """One event per (UID, RECURRENCE-ID): the latest invitation, cancelled where a CANCEL covers it.

    ``events`` come in message order (and in their order within a message): of two
    that rank the same, the first one wins. The result is sorted by start, UID and
    RECURRENCE-ID; its events may be the ones given, with ``status`` set.
    """
    requests: dict[tuple[str, str], Invitation] = {}
    cancels: dict[tuple[str, str], Invitation] = {}
    for event in events:
        key = (event.uid, event.recurrence_id)
        bucket = cancels if event.method == "CANCEL" else requests
        if key not in bucket or _rank(event) > _rank(bucket[key]):
            bucket[key] = event
    result: dict[tuple[str, str], Invitation] = {}
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
    return sorted(result.values(), key=meeting_order)


def meeting_order(event: Invitation) -> tuple[str, str, str]:
    """The order meetings are written in, so a new meeting's id follows its start."""
    return (event.start_at or "", event.uid, event.recurrence_id)
