"""Threads and meetings kept up to date pass by pass end up exactly as re-deriving them from all the mail."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncagent.contacts import book as contacts
from syncagent.model import Address, Batch, Message, Seen
from syncagent.pipeline import meetings, threads
from syncagent.store.db import migrate_db, save_batch

ME = "me@example.test"
IDS = [f"m{i}@x.example" for i in range(10)] + ["yes", "1"]  # ids without "@" never link
PEOPLE = ["ann@example.org", "bob@example.org", "cy@example.org", ME]


def memory_db() -> sqlite_utils.Database:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    db = sqlite_utils.Database(conn)
    migrate_db(db)
    return db


def ics(uid: str, recurrence: str, sequence: int, method: str, start_hour: int, people: list[str]) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", f"METHOD:{method}", "BEGIN:VEVENT",
             f"UID:{uid}", f"SEQUENCE:{sequence}", f"DTSTART:20261201T{start_hour:02d}0000Z",
             f"DTEND:20261201T{start_hour + 1:02d}0000Z", "SUMMARY:Call"]
    if recurrence:
        lines.append(f"RECURRENCE-ID:{recurrence}")
    if method == "CANCEL":
        lines.append("STATUS:CANCELLED")
    lines += [f"ATTENDEE:mailto:{p}" for p in people[1:]] + [f"ORGANIZER:mailto:{people[0]}"]
    return "\r\n".join([*lines, "END:VEVENT", "END:VCALENDAR", ""])


invitation = st.builds(
    ics,
    uid=st.sampled_from(["u1@x", "u2@x"]),
    recurrence=st.sampled_from(["", "", "20261208T100000Z"]),
    sequence=st.integers(0, 2),
    method=st.sampled_from(["REQUEST", "REQUEST", "CANCEL"]),
    start_hour=st.integers(8, 12),
    people=st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=3, unique=True),
)


@st.composite
def message(draw):
    mid = draw(st.sampled_from(IDS))
    refs = tuple(draw(st.lists(st.sampled_from(IDS), max_size=3)))
    calendar = draw(st.one_of(st.none(), st.none(), invitation))
    day = draw(st.integers(1, 4))
    return draw(st.sampled_from(["a", "b"])), Message(
        message_id=mid, date=f"2026-11-0{day}T10:00:00Z", date_source="header", arrived_at=None,
        from_address=draw(st.sampled_from(PEOPLE)), from_name=None, subject=draw(st.sampled_from(["s1", "s2", None])),
        in_reply_to=draw(st.one_of(st.none(), st.sampled_from(IDS))), references=refs,
        addresses=(Address("to", ME),), automatic=False, automatic_reason=None,
        thread_hint=draw(st.one_of(st.none(), st.none(), st.none(), st.sampled_from(["g1", "g2"]))),
        calendar=calendar, has_calendar=calendar is not None)


step = st.tuples(st.lists(message(), min_size=1, max_size=5), st.one_of(st.none(), st.sampled_from(PEOPLE[:3])))


def store(db, batch, serial: list[int]) -> None:
    """Save messages through the real store path, one batch per account, as a sync would."""
    for account in ("a", "b"):
        items = []
        for acct, msg in batch:
            if acct == account:
                serial[0] += 1
                items.append((msg, Seen("INBOX", str(serial[0]))))
        if items:
            save_batch(db, account, [ME], Batch(items=items, folder="INBOX"))


def derived(db) -> dict:
    """Every table the two stages own, with the surrogate ids of the graph left out."""
    q = db.conn.execute
    return {
        "messages": q("SELECT id, thread_id FROM messages ORDER BY id").fetchall(),
        "threads": q("SELECT * FROM threads ORDER BY id").fetchall(),
        "meetings": q("SELECT * FROM meetings ORDER BY id").fetchall(),
        "people": q("SELECT meeting, address FROM meeting_people ORDER BY 1, 2").fetchall(),
        "contacts": q("SELECT meeting, contact_id FROM meeting_contacts ORDER BY 1, 2").fetchall(),
        "graph": sorted(q("SELECT n.account, group_concat(n.message_id, ' ') FROM thread_nodes n "
                          "GROUP BY n.component").fetchall()),
    }


def rebuilt(db) -> dict:
    copy = sqlite3.connect(":memory:", isolation_level=None)
    db.conn.backup(copy)
    copy.execute("PRAGMA foreign_keys=ON")
    other = sqlite_utils.Database(copy)
    threads.rebuild(other)
    meetings.rebuild(other, "UTC")
    return derived(other)


def canonical(result: dict) -> dict:
    # Component membership is compared as sets of ids (group_concat's order is the table's).
    result["graph"] = sorted((a, tuple(sorted(m.split(" ")))) for a, m in result["graph"])
    return result


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=5))
def test_incremental_passes_equal_a_full_rebuild(steps):
    """After every sync, in any order of arrival (replies before parents, merges, duplicates, Gmail
    ids, cancellations, new contacts), the threads and meetings equal those a full re-derivation gives."""
    db = memory_db()
    serial = [0]
    for batch, new_contact in steps:
        store(db, batch, serial)
        if new_contact:
            db.conn.execute("BEGIN IMMEDIATE")
            contacts.upsert(db.conn, contacts.ContactInput(name=new_contact, addresses=[new_contact]))
            db.conn.execute("COMMIT")
        threads.update(db)
        meetings.update(db, "UTC")
        assert canonical(derived(db)) == canonical(rebuilt(db))


def plain(mid: str, day: int, refs: tuple[str, ...] = (), subject: str = "s", hint: str | None = None) -> Message:
    return Message(message_id=mid, date=f"2026-11-0{day}T10:00:00Z", date_source="header", arrived_at=None,
                   from_address="ann@example.org", from_name=None, subject=subject,
                   in_reply_to=refs[-1] if refs else None, references=refs, addresses=(), automatic=False,
                   automatic_reason=None, thread_hint=hint)


def test_a_reply_before_its_parent_then_the_parent_renames_the_thread_without_a_full_pass():
    """A reply stored before its parent is threaded alone; the parent, arriving later, joins it and the
    thread is named after the parent, by the cheap path (only the new message is read)."""
    db = memory_db()
    threads.update(db)
    store(db, [("a", plain("r@x", 3, ("p@x",), "Re: plan"))], [0])
    first = threads.update(db)
    assert not first.full and len(first.messages) == 1
    (before,) = db.conn.execute("SELECT id, subject, message_count FROM threads").fetchall()
    assert before[1:] == ("Re: plan", 1)
    store(db, [("a", plain("p@x", 2, (), "plan"))], [1])
    second = threads.update(db)
    assert not second.full and second.threads == {before[0], threads.thread_name("a", "p@x")}
    assert db.conn.execute("SELECT id, subject, first_date, message_count FROM threads").fetchall() == [
        (threads.thread_name("a", "p@x"), "plan", "2026-11-02T10:00:00Z", 2)]
    assert canonical(derived(db)) == canonical(rebuilt(db))


def test_a_gmail_thread_id_arriving_for_a_threaded_message_re_derives_everything():
    """A second copy bringing Gmail's thread id for a message threaded by headers takes the full pass,
    and the message leaves the header thread for Gmail's."""
    db = memory_db()
    threads.update(db)
    store(db, [("a", plain("p@x", 1)), ("a", plain("r@x", 2, ("p@x",)))], [0])
    threads.update(db)
    store(db, [("a", plain("r@x", 2, ("p@x",), hint="g7"))], [2])
    assert threads.update(db).full
    assert dict(db.conn.execute("SELECT message_id, thread_id FROM messages")) == {
        "p@x": threads.thread_name("a", "p@x"), "r@x": "g7"}
    assert canonical(derived(db)) == canonical(rebuilt(db))


def test_a_time_zone_change_re_reads_every_invitation():
    """Changing the configured time zone re-reads floating times of invitations already stored."""
    db = memory_db()
    floating = ics("u@x", "", 0, "REQUEST", 9, ["ann@example.org"]).replace("0000Z", "0000")
    msg = Message(message_id="i@x", date="2026-11-01T10:00:00Z", date_source="header", arrived_at=None,
                  from_address="ann@example.org", from_name=None, subject="inv", in_reply_to=None, references=(),
                  addresses=(), automatic=False, automatic_reason=None, calendar=floating, has_calendar=True)
    store(db, [("a", msg)], [0])
    assert meetings.update(db, "UTC").full  # a new database: no state yet
    assert not meetings.update(db, "UTC").full
    assert db.conn.execute("SELECT start_at FROM meetings").fetchone()[0] == "2026-12-01T09:00:00Z"
    assert meetings.update(db, "Europe/Paris").full
    assert db.conn.execute("SELECT start_at FROM meetings").fetchone()[0] == "2026-12-01T08:00:00Z"


def test_a_new_update_of_an_invitation_touches_only_its_meeting():
    """A later SEQUENCE moves the meeting, keeps its id, and the pass reports that meeting and its contacts."""
    db = memory_db()
    db.conn.execute("BEGIN IMMEDIATE")
    _, ann = contacts.upsert(db.conn, contacts.ContactInput(name="Ann", addresses=["ann@example.org"]))
    db.conn.execute("COMMIT")
    one = Message(message_id="i1@x", date="2026-11-01T10:00:00Z", date_source="header", arrived_at=None,
                  from_address="ann@example.org", from_name=None, subject="inv", in_reply_to=None, references=(),
                  addresses=(), automatic=False, automatic_reason=None,
                  calendar=ics("u@x", "", 0, "REQUEST", 9, ["ann@example.org", ME]), has_calendar=True)
    other = Message(**{**one.__dict__, "message_id": "i2@x",
                       "calendar": ics("v@x", "", 0, "REQUEST", 11, ["bob@example.org"])})
    store(db, [("a", one), ("a", other)], [0])
    meetings.update(db, "UTC")
    (mid,) = db.conn.execute("SELECT id FROM meetings WHERE uid = 'u@x'").fetchone()
    moved = Message(**{**one.__dict__, "message_id": "i3@x", "date": "2026-11-02T10:00:00Z",
                       "calendar": ics("u@x", "", 1, "REQUEST", 10, ["ann@example.org", ME])})
    store(db, [("a", moved)], [2])
    changes = meetings.update(db, "UTC")
    assert not changes.full and changes.meetings == {mid} and changes.contacts == {ann}
    assert db.conn.execute("SELECT id, sequence, start_at FROM meetings WHERE uid = 'u@x'").fetchone() == (
        mid, 1, "2026-12-01T10:00:00Z")
    threads.update(db)
    assert canonical(derived(db)) == canonical(rebuilt(db))


@pytest.mark.parametrize("stage", ["threads", "meetings"])
def test_a_pass_with_nothing_new_changes_nothing(stage):
    """A pass after one that took everything in reports no change."""
    db = memory_db()
    store(db, [("a", plain("p@x", 1))], [0])
    module = threads if stage == "threads" else meetings
    module.update(db)
    again = module.update(db)
    assert not again.full and not getattr(again, stage)
