"""The store's named writes keep what they must keep: a sent digest's record, one notice per brief, known columns."""

from __future__ import annotations

import pytest

from syncagent.store import contacts as contact_rows
from syncagent.store import digest as digests
from syncagent.store import notices
from syncagent.store.db import open_db, transaction


@pytest.fixture
def db(tmp_path):
    return open_db(tmp_path / "s.db")


def test_rewriting_a_sent_digest_keeps_where_and_when_it_was_sent(db):
    """Writing a week's digest again (a rerun) updates its files but not the record that it was mailed."""
    digests.save_digest_written(db, "2026-W48", "2026-11-30T08:00:00Z", "/d/a.md", "/d/a.html")
    digests.save_digest_sent(db, "2026-W48", "2026-11-30T08:00:05Z", "me@example.com")
    digests.save_digest_written(db, "2026-W48", "2026-11-30T09:00:00Z", "/d/b.md", "/d/b.html")
    assert db.execute("SELECT * FROM digests").fetchall() == [
        ("2026-W48", "2026-11-30T09:00:00Z", "/d/b.md", "/d/b.html", "2026-11-30T08:00:05Z", "me@example.com")]


def test_a_brief_recorded_twice_is_one_notice(db):
    """Recording the same meeting brief again (a retry after a crash) keeps the first record and raises nothing."""
    brief: notices.DueBrief = {"uid": "u1", "recurrence_id": "", "start_at": "2026-12-01T15:00:00Z",
                               "summary": "Coffee", "contact_id": 7, "name": "Jane"}
    notices.save_brief_sent(db, brief, "2026-12-01T13:00:00Z")
    notices.save_brief_sent(db, brief, "2026-12-01T14:00:00Z")
    assert db.execute("SELECT sent_at FROM brief_notices").fetchall() == [("2026-12-01T13:00:00Z",)]


def test_only_contact_fields_reach_the_sql(db):
    """A value under a name that is not a contact field is refused before any SQL is built from it."""
    with transaction(db) as conn:
        contact_id = contact_rows.save_new_contact(conn, {"name": "Jane"}, ["jane@example.com"], "2026-12-01T00:00:00Z")
    with pytest.raises(ValueError, match="not contact fields"), transaction(db) as conn:
        contact_rows.save_changes(conn, contact_id, {"name = 'x', notes": "y"}, "2026-12-01T00:00:00Z")
    assert contact_rows.load_contacts(db)[0]["name"] == "Jane"


def _message(mid: str, **kw):
    from syncagent.model import Address, Message

    base = dict(message_id=mid, date="2026-11-30T10:00:00Z", date_source="header", arrived_at="2026-11-30T10:00:05Z",
                from_address="me@example.com", from_name="Zoë Ô'Brien", subject="Café ☕ \"quoted\"",
                in_reply_to=None, references=(), addresses=(Address("from", "me@example.com", "Zoë Ô'Brien"),
                                                           Address("to", "jane@example.com", None)),
                automatic=False, automatic_reason=None, size=4_294_967_295)
    return Message(**{**base, **kw})


def test_a_batch_is_stored_value_for_value(db):
    """Every value of a batch lands as it came, type and all: numbers stay numbers, text that looks like
    a number stays text, a NUL character in a calendar part survives, a second copy of a message merges
    into the first, and the count of new messages counts each message once."""
    from syncagent.model import Address, Batch, Seen
    from syncagent.parse.outreach import Measures
    from syncagent.store.db import save_batch

    sent = _message("a@x", outreach=Measures(120, 2, 4, True, False, 2**62 + 7), snippet="12")
    invite = _message("b@x", from_address="jane@example.com", from_name=None, subject="007", has_calendar=True,
                      calendar="BEGIN:VCALENDAR\r\nX-ODD:a\x00b\r\nEND:VCALENDAR", addresses=(
                          Address("from", "jane@example.com", None), Address("to", "me@example.com", None)))
    copy = _message("a@x", snippet="later", gmail_id="18c", addresses=(Address("bcc", "kim@example.com", "Kim"),))
    batch = Batch(items=[(sent, Seen("Sent", "1", 1, 9)), (invite, Seen("INBOX", "7", 7, 9)),
                         (copy, Seen("INBOX", "8", 8, 9, ("Work", "Job search")))], folder="INBOX")
    assert save_batch(db, "main", ["me@example.com"], batch) == 2
    assert save_batch(db, "main", ["me@example.com"], batch) == 0  # the same batch again adds nothing
    rows = db.execute("SELECT message_id, subject, typeof(subject), from_name, direction, size, typeof(size), "
                      "snippet, typeof(snippet), gmail_id, has_calendar FROM messages ORDER BY id").fetchall()
    assert rows == [("a@x", "Café ☕ \"quoted\"", "text", "Zoë Ô'Brien", "outgoing", 4_294_967_295, "integer",
                     "12", "text", "18c", 0),
                    ("b@x", "007", "text", None, "incoming", 4_294_967_295, "integer", None, "null", None, 1)]
    assert db.execute("SELECT m.message_id, a.role, a.address, a.name FROM message_addresses a "
                      "JOIN messages m ON m.id = a.message ORDER BY m.id, a.role").fetchall() == [
        ("a@x", "bcc", "kim@example.com", "Kim"), ("a@x", "from", "me@example.com", "Zoë Ô'Brien"),
        ("a@x", "to", "jane@example.com", None), ("b@x", "from", "jane@example.com", None),
        ("b@x", "to", "me@example.com", None)]
    assert db.execute("SELECT words, questions, subject_words, connection, personalized, fingerprint, "
                      "typeof(fingerprint) FROM outreach").fetchall() == [(120, 2, 4, 1, 0, 2**62 + 7, "integer")]
    assert db.execute("SELECT ics FROM calendar_parts").fetchall() == [(invite.calendar,)]
    assert db.execute("SELECT folder, location, uid, uidvalidity, labels, m.message_id FROM message_folders f "
                      "JOIN messages m ON m.id = f.message ORDER BY uid").fetchall() == [
        ("Sent", "1", 1, 9, None, "a@x"), ("INBOX", "7", 7, 9, None, "b@x"), ("INBOX", "8", 8, 9, "Work Job search", "a@x")]


def test_a_batch_of_any_size_lands_whole_and_in_order(db):
    """A batch of 301 messages (written in several statements) stores every message, address and location,
    numbered in the batch's order, with the count of new ones right; a later copy still merges into its first."""
    from syncagent.model import Address, Batch, Seen
    from syncagent.store.db import save_batch

    items = [(_message(f"m{i}@x", addresses=(Address("from", "me@example.com", None),
                                             *(Address("to", f"p{i}-{k}@example.com", None) for k in range(i % 4)))),
              Seen("Sent", str(i + 1), i + 1, 9)) for i in range(301)]
    assert save_batch(db, "main", ["me@example.com"], Batch(items=items, folder="Sent")) == 301
    assert [m for (m,) in db.execute("SELECT message_id FROM messages ORDER BY id")] == [f"m{i}@x" for i in range(301)]
    assert db.execute("SELECT count(*) FROM message_addresses").fetchone() == (sum(1 + i % 4 for i in range(301)),)
    assert db.execute("SELECT count(*), min(uid), max(uid) FROM message_folders").fetchone() == (301, 1, 301)
    again = [(_message("m300@x", addresses=(Address("cc", "late@example.com", None),)), Seen("INBOX", "5", 5, 9))]
    assert save_batch(db, "main", ["me@example.com"], Batch(items=again, folder="INBOX")) == 0
    assert db.execute("SELECT count(*) FROM message_addresses a JOIN messages m ON m.id = a.message "
                      "WHERE m.message_id = 'm300@x'").fetchone() == (2,)
