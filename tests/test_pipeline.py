"""The derived stages after a sync: rebuilt when something changed, skipped when nothing did."""

import mailbox
from datetime import datetime, timedelta, timezone

from syncagent import config
from syncagent.contacts import book as contacts
from syncagent.pipeline import stages as pipeline
from syncagent.pipeline import sync
from syncagent.store import db as store

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)  # a Monday


def rfc(dt):
    return dt.strftime("%a, %d %b %Y %H:%M:%S +0000")


def setup(tmp_path, reply_at=None, **reminders):
    md = mailbox.Maildir(tmp_path / "mail", create=True)
    md.add(f"From: me@x.com\nTo: alice@a.com\nSubject: Coffee?\nMessage-ID: <a1@x>\nDate: {rfc(T0)}\n\nhi".encode())
    if reply_at:
        md.add(f"From: alice@a.com\nTo: me@x.com\nSubject: Re: Coffee?\nMessage-ID: <a2@a>\n"
               f"In-Reply-To: <a1@x>\nDate: {rfc(reply_at)}\n\nyes".encode())
    cfg = config.parse({"database": {"path": str(tmp_path / "s.db")}, "reminders": reminders,
                        "accounts": [{"name": "m", "kind": "maildir", "path": str(tmp_path / "mail"),
                                      "addresses": ["me@x.com"]}]}, tmp_path / "c.toml")
    db = store.open_db(cfg.database)
    contacts.add(db, contacts.ContactInput(name="Alice", addresses=["alice@a.com"]))
    return cfg, db


def open_reminders(db):
    return db.execute("SELECT kind, due_at FROM reminders WHERE status = 'open' ORDER BY id").fetchall()


def test_a_quiet_pass_leaves_the_ledger_as_it_was(tmp_path):
    """With no new mail, no contact change and no event crossing the clock, nothing is recomputed."""
    cfg, db = setup(tmp_path)
    sync.sync_all(db, cfg, now=T0 + timedelta(hours=1))
    computed = db.execute("SELECT computed_at FROM contact_ledger").fetchall()
    assert computed == [("2026-11-02T16:00:00Z",)]
    sync.sync_all(db, cfg, now=T0 + timedelta(hours=2))
    assert db.execute("SELECT computed_at FROM contact_ledger").fetchall() == computed
    assert open_reminders(db) == [("follow_up", "2026-11-11T15:00:00Z")]


def test_a_message_dated_after_the_last_pass_counts_once_its_time_comes(tmp_path):
    """A reply already stored but dated after the last pass's clock moves the ledger at the next pass."""
    cfg, db = setup(tmp_path, reply_at=T0 + timedelta(days=2))
    sync.sync_all(db, cfg, now=T0 + timedelta(days=1))
    assert db.execute("SELECT state FROM contact_summary").fetchone() == ("ASKED",)
    sync.sync_all(db, cfg, now=T0 + timedelta(days=3))  # no new mail, but the reply's date has passed
    assert db.execute("SELECT state FROM contact_summary").fetchone() == ("REPLIED",)
    assert open_reminders(db) == [("thank_you", "2026-11-05T15:00:00Z")]


def test_new_contacts_and_new_settings_are_picked_up_without_new_mail(tmp_path):
    """A contact added or a reminder setting changed since the last pass is applied at the next one."""
    cfg, db = setup(tmp_path)
    sync.sync_all(db, cfg, now=T0 + timedelta(hours=1))
    contacts.add(db, contacts.ContactInput(name="Alice Again", addresses=["alice@a.com", "alice@home.example"]))
    slower = config.parse({"database": {"path": str(cfg.database)}, "reminders": {"follow_up_after_business_days": 3},
                           "accounts": [{"name": "m", "kind": "maildir", "path": str(tmp_path / "mail"),
                                         "addresses": ["me@x.com"]}]}, tmp_path / "c.toml")
    pipeline.after_sync(db, slower, now=T0 + timedelta(hours=2))
    assert db.execute("SELECT name FROM contact_summary").fetchone() == ("Alice Again",)
    assert db.execute("SELECT due_at FROM reminders WHERE status = 'open'").fetchall() == [("2026-11-05T15:00:00Z",)]


def test_a_failed_pass_leaves_python_collecting_cycles(tmp_path):
    """The derived stages pause Python's cycle collector while they build their rows; a pass
    that fails still turns it back on, so a daemon that keeps running does not keep its garbage."""
    import gc

    import pytest

    from syncagent.errors import StoreError

    cfg, db = setup(tmp_path)
    sync.sync_all(db, cfg, now=T0 + timedelta(hours=1))
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON contact_ledger BEGIN SELECT RAISE(ABORT, 'refused'); END")
    contacts.add(db, contacts.ContactInput(name="Bob", addresses=["bob@b.com"]))
    assert gc.isenabled()
    with pytest.raises(StoreError, match="refused"):
        pipeline.after_sync(db, cfg, now=T0 + timedelta(hours=2))
    assert gc.isenabled()
    db.execute("DROP TRIGGER refuse")
    pipeline.after_sync(db, cfg, now=T0 + timedelta(hours=2))
    assert db.execute("SELECT count(*) FROM contact_ledger").fetchone() == (2,)
    assert gc.isenabled()
