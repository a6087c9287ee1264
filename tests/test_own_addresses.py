"""The user's own addresses are read from the config as it is now, not frozen when mail was fetched."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from dovecot import make_message

from syncagent import timeutil
from syncagent.cli import cli
from syncagent.sources.imap import connect as imap_connect
from syncagent.store.db import open_db

ALIAS = "me@alias.example"
ANN, BOB = "ann@example.org", "bob@example.org"


def write_config(path, mailbox, db_path, addresses=None):
    line = f"addresses = {addresses!r}\n".replace("'", '"') if addresses is not None else ""
    path.write_text(
        f'[database]\npath = "{db_path}"\n'
        f'[[accounts]]\nname = "work"\nkind = "imap"\nhost = "127.0.0.1"\nport = {mailbox.server.port}\n'
        f'security = "none"\nusername = "{mailbox.user}"\npassword_env = "SYNCAGENT_TEST_IMAP_PW"\ntimeout = 10\n'
        + line)


def run(config, *args):
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.dovecot
def test_adding_an_alias_to_addresses_rederives_direction_ledger_and_reminders(mailbox, tmp_path, monkeypatch):
    """Mail sent from an alias counts as outgoing after the alias is added, with no refetch and no decision lost."""
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)
    monkeypatch.setenv("SYNCAGENT_TEST_IMAP_PW", mailbox.password)
    monkeypatch.setattr(timeutil, "_clock", lambda: datetime(2026, 11, 10, 12, 0, tzinfo=timezone.utc))
    login = mailbox.user  # an address, so it is the own address while `addresses` is not set
    mailbox.append("Sent", make_message(1, sender=login, to=ANN, date="Mon, 5 Oct 2026 10:00:00 +0000"))
    mailbox.append("Sent", make_message(2, sender=ALIAS, to=BOB, date="Mon, 2 Nov 2026 10:00:00 +0000"))
    mailbox.append("INBOX", make_message(3, sender=BOB, to=ALIAS, date="Tue, 3 Nov 2026 09:00:00 +0000",
                                         extra="In-Reply-To: <msg2@example.org>\r\n"))
    config, db_path = tmp_path / "config.toml", tmp_path / "s.db"
    write_config(config, mailbox, db_path)
    run(config, "contacts", "add", "Ann", ANN)
    run(config, "contacts", "add", "Bob", BOB)
    assert "3 new messages" in run(config, "sync")

    db = open_db(db_path)
    directions = dict(db.execute("SELECT from_address, direction FROM messages").fetchall())
    assert directions == {login: "outgoing", ALIAS: "incoming", BOB: "incoming"}
    ledger = dict(db.execute("SELECT c.name, l.state FROM contacts c JOIN contact_ledger l ON l.contact_id = c.id"))
    assert ledger == {"Ann": "ASKED", "Bob": "INBOUND"}
    (ann_reminder,) = db.execute("SELECT id FROM reminders WHERE kind = 'follow_up' AND status = 'open'").fetchone()
    run(config, "reminders", "dismiss", str(ann_reminder))
    contacts_before = db.execute("SELECT id, name, created_at FROM contacts ORDER BY id").fetchall()
    ids_before = db.execute("SELECT id, message_id FROM messages ORDER BY id").fetchall()

    write_config(config, mailbox, db_path, addresses=[login, ALIAS])
    mailbox.server.reset_commands()
    assert "0 new messages" in run(config, "sync")
    assert not [c for c in mailbox.server.commands if "FETCH" in c], "nothing was fetched again"

    directions = dict(db.execute("SELECT from_address, direction FROM messages").fetchall())
    assert directions == {login: "outgoing", ALIAS: "outgoing", BOB: "incoming"}
    assert db.execute("SELECT id, message_id FROM messages ORDER BY id").fetchall() == ids_before
    assert db.execute("SELECT id, name, created_at FROM contacts ORDER BY id").fetchall() == contacts_before
    ledger = {r[0]: r[1:] for r in db.execute(
        "SELECT c.name, l.state, l.messages_sent, l.messages_received, l.first_response_hours "
        "FROM contacts c JOIN contact_ledger l ON l.contact_id = c.id")}
    assert ledger == {"Ann": ("ASKED", 1, 0, None), "Bob": ("REPLIED", 1, 1, 23.0)}
    reminders = {(name, kind): (rid, status) for name, rid, kind, status in db.execute(
        "SELECT c.name, r.id, r.kind, r.status FROM reminders r JOIN contacts c ON c.id = r.contact_id")}
    assert set(reminders) == {("Ann", "follow_up"), ("Bob", "thank_you")}
    assert reminders["Ann", "follow_up"] == (ann_reminder, "dismissed")
    assert reminders["Bob", "thank_you"][1] == "open"

    # Taking the alias out again turns that mail back, on the next pass, the same way.
    write_config(config, mailbox, db_path, addresses=[login])
    run(config, "sync")
    assert db.execute("SELECT direction FROM messages WHERE from_address = ?", [ALIAS]).fetchone()[0] == "incoming"
    assert dict(db.execute("SELECT c.name, l.state FROM contacts c JOIN contact_ledger l ON l.contact_id = c.id")) \
        == {"Ann": "ASKED", "Bob": "INBOUND"}
    assert db.execute("SELECT status FROM reminders WHERE id = ?", [ann_reminder]).fetchone()[0] == "dismissed"


def test_each_account_counts_only_its_own_addresses(tmp_path):
    """Mail from an address is outgoing in the account that lists it only; an account taken out keeps its rows."""
    import mailbox as mailboxes

    from syncagent import config as config_mod
    from syncagent.pipeline import sync

    raw = (b"From: me@home.example\nTo: ann@example.org\nSubject: hi\nMessage-ID: <1@home.example>\n"
           b"Date: Mon, 2 Nov 2026 10:00:00 +0000\n\nhi")
    for name in ("home", "work"):
        mailboxes.Maildir(tmp_path / name, create=True).add(raw)

    def configure(*accounts):
        return config_mod.parse({"database": {"path": str(tmp_path / "s.db")}, "accounts": [
            {"name": name, "kind": "maildir", "path": str(tmp_path / name), "addresses": addresses}
            for name, addresses in accounts]}, tmp_path / "c.toml")

    db = open_db(tmp_path / "s.db")
    sync.sync_all(db, configure(("home", ["me@work.example"]), ("work", ["me@work.example"])))
    directions = lambda: dict(db.execute("SELECT account, direction FROM messages").fetchall())  # noqa: E731
    assert directions() == {"home": "incoming", "work": "incoming"}
    sync.sync_all(db, configure(("home", ["me@home.example"]), ("work", ["me@work.example"])))
    assert directions() == {"home": "outgoing", "work": "incoming"}
    sync.sync_all(db, configure(("work", ["me@home.example"])))
    assert directions() == {"home": "outgoing", "work": "outgoing"}
