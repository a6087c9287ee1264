"""Local Maildir and mbox sources backfill the store idempotently."""

import mailbox
import os
import stat
from pathlib import Path

import pytest

from syncagent import config
from syncagent.pipeline import sync
from syncagent.store import db as store

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"


def make_config(tmp_path, **account):
    return config.parse({"database": {"path": str(tmp_path / "db" / "s.db")},
                         "accounts": [{"name": "local", **account}]}, tmp_path / "c.toml")


def dump(db):
    return sorted(db.execute(
        "SELECT message_id, date, from_address, subject, direction, automatic, thread_id FROM messages").fetchall())


def test_maildir_sync_is_idempotent_and_keeps_bcc(tmp_path):
    """Two syncs store each message once; the Sent copy's Bcc is kept; direction follows addresses."""
    md = mailbox.Maildir(tmp_path / "mail", create=True)
    md.add(b"From: me@x.com\nTo: a@y.com\nBcc: b@z.com\nSubject: hello\nMessage-ID: <1@x>\nDate: Mon, 2 Nov 2026 10:00:00 +0000\n\nhi")
    md.add(b"From: A <a@y.com>\nTo: me@x.com\nSubject: Re: hello\nMessage-ID: <2@y>\nIn-Reply-To: <1@x>\nDate: Mon, 2 Nov 2026 12:00:00 +0000\n\nyo")
    sent = md.add_folder("Sent")
    sent.add(b"From: me@x.com\nTo: a@y.com\nBcc: b@z.com\nSubject: hello\nMessage-ID: <1@x>\nDate: Mon, 2 Nov 2026 10:00:00 +0000\n\nhi")
    cfg = make_config(tmp_path, kind="maildir", path=str(tmp_path / "mail"), addresses=["Me@X.com"])
    db = store.open_db(cfg.database)
    first = sync.sync_all(db, cfg)
    assert first[0].new_messages == 2
    before = dump(db)
    assert sync.sync_all(db, cfg)[0].new_messages == 0
    assert sync.sync_all(db, cfg, full=True)[0].new_messages == 0
    assert dump(db) == before
    rows = {r[0]: r for r in before}
    assert rows["1@x"][4] == "outgoing" and rows["2@y"][4] == "incoming"
    assert rows["1@x"][6] == rows["2@y"][6], "a reply joins its parent's thread"
    assert db.execute("SELECT count(*) FROM message_folders").fetchone()[0] == 3
    assert ("bcc", "b@z.com") in db.execute("SELECT role, address FROM message_addresses").fetchall()
    assert stat.S_IMODE(os.stat(cfg.database).st_mode) == 0o600


def test_sync_runs_records_success_and_failure(tmp_path):
    """Every sync leaves a sync_runs row, failed ones with the reason."""
    cfg = make_config(tmp_path, kind="mbox", path=str(tmp_path / "missing.mbox"))
    db = store.open_db(cfg.database)
    result = sync.sync_all(db, cfg)[0]
    assert not result.ok and "does not exist" in result.error
    status, error = db.execute("SELECT status, error FROM sync_runs").fetchone()
    assert status == "failed" and "missing.mbox" in error


def test_enron_mbox_corpus_backfills_every_message(tmp_path):
    """All 3,740 messages of the Enron mbox files are stored once, and a resync adds none."""
    if not (CORPORA / "enron-mbox").exists():
        pytest.skip("../shared/corpora is not present")
    cfg = make_config(tmp_path, kind="mbox", path=str(CORPORA / "enron-mbox"), addresses=["phillip.allen@enron.com"])
    db = store.open_db(cfg.database)
    assert sync.sync_all(db, cfg)[0].new_messages == 3740
    assert sync.sync_all(db, cfg)[0].new_messages == 0
    assert db.execute("SELECT count(*) FROM messages WHERE direction = 'outgoing'").fetchone()[0] > 1000


def test_maildir_auto_reply_return_date_is_stored_not_its_text(tmp_path):
    """A Maildir out-of-office reply keeps only the return date it states; a bounce's text is never read."""
    md = mailbox.Maildir(tmp_path / "mail", create=True)
    md.add("From: Lucía <lucia@y.com>\nTo: me@x.com\nSubject: Respuesta automática: hola\nMessage-ID: <a@y>\n"
           "Date: Mon, 2 Nov 2026 10:00:00 +0000\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=utf-8\n\nEstoy de vacaciones. Regreso el lunes 16 de noviembre.\n"
           .encode())
    md.add(b"From: MAILER-DAEMON@mx.y.com\nTo: me@x.com\nSubject: Undelivered Mail Returned to Sender\n"
           b"Message-ID: <b@y>\nDate: Mon, 2 Nov 2026 10:00:00 +0000\nAuto-Submitted: auto-replied\n\n"
           b"Your message could not be delivered until 20 November.\n")
    cfg = make_config(tmp_path, kind="maildir", path=str(tmp_path / "mail"), addresses=["me@x.com"])
    db = store.open_db(cfg.database)
    sync.sync_all(db, cfg)
    assert db.execute("SELECT message_id, automatic, ooo_until FROM messages ORDER BY message_id").fetchall() == [
        ("a@y", 1, "2026-11-16"), ("b@y", 1, None)]


def test_full_sync_rederives_what_the_cheap_pass_trusts(tmp_path):
    """`sync --full` re-derives every table: a thread and a ledger row lost by hand come back; a plain sync trusts them."""
    from syncagent import timeutil
    from syncagent.contacts import book

    timeutil.set_clock(lambda: timeutil.parse_iso("2026-11-10T09:00:00Z"))
    try:
        md = mailbox.Maildir(tmp_path / "mail", create=True)
        md.add(b"From: me@x.com\nTo: a@y.com\nSubject: hello\nMessage-ID: <1@x>\nDate: Mon, 2 Nov 2026 10:00:00 +0000\n\nhi")
        md.add(b"From: A <a@y.com>\nTo: me@x.com\nSubject: Re: hello\nMessage-ID: <2@y>\nIn-Reply-To: <1@x>\n"
               b"Date: Mon, 2 Nov 2026 12:00:00 +0000\n\nyo")
        cfg = make_config(tmp_path, kind="maildir", path=str(tmp_path / "mail"), addresses=["me@x.com"])
        db = store.open_db(cfg.database)
        book.add(db, book.ContactInput(name="Ann A", addresses=["a@y.com"]))
        sync.sync_all(db, cfg)

        def derived():
            return (db.execute("SELECT id, message_count FROM threads").fetchall(),
                    db.execute("SELECT contact_id, state, replied FROM contact_ledger").fetchall())

        good = derived()
        assert good[0] and good[0][0][1] == 2 and good[1] and good[1][0][2] == 1
        with db.conn:
            db.conn.execute("DELETE FROM threads")
            db.conn.execute("DELETE FROM contact_ledger")
        sync.sync_all(db, cfg)
        assert derived() == ([], []), "nothing new: the cheap pass does not rescan"
        sync.sync_all(db, cfg, full=True)
        assert derived() == good
    finally:
        timeutil.set_clock(None)
