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
