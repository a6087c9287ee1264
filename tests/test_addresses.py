"""One address rule: mail headers, contacts, invitations and the config key addresses the same way."""

import mailbox
import sqlite3
from datetime import datetime, timezone

import pytest
import sqlite_utils
from click.testing import CliRunner

from syncagent import timeutil
from syncagent.cli import cli
from syncagent.contacts import book
from syncagent.parse.addresses import normalize_address
from syncagent.parse.headers import parse_message
from syncagent.store import db as store
from syncagent.store.migrations import migrations

RULES = [
    # display-name forms, angle brackets, mailto:
    ("jane@example.com", "jane@example.com"),
    ("Jane Doe <jane@example.com>", "jane@example.com"),
    ('"Doe, Jane" <jane@example.com>', "jane@example.com"),
    ("jane@example.com (Jane Doe)", "jane@example.com"),
    ("<jane@example.com>", "jane@example.com"),
    ("mailto:jane@example.com", "jane@example.com"),
    ("Jane <MAILTO:jane@example.com>", "jane@example.com"),
    # case and whitespace
    ("  Jane@Example.COM \t", "jane@example.com"),
    ("jane doe@example.com", None),
    # the DNS root's trailing dot
    ("jane@example.com.", "jane@example.com"),
    ("jane@example.com..", None),
    # internationalised domains: Unicode, whichever form was written
    ("jane@Bücher.de", "jane@bücher.de"),
    ("jane@xn--bcher-kva.de", "jane@bücher.de"),
    ("jane@bu\u0308cher.de", "jane@bücher.de"),  # decomposed ü
    # single-label domains are addresses
    ("bob@localhost", "bob@localhost"),
    # not addresses
    ("not an address", None),
    ("a@b@example.org", None),
    ("@example.org", None),
    ("jane@", None),
    ("jane@example..org", None),
    ("jane@[192.0.2.1]", None),
    ('"jane doe"@example.org', None),
    ("x" * 310 + "@example.org", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize("text, expected", RULES)
def test_the_address_rule(text, expected):
    """Each spelling of one mailbox gives one key, and what is no address gives None."""
    assert normalize_address(text) == expected


@pytest.mark.parametrize("text, expected", [(t, e) for t, e in RULES if t and "\t" not in t])
def test_a_contact_and_a_message_from_the_same_text_get_the_same_address(text, expected):
    """Adding a contact and parsing a From header of the same text agree, address or not."""
    parsed = parse_message(f"From: {text}\r\n\r\n".encode()).from_address
    try:
        added = book.clean_addresses([text])
    except book.BadInput:
        added = [None]
    assert parsed == added[0] == expected


def test_contacts_imported_in_one_spelling_match_mail_written_in_another(tmp_path, monkeypatch):
    """A CSV's 'Jane <jane@xn--bcher-kva.de>' and 'Bob@Example.ORG.' match mail from 'jane@bücher.de' and 'bob@example.org'."""
    mail = mailbox.Maildir(tmp_path / "mail", create=True)
    mail.add("From: me@example.net\nTo: Jane <jane@bücher.de>, bob@example.org\nSubject: hello\n"
             "Message-ID: <1@example.net>\nDate: Mon, 2 Nov 2026 10:00:00 +0000\n\nhi".encode())
    mail.add(b"From: BOB@EXAMPLE.ORG.\nTo: me@example.net\nSubject: Re: hello\nMessage-ID: <2@example.org>\n"
             b"In-Reply-To: <1@example.net>\nDate: Mon, 2 Nov 2026 12:00:00 +0000\n\nyo")
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "s.db"}"\n[[accounts]]\nname = "m"\nkind = "maildir"\n'
                      f'path = "{tmp_path / "mail"}"\naddresses = ["Me@Example.NET."]\n')
    csv = tmp_path / "people.csv"
    csv.write_text('name,email\nJane,Jane <jane@xn--bcher-kva.de>\nBob,Bob@Example.ORG.\n', encoding="utf-8")
    monkeypatch.setattr(timeutil, "_clock", lambda: datetime(2026, 11, 3, tzinfo=timezone.utc))
    runner = CliRunner()
    for args in (["contacts", "import", str(csv)], ["sync"]):
        result = runner.invoke(cli, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
    db = store.open_db(tmp_path / "s.db")
    rows = db.execute("SELECT c.name, l.messages_sent, l.messages_received, l.state FROM contacts c "
                      "JOIN contact_ledger l ON l.contact_id = c.id ORDER BY c.name").fetchall()
    assert rows == [("Bob", 1, 1, "REPLIED"), ("Jane", 1, 0, "ASKED")]


def test_stored_spellings_are_rewritten_and_contacts_that_become_one_are_merged(tmp_path):
    """Upgrading renormalises stored addresses; two contacts now sharing one merge, keeping fields and decisions."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    migrations.apply(sqlite_utils.Database(conn), stop_before="0006_one_address_rule")
    at = "2026-11-02T10:00:00Z"
    conn.executescript(f"""
        INSERT INTO contacts (id, name, company, tags, notes, created_at, updated_at) VALUES
            (1, 'Jane', NULL, 'alumni', 'met at PyCon', '{at}', '{at}'),
            (2, 'Jane Doe', 'Acme', 'investor, alumni', 'intro by Bob', '2026-11-01T00:00:00Z', '{at}'),
            (3, 'Bob', NULL, NULL, NULL, '{at}', '{at}');
        INSERT INTO contact_emails (address, contact_id, position) VALUES
            ('jane@xn--bcher-kva.de', 1, 0), ('jane@bücher.de', 2, 0), ('jane@work.example', 2, 1),
            ('bob@example.org', 3, 0);
        INSERT INTO reminders (contact_id, kind, anchor, due_at, status, created_at, resolved_at) VALUES
            (1, 'follow_up', 'a', '{at}', 'open', '{at}', NULL),
            (2, 'follow_up', 'a', '{at}', 'dismissed', '{at}', '{at}'),
            (2, 'check_in', 'b', '{at}', 'done', '{at}', '{at}');
        INSERT INTO messages (id, account, message_id, date, from_address, direction, first_seen_at) VALUES
            (1, 'm', '1@x', '{at}', 'bob@example.org.', 'incoming', '{at}');
        INSERT INTO message_addresses (message, role, address) VALUES
            (1, 'from', 'bob@example.org.'), (1, 'to', 'jane@xn--bcher-kva.de'), (1, 'to', 'jane@bücher.de'),
            (1, 'cc', 'a@b..c');
    """)
    conn.close()
    db = store.open_db(path)
    people = {c["id"]: (c["name"], c["company"], c["tags"], c["notes"], c["emails"], c["created_at"])
              for c in book.list_contacts(db)}
    assert people == {
        1: ("Jane", "Acme", "alumni, investor", "met at PyCon\n\nintro by Bob",
            ["jane@bücher.de", "jane@work.example"], "2026-11-01T00:00:00Z"),
        3: ("Bob", None, None, None, ["bob@example.org"], at),
    }
    assert sorted(db.execute("SELECT contact_id, kind, anchor, status FROM reminders")) == [
        (1, "check_in", "b", "done"), (1, "follow_up", "a", "dismissed")]
    assert db.execute("SELECT from_address FROM messages").fetchone()[0] == "bob@example.org"
    assert sorted(db.execute("SELECT role, address FROM message_addresses")) == [
        ("cc", "a@b..c"), ("from", "bob@example.org"), ("to", "jane@bücher.de")]
    assert book.find(db, "Jane <JANE@XN--BCHER-KVA.DE.>")["id"] == 1


def test_an_own_address_that_is_no_address_is_a_config_error(tmp_path):
    """`addresses = ["me at example"]` is refused with one sentence naming the key."""
    from syncagent import config
    from syncagent.errors import ConfigError

    with pytest.raises(ConfigError, match=r"accounts\.m\.addresses.*'me at example'.*not an email address"):
        config.parse({"accounts": [{"name": "m", "kind": "mbox", "path": "x", "addresses": ["me at example"]}]},
                     tmp_path / "c.toml")
    ok = config.parse({"accounts": [{"name": "m", "kind": "mbox", "path": "x",
                                     "addresses": ["Me <ME@Example.com.>", "me@example.com"]}]}, tmp_path / "c.toml")
    assert ok.accounts[0].addresses == ("me@example.com",)

