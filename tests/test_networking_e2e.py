"""The rules beyond the turn ledger end to end: a real Dovecot mailbox, the real CLI.

One mailbox holds an introduction that converted, an out-of-office reply in
German that names a return date (and one in English that names none), a
follow-up over Thanksgiving, contacts of each responsiveness class and a
company where nobody answered. The test syncs it, reads `reminders`,
`contacts list` and `companies` at fixed instants, then delivers a reply from
another person at that company and checks that it settles the 3B7 suggestion.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from click.testing import CliRunner
from dovecot import FORBIDDEN

from syncagent import timeutil
from syncagent.cli import cli
from syncagent.sources.imap import connect as imap_connect

ME = "me@example.test"


@pytest.fixture(autouse=True)
def _no_retry(monkeypatch):
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)


def mail(n, sender, to, subject, date, body="Hello", *, cc=None, extra="", ctype="text/plain; charset=utf-8",
         name="Someone"):
    head = (f"From: {name} <{sender}>\r\nTo: {to}\r\n" + (f"Cc: {cc}\r\n" if cc else "")
            + f"Subject: {subject}\r\nDate: {date}\r\nMessage-ID: <e2e{n}@example.org>\r\n{extra}"
            "MIME-Version: 1.0\r\n")
    return (head + f"Content-Type: {ctype}\r\n\r\n{body}\r\n").encode()


GERMAN_AWAY = (
    "--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    "Vielen Dank f=FCr Ihre Nachricht. Ich bin bis zum 4. Dezember nicht im B=FCro und habe nur\r\n"
    "eingeschr=E4nkt Zugriff auf meine E-Mails. In dringenden F=E4llen wenden Sie sich an team@helix.test.\r\n"
    "\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Vielen Dank</p>\r\n--b--"
)

CONTACTS = """name,email,company
Xavier Ortiz,xavier@acme.test,Acme
Chen Li,chen@beta.test,Beta
Fay Wong,fay@epsilon.test,Epsilon
Gus Reyes,gus@zeta.test,Zeta
Eve Stone,eve@delta.test,Delta
Hana Ito,hana@helix.test,Helix
Ian Moss,ian@helix.test, HELIX
Wei Zhang,wei@gamma.test,Gamma
"""


def deliver(mailbox):
    inbox = [
        # Xavier introduces Chen (me in To, Chen in Cc); Chen writes the next day: converted.
        mail(1, "xavier@acme.test", ME, "Intro: you <> Chen", "Mon, 02 Nov 2026 10:00:00 -0500",
             "Chen, meet my friend; I'll let you two take it from here.", cc="chen@beta.test", name="Xavier Ortiz"),
        mail(2, "chen@beta.test", ME, "Great to meet you", "Tue, 03 Nov 2026 10:00:00 -0500", name="Chen Li"),
        mail(4, "fay@epsilon.test", ME, "Re: Coffee?", "Wed, 04 Nov 2026 10:00:00 -0500", name="Fay Wong"),
        mail(6, "gus@zeta.test", ME, "Re: Coffee?", "Mon, 09 Nov 2026 10:00:00 -0500", name="Gus Reyes"),
        # Hana's out-of-office reply (German, quoted-printable, multipart): back after 4 Dec.
        mail(9, "hana@helix.test", ME, "Abwesenheitsnotiz: Quick question", "Mon, 16 Nov 2026 10:02:00 -0500",
             GERMAN_AWAY, extra="Auto-Submitted: auto-replied\r\n", ctype='multipart/alternative; boundary="b"',
             name="Hana Ito"),
        # Wei's auto-reply names no date: nothing moves.
        mail(11, "wei@gamma.test", ME, "Automatic reply: Quick question", "Wed, 18 Nov 2026 10:01:00 -0500",
             "I am travelling with limited access to email and will reply when I can.",
             extra="Auto-Submitted: auto-replied\r\n", name="Wei Zhang"),
    ]
    sent = [
        mail(3, ME, "fay@epsilon.test", "Coffee?", "Mon, 02 Nov 2026 10:00:00 -0500"),
        mail(5, ME, "gus@zeta.test", "Coffee?", "Mon, 02 Nov 2026 10:00:00 -0500"),
        mail(7, ME, "eve@delta.test", "Coffee?", "Mon, 02 Nov 2026 10:00:00 -0500"),
        mail(8, ME, "hana@helix.test", "Quick question", "Mon, 16 Nov 2026 10:00:00 -0500"),
        mail(10, ME, "wei@gamma.test", "Quick question", "Wed, 18 Nov 2026 10:00:00 -0500"),
    ]
    for raw in inbox:
        mailbox.append("INBOX", raw)
    for raw in sent:
        mailbox.append("Sent", raw)


@pytest.fixture
def env(mailbox, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNCAGENT_TEST_IMAP_PW", mailbox.password)
    config = tmp_path / "config.toml"
    config.write_text(f"""timezone = "America/New_York"
[database]
path = "{tmp_path / 'db.sqlite'}"
[[accounts]]
name = "test"
kind = "imap"
host = "127.0.0.1"
port = {mailbox.server.port}
security = "none"
username = "{mailbox.user}"
password_env = "SYNCAGENT_TEST_IMAP_PW"
addresses = ["{ME}"]
folders = ["INBOX", "Sent"]
[reminders]
holidays = "US"
""", encoding="utf-8")
    (tmp_path / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
    return config, tmp_path


def run(config, *args):
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def at(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.dovecot
def test_every_rule_through_the_cli(env, mailbox, monkeypatch):
    """Sync a real mailbox; reminders, contacts and companies show all five rules at a fixed instant."""
    config, tmp = env
    deliver(mailbox)
    monkeypatch.setattr(timeutil, "_clock", lambda: at("2026-11-20T15:00:00Z"))
    run(config, "contacts", "import", str(tmp / "contacts.csv"))
    run(config, "sync")
    assert not FORBIDDEN & set(mailbox.server.commands)
    # Only the two auto-replies had their text fetched for a return date (the first 2 KB of the text
    # part), and the user's own sent messages theirs for the outreach measures (4 KB); nothing else.
    bodies = [line for line in mailbox.server.command_lines if "BODY.PEEK[" in line and "HEADER" not in line]
    assert [line for line in bodies if line.endswith("<0.2048>)")] == ["UID FETCH 5,6 (BODY.PEEK[1]<0.2048>)"]
    assert all(line.endswith(("<0.2048>)", "<0.4096>)")) for line in bodies)

    reminders = json.loads(run(config, "reminders", "--json", "--now", "2026-11-20T15:00:00Z"))
    got = {(r["contact_name"], r["kind"]): r for r in reminders}
    assert {k: v["due_at"] for k, v in got.items()} == {
        ("Xavier Ortiz", "close_loop"): "2026-11-10T15:00:00Z",  # Chen answered 3 Nov 15:00Z, + 7 days
        ("Fay Wong", "thank_you"): "2026-11-05T15:00:00Z",
        ("Gus Reyes", "thank_you"): "2026-11-10T15:00:00Z",
        ("Eve Stone", "follow_up"): "2026-11-12T15:00:00Z",  # 7 business days, Veterans Day skipped
        ("Hana Ito", "follow_up"): "2026-12-07T15:00:00Z",  # back on Fri 4 Dec: Mon 7 Dec, 10:00 as sent
        ("Wei Zhang", "follow_up"): "2026-11-30T15:00:00Z",  # over Thanksgiving; the undated auto-reply moves nothing
        ("Ian Moss", "next_contact"): "2026-11-19T15:00:00Z",  # nobody at Helix answered in 3 business days
    }
    assert "Chen Li" in got[("Xavier Ortiz", "close_loop")]["reason"]
    assert got[("Hana Ito", "follow_up")]["reason"].endswith("out of office, back on Fri 4 Dec")
    assert "back on" not in got[("Wei Zhang", "follow_up")]["reason"]
    assert "Hana Ito" in got[("Ian Moss", "next_contact")]["reason"]
    # Before it is due the suggestion is not listed at all, not even as upcoming.
    early = json.loads(run(config, "reminders", "--json", "--now", "2026-11-19T14:59:00Z"))
    assert not [r for r in early if r["kind"] == "next_contact"]

    contacts = {c["name"]: c for c in json.loads(run(config, "contacts", "list", "--json", "--now",
                                                     "2026-11-20T15:00:00Z"))}
    assert {n: (c["state"], c["responsiveness"]) for n, c in contacts.items()} == {
        "Xavier Ortiz": ("INBOUND", None), "Chen Li": ("INBOUND", None), "Fay Wong": ("REPLIED", "booster"),
        "Gus Reyes": ("REPLIED", "obligate"), "Eve Stone": ("ASKED", "curmudgeon"), "Hana Ito": ("ASKED", None),
        "Ian Moss": (None, None), "Wei Zhang": ("ASKED", None)}
    # Stored by the sync at its clock, and read back the same without --now.
    stored = {c["name"]: (c["state"], c["responsiveness"]) for c in json.loads(run(config, "contacts", "list", "--json"))}
    assert stored == {n: (c["state"], c["responsiveness"]) for n, c in contacts.items()}

    by_class = json.loads(run(config, "stats", "--json", "--by", "responsiveness", "--now", "2026-11-20T15:00:00Z"))
    reached = {g["responsiveness"]: g["all_time"]["reached"] for g in by_class["groups"]}
    assert reached == {"booster": 1, "obligate": 1, "curmudgeon": 1, "(none)": 2}  # Hana and Wei still pending
    assert json.loads(run(config, "stats", "--json", "--by", "responsiveness"))["groups"] == by_class["groups"]

    companies = {c["company"]: c for c in json.loads(run(config, "companies", "--json", "--now",
                                                         "2026-11-20T15:00:00Z"))}
    helix = companies["Helix"]
    assert (helix["tracked"], helix["reached"], helix["replied"], helix["reply_rate"]) == (2, 1, 0, 0.0)
    assert (helix["owed"], helix["owed_kinds"]) == (1, "next_contact")
    assert json.loads(run(config, "companies", "--json")) == list(companies.values())  # the view agrees

    intro = run(config, "reminders")
    assert "Ian Moss" in intro and "Xavier Ortiz" in intro

    # Ian (another person at Helix) writes: the suggestion is settled by his message.
    mailbox.append("INBOX", mail(12, "ian@helix.test", ME, "Hana is away", "Mon, 23 Nov 2026 09:00:00 -0500",
                                 name="Ian Moss"))
    monkeypatch.setattr(timeutil, "_clock", lambda: at("2026-11-24T15:00:00Z"))
    run(config, "sync")
    later = json.loads(run(config, "reminders", "--json", "--now", "2026-11-24T15:00:00Z"))
    assert not [r for r in later if r["kind"] == "next_contact"]
    from syncagent.store.db import open_db

    db = open_db(tmp / "db.sqlite")
    row = db.execute("SELECT r.status, m.message_id FROM reminders r JOIN messages m ON m.id = r.resolved_by "
                     "WHERE r.kind = 'next_contact'").fetchone()
    assert row == ("done", "e2e12@example.org")
    intro_row = db.execute("SELECT introducer_address, introducer_contact_id IS NOT NULL, converted_at "
                           "FROM introductions").fetchall()
    assert intro_row == [("xavier@acme.test", 1, "2026-11-03T15:00:00Z")]
    assert db.execute("SELECT ooo_until FROM messages WHERE ooo_until IS NOT NULL").fetchall() == [("2026-12-04",)]
