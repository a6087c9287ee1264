"""Meetings from calendar invitations: sequences, cancellations, times, contacts, bad input."""

from __future__ import annotations

import email
import logging
from email import policy
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from syncagent.contacts import book as contacts
from syncagent.model import Batch, Message, Seen
from syncagent.pipeline import meetings
from syncagent.store.db import open_db, save_batch
from syncagent.timeutil import iso

INVITES = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "calendar-invites"


@pytest.fixture
def db(tmp_path):
    """A fresh, migrated database."""
    return open_db(tmp_path / "syncagent.db")


def store_invite(db, ics: str, date: str, message_id: str | None = None) -> int:
    """Save a message carrying ``ics`` through the real store path; return its row id."""
    message_id = message_id or f"invite-{date}-{hash(ics) & 0xffffffff:x}"
    msg = Message(
        message_id=message_id, date=date, date_source="header", arrived_at=date,
        from_address="organizer@example.org", from_name=None, subject="Invitation",
        in_reply_to=None, references=(), addresses=(), automatic=False, automatic_reason=None,
        calendar=ics, has_calendar=True,
    )
    save_batch(db, "test", ["me@example.com"], Batch(items=[(msg, Seen("INBOX", message_id))]))
    return db.execute("SELECT id FROM messages WHERE message_id = ?", [message_id]).fetchone()[0]


def meetings_rows(db) -> list[dict]:
    cur = db.execute("SELECT * FROM meetings ORDER BY start_at, uid, recurrence_id")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def ics(*events: str, method: str | None = "REQUEST", extra: str = "") -> str:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    if method:
        head.append(f"METHOD:{method}")
    return "\r\n".join(head) + "\r\n" + extra + "".join(events) + "END:VCALENDAR\r\n"


def vevent(uid="m1@example.org", seq=0, start="DTSTART:20261120T170000Z", end="DTEND:20261120T180000Z",
           extra="", attendees=("mailto:jane@example.com",), organizer="mailto:me@example.com"):
    lines = ["BEGIN:VEVENT", f"UID:{uid}", f"SEQUENCE:{seq}", "DTSTAMP:20261101T000000Z", start]
    if end:
        lines.append(end)
    lines.append(f"ORGANIZER:{organizer}")
    lines += [f"ATTENDEE;CN=Someone:{a}" for a in attendees]
    lines.append("SUMMARY:Coffee chat")
    if extra:
        lines.append(extra)
    lines.append("END:VEVENT")
    return "\r\n".join(lines) + "\r\n"


def test_update_with_higher_sequence_moves_the_meeting(db):
    """A later invitation with a higher SEQUENCE replaces the time of the first one."""
    store_invite(db, ics(vevent(seq=0)), "2026-11-01T10:00:00Z")
    store_invite(db, ics(vevent(seq=1, start="DTSTART:20261121T170000Z", end="DTEND:20261121T180000Z")),
                 "2026-11-02T10:00:00Z")
    meetings.rebuild(db)
    rows = meetings_rows(db)
    assert [(r["start_at"], r["end_at"], r["sequence"], r["status"]) for r in rows] == [
        ("2026-11-21T17:00:00Z", "2026-11-21T18:00:00Z", 1, "confirmed")
    ]


def test_lower_sequence_arriving_later_does_not_win(db):
    """An out-of-order copy of an older invitation does not undo the update."""
    store_invite(db, ics(vevent(seq=2, start="DTSTART:20261121T170000Z", end="DTEND:20261121T180000Z")),
                 "2026-11-01T10:00:00Z")
    store_invite(db, ics(vevent(seq=1)), "2026-11-05T10:00:00Z")
    meetings.rebuild(db)
    assert [r["start_at"] for r in meetings_rows(db)] == ["2026-11-21T17:00:00Z"]


def test_equal_sequence_later_message_wins(db):
    """With the same SEQUENCE the invitation in the later message wins."""
    store_invite(db, ics(vevent(seq=0, start="DTSTART:20261121T170000Z", end="DTEND:20261121T180000Z")),
                 "2026-11-02T10:00:00Z")
    store_invite(db, ics(vevent(seq=0)), "2026-11-01T10:00:00Z")
    meetings.rebuild(db)
    assert [r["start_at"] for r in meetings_rows(db)] == ["2026-11-21T17:00:00Z"]


def test_cancel_marks_meeting_cancelled(db):
    """A CANCEL with a sequence at least as high sets status 'cancelled'; a later re-invite revives it."""
    store_invite(db, ics(vevent(seq=0)), "2026-11-01T10:00:00Z")
    store_invite(db, ics(vevent(seq=1, extra="STATUS:CANCELLED"), method="CANCEL"), "2026-11-02T10:00:00Z")
    meetings.rebuild(db)
    assert [r["status"] for r in meetings_rows(db)] == ["cancelled"]
    store_invite(db, ics(vevent(seq=2)), "2026-11-03T10:00:00Z")
    meetings.rebuild(db)
    assert [r["status"] for r in meetings_rows(db)] == ["confirmed"]


def test_duration_instead_of_dtend(db):
    """DTSTART + DURATION gives the end time."""
    store_invite(db, ics(vevent(end="DURATION:PT45M")), "2026-11-01T10:00:00Z")
    meetings.rebuild(db)
    assert [(r["start_at"], r["end_at"]) for r in meetings_rows(db)] == [
        ("2026-11-20T17:00:00Z", "2026-11-20T17:45:00Z")
    ]


def test_tzid_with_vtimezone_is_resolved_to_utc(db):
    """A TZID defined by the invitation's own VTIMEZONE converts to UTC (EST is UTC-5 in November)."""
    vtimezone = "\r\n".join([
        "BEGIN:VTIMEZONE", "TZID:Eastern (custom)",
        "BEGIN:STANDARD", "DTSTART:19701101T020000", "TZOFFSETFROM:-0400", "TZOFFSETTO:-0500",
        "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU", "END:STANDARD",
        "BEGIN:DAYLIGHT", "DTSTART:19700308T020000", "TZOFFSETFROM:-0500", "TZOFFSETTO:-0400",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU", "END:DAYLIGHT", "END:VTIMEZONE",
    ]) + "\r\n"
    event = vevent(start="DTSTART;TZID=Eastern (custom):20261120T100000",
                   end="DTEND;TZID=Eastern (custom):20261120T110000")
    store_invite(db, ics(event, extra=vtimezone), "2026-11-01T10:00:00Z")
    meetings.rebuild(db)
    assert [(r["start_at"], r["end_at"]) for r in meetings_rows(db)] == [
        ("2026-11-20T15:00:00Z", "2026-11-20T16:00:00Z")
    ]


def test_all_day_event_lasts_its_day_in_the_users_zone(db):
    """An all-day DATE event without DTEND ends a day after it starts, placed in the default zone."""
    store_invite(db, ics(vevent(start="DTSTART;VALUE=DATE:20261120", end=None)), "2026-11-01T10:00:00Z")
    meetings.rebuild(db, "America/New_York")
    assert [(r["start_at"], r["end_at"]) for r in meetings_rows(db)] == [
        ("2026-11-20T05:00:00Z", "2026-11-21T05:00:00Z")
    ]


def test_floating_time_uses_the_default_zone(db):
    """A time without zone is read in the configured time zone."""
    store_invite(db, ics(vevent(start="DTSTART:20261120T100000", end="DTEND:20261120T110000")),
                 "2026-11-01T10:00:00Z")
    meetings.rebuild(db, "Europe/Paris")
    assert [r["start_at"] for r in meetings_rows(db)] == ["2026-11-20T09:00:00Z"]


def test_publish_and_missing_method_count_as_requests_but_reply_does_not(db):
    """METHOD:PUBLISH and no METHOD make meetings; a REPLY (an answer) does not."""
    store_invite(db, ics(vevent(uid="pub"), method="PUBLISH"), "2026-11-01T10:00:00Z")
    store_invite(db, ics(vevent(uid="none"), method=None), "2026-11-01T11:00:00Z")
    store_invite(db, ics(vevent(uid="reply"), method="REPLY"), "2026-11-01T12:00:00Z")
    meetings.rebuild(db)
    assert sorted(r["uid"] for r in meetings_rows(db)) == ["none", "pub"]


def test_meeting_links_organizer_and_attendee_contacts(db):
    """Every contact who is the organizer or an attendee (any of their addresses, any case) is linked."""
    conn = db.conn
    jane = contacts.upsert(conn, contacts.ContactInput("Jane", ["jane@home.example", "jane@example.com"]))[1]
    bob = contacts.upsert(conn, contacts.ContactInput("Bob", ["bob@example.org"]))[1]
    contacts.upsert(conn, contacts.ContactInput("Not invited", ["carol@example.org"]))
    event = vevent(attendees=("MAILTO:Jane@Example.com", "mailto:stranger@example.net"),
                   organizer="mailto:bob@example.org")
    store_invite(db, ics(event), "2026-11-01T10:00:00Z")
    meetings.rebuild(db)
    linked = sorted(r[0] for r in db.execute("SELECT contact_id FROM meeting_contacts"))
    assert linked == sorted([jane, bob])
    assert meetings_rows(db)[0]["organizer"] == "bob@example.org"


def test_rebuild_is_idempotent_and_keeps_ids(db):
    """Running rebuild twice gives the same rows with the same ids."""
    store_invite(db, ics(vevent(uid="a"), vevent(uid="b")), "2026-11-01T10:00:00Z")
    meetings.rebuild(db)
    first = meetings_rows(db)
    assert meetings.rebuild(db) == 2
    assert meetings_rows(db) == first


def test_malformed_ics_is_skipped_with_a_warning(db, caplog):
    """Broken calendar text logs a warning naming the message and never stops the rebuild."""
    bad = store_invite(db, "BEGIN:VCALENDAR\r\nthis is not ics\r\n", "2026-11-01T10:00:00Z")
    bad_time = store_invite(db, ics(vevent(uid="badtime", start="DTSTART:notadate")), "2026-11-01T11:00:00Z")
    store_invite(db, ics(vevent(uid="good")), "2026-11-01T12:00:00Z")
    with caplog.at_level(logging.WARNING, logger="syncagent.pipeline.meetings"):
        assert meetings.rebuild(db) == 1
    assert [r["uid"] for r in meetings_rows(db)] == ["good"]
    assert f"message {bad}:" in caplog.text
    assert f"message {bad_time}:" in caplog.text


def test_recurring_master_counts_its_first_occurrence(db):
    """A recurring event is one meeting at its first occurrence; a moved occurrence is its own row."""
    master = vevent(uid="weekly", extra="RRULE:FREQ=WEEKLY;COUNT=10")
    moved = vevent(uid="weekly", seq=1, start="DTSTART:20261127T190000Z", end="DTEND:20261127T200000Z",
                   extra="RECURRENCE-ID:20261127T170000Z")
    store_invite(db, ics(master, moved), "2026-11-01T10:00:00Z")
    meetings.rebuild(db)
    assert [(r["recurrence_id"], r["start_at"]) for r in meetings_rows(db)] == [
        ("", "2026-11-20T17:00:00Z"),
        ("2026-11-27T17:00:00Z", "2026-11-27T19:00:00Z"),
    ]


def _calendar_part(raw: bytes) -> tuple[str, str] | None:
    msg = email.message_from_bytes(raw, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            try:
                date = iso(parsedate_to_datetime(msg["Date"]))
            except (TypeError, ValueError):  # notmuch's sample has a ctime-style Date
                date = "1970-01-01T00:00:00Z"
            return part.get_content(), date
    return None


@pytest.mark.skipif(not INVITES.is_dir(), reason="the shared calendar-invites corpus is not beside the repository")
def test_real_invites_from_the_corpus(db):
    """Real Google/Outlook invitations: every one parses, the CANCEL cancels its occurrence, contacts link."""
    stored = 0
    for path in sorted(p for p in INVITES.rglob("*") if p.is_file()):
        found = _calendar_part(path.read_bytes())
        if found:
            store_invite(db, found[0], found[1], message_id=path.name)
            stored += 1
    assert stored == 20
    contacts.upsert(db.conn, contacts.ContactInput("John", ["john.johansen@canonical.com"]))
    count = meetings.rebuild(db)
    rows = meetings_rows(db)
    assert count == len(rows) >= 10
    assert all(r["start_at"] and r["end_at"] and r["end_at"] >= r["start_at"] for r in rows)
    cancelled = [r for r in rows if r["status"] == "cancelled"]
    assert [(r["uid"], r["recurrence_id"]) for r in cancelled] == [
        ("c9q5i0m7g590n47b82t8jjh82d@google.com", "2021-02-09T18:00:00Z")
    ]
    # The Los Angeles time of the 2018 series (11:00 PDT) is 18:00 UTC.
    la = [r for r in rows if r["uid"] == "6p0j7c07oj83fpt2l181k6r7mc@google.com"]
    assert [(r["start_at"], r["end_at"]) for r in la] == [("2018-03-13T18:00:00Z", "2018-03-13T19:00:00Z")]
    linked = db.execute("SELECT COUNT(*) FROM meeting_contacts").fetchone()[0]
    assert linked >= 5


def test_status_is_confirmed_or_cancelled(db):
    """TENTATIVE counts as confirmed; an invitation whose own STATUS is CANCELLED is cancelled."""
    store_invite(db, ics(vevent(uid="t", extra="STATUS:TENTATIVE"), vevent(uid="c", extra="STATUS:CANCELLED")),
                 "2026-11-01T10:00:00Z")
    meetings.rebuild(db)
    assert sorted((r["uid"], r["status"]) for r in meetings_rows(db)) == [("c", "cancelled"), ("t", "confirmed")]
