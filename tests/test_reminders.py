"""Reminder rules (pure), the reminders table lifecycle, and the `reminders` command."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from syncagent import config as config_mod
from syncagent.errors import InputError
from syncagent.ledger.turns import Event, compute
from syncagent.pipeline import reminders
from syncagent.store.db import open_db
from syncagent.timeutil import iso

NY = ZoneInfo("America/New_York")
SETTINGS = config_mod.Reminders()  # 24 h, 7 business days, 3 unanswered, 90 days


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def out(when, n, subject="Coffee chat?"):
    return Event(at(when), "out", f"message:{n}", subject)


def inc(when, n, subject="Re: Coffee chat?"):
    return Event(at(when), "in", f"message:{n}", subject)


def meet(when, n, summary="Coffee"):
    return Event(at(when), "meeting", f"meeting:{n}", summary)


MON = "2026-11-02T14:00:00"  # Monday 2 Nov 2026, 09:00 in New York (EST)
MON_AT = datetime.fromisoformat(MON).replace(tzinfo=timezone.utc)
NOW = at("2026-11-20T12:00:00")

# (events, cadence_days, expected (kind, due_at, anchor) or None, what it proves)
CASES = [
    ([], None, None, "no history owes nothing"),
    ([inc(MON, 1)], None, None, "INBOUND owes nothing"),
    ([out(MON, 1)], None, ("follow_up", "2026-11-11T14:00:00", "message:1"), "ASKED: +7 business days"),
    ([out(MON, 1), out("2026-11-11T15:00:00", 2)], None,
     ("follow_up", "2026-11-20T15:00:00", "message:2"), "a follow-up restarts the follow-up clock"),
    ([out(MON, 1), out("2026-11-11T15:00:00", 2), out("2026-11-20T10:00:00", 3)], None, None,
     "max_unanswered (3) messages unanswered: stop"),
    ([out(MON, 1), inc("2026-11-03T10:00:00", 2)], None,
     ("thank_you", "2026-11-04T10:00:00", "message:2"), "REPLIED: thank-you 24 h after the reply"),
    ([out(MON, 1), inc("2026-11-03T10:00:00", 2), inc("2026-11-03T18:00:00", 3)], None,
     ("thank_you", "2026-11-04T10:00:00", "message:2"), "two replies: counted from the first"),
    ([out(MON, 1), meet("2026-11-05T16:00:00", 7)], None,
     ("thank_you", "2026-11-06T16:00:00", "meeting:7"), "MET: thank-you 24 h after the meeting ends"),
    ([out(MON, 1), inc("2026-11-03T10:00:00", 2), out("2026-11-03T20:00:00", 3)], None,
     ("check_in", "2027-02-01T20:00:00", "message:3"), "ACKED: check-in after 90 days"),
    ([out(MON, 1), inc("2026-11-03T10:00:00", 2), out("2026-11-03T20:00:00", 3)], 30,
     ("check_in", "2026-12-03T20:00:00", "message:3"), "per-contact cadence_days overrides 90"),
    ([out(MON, 1), inc("2026-11-03T10:00:00", 2), out("2026-11-03T20:00:00", 3), inc("2026-11-04T09:00:00", 4)],
     None, ("check_in", "2027-02-02T09:00:00", "message:4"), "they answered the thank-you: check-in from it"),
    ([inc(MON, 1), out("2026-11-02T15:00:00", 2)], None,
     ("check_in", "2027-01-31T15:00:00", "message:2"), "INBOUND answered: ACKED, a check-in"),
]


@pytest.mark.parametrize("events, cadence, expected, why", CASES, ids=[c[3] for c in CASES])
def test_obligation_table(events, cadence, expected, why):
    """Each ledger state maps to the reminder DESIGN.md names, with the right due time and anchor."""
    ob = reminders.obligation(compute(events, NOW), SETTINGS, NY, NOW, cadence)
    got = (ob.kind, ob.due_at, ob.anchor) if ob else None
    want = (expected[0], at(expected[1]), expected[2]) if expected else None
    assert got == want, why


def test_follow_up_across_dst_keeps_local_time():
    """A follow-up counted over the November DST change is due at the same New York wall time."""
    ob = reminders.obligation(compute([out("2026-10-27T13:15:00", 1)], NOW), SETTINGS, NY, NOW)
    assert ob.due_at == at("2026-11-05T14:15:00")  # 09:15 EDT -> 09:15 EST


def test_reason_lines():
    """Reasons are one readable line: who, what, when, and how many asks so far."""
    now = at("2026-11-06T11:00:00")
    replied = reminders.obligation(compute([out(MON, 1), inc("2026-11-03T10:00:00", 2)], now), SETTINGS, NY, now,
                                   name="Priya Shah")
    assert replied.reason == "Priya Shah replied 3 days ago; no thank-you sent"
    asked = reminders.obligation(compute([out(MON, 1)], now), SETTINGS, NY, now)
    assert asked.reason == "No reply to 'Coffee chat?' sent Mon 2 Nov (1 of 3)"
    met = reminders.obligation(compute([meet("2026-11-05T16:00:00", 7)], now), SETTINGS, NY, now, name="Priya Shah")
    assert met.reason == "Met Priya Shah 19 hours ago ('Coffee'); no thank-you sent"
    later = at("2027-02-03T21:00:00")
    acked = reminders.obligation(compute([inc(MON, 1), out("2026-11-03T20:00:00", 2)], later), SETTINGS, NY, later)
    assert acked.reason == "Last talked 92 days ago"


# --- the table -------------------------------------------------------------------

@pytest.fixture
def cfg(tmp_path):
    return config_mod.parse({"timezone": "America/New_York", "database": {"path": str(tmp_path / "s.db")}},
                            tmp_path / "config.toml")


@pytest.fixture
def db(cfg):
    return open_db(cfg.database)


ME = "me@example.com"


def add_contact(db, name, email, company=None, cadence=None):
    cur = db.conn.execute(
        "INSERT INTO contacts (name, company, cadence_days, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        [name, company, cadence, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"])
    db.conn.execute("INSERT INTO contact_emails (address, contact_id, position) VALUES (?, ?, 0)",
                    [email, cur.lastrowid])
    return cur.lastrowid


def add_message(db, when, direction, other, subject):
    """A stored message between the user and ``other``; returns messages.id."""
    sender, to = (ME, other) if direction == "outgoing" else (other, ME)
    cur = db.conn.execute(
        "INSERT INTO messages (account, message_id, date, from_address, subject, direction, first_seen_at) "
        "VALUES ('test', ?, ?, ?, ?, ?, ?)",
        [f"<{when}.{sender}.{other}@test>", iso(at(when)), sender, subject, direction, iso(at(when))])
    mid = cur.lastrowid
    db.conn.execute("INSERT INTO message_addresses (message, role, address) VALUES (?, 'from', ?)", [mid, sender])
    db.conn.execute("INSERT INTO message_addresses (message, role, address) VALUES (?, 'to', ?)", [mid, to])
    return mid


def rows(db):
    cur = db.execute("SELECT id, contact_id, kind, anchor, status, resolved_at, resolved_by FROM reminders ORDER BY id")
    return [tuple(r) for r in cur.fetchall()]


PRIYA = "priya@example.org"


def test_reconcile_creates_once_and_reply_settles(db, cfg):
    """A follow-up row is created once; the reply settles it (resolved_by = the reply) and raises a thank-you."""
    cid = add_contact(db, "Priya Shah", PRIYA, "Acme")
    m1 = add_message(db, MON, "outgoing", PRIYA, "Coffee chat?")
    reminders.reconcile(db, cfg, at("2026-11-03T00:00:00"))
    reminders.reconcile(db, cfg, at("2026-11-03T00:00:00"))
    assert rows(db) == [(1, cid, "follow_up", f"message:{m1}", "open", None, None)]
    m2 = add_message(db, "2026-11-12T10:00:00", "incoming", PRIYA, "Re: Coffee chat?")
    counts = reminders.reconcile(db, cfg, at("2026-11-12T11:00:00"))
    assert counts == {"created": 1, "settled": 1, "woken": 0}
    assert rows(db) == [
        (1, cid, "follow_up", f"message:{m1}", "done", "2026-11-12T10:00:00Z", m2),
        (2, cid, "thank_you", f"message:{m2}", "open", None, None),
    ]
    m3 = add_message(db, "2026-11-12T20:00:00", "outgoing", PRIYA, "Thank you!")
    reminders.reconcile(db, cfg, at("2026-11-13T00:00:00"))
    assert rows(db)[1] == (2, cid, "thank_you", f"message:{m2}", "done", "2026-11-12T20:00:00Z", m3)
    assert rows(db)[2][2:5] == ("check_in", f"message:{m3}", "open")


def test_follow_up_settled_by_next_follow_up(db, cfg):
    """A second follow-up settles the first row and raises a new one anchored on itself."""
    add_contact(db, "Priya Shah", PRIYA)
    add_message(db, MON, "outgoing", PRIYA, "Coffee chat?")
    reminders.reconcile(db, cfg, at("2026-11-03T00:00:00"))
    m2 = add_message(db, "2026-11-11T15:00:00", "outgoing", PRIYA, "Re: Coffee chat?")
    reminders.reconcile(db, cfg, at("2026-11-11T16:00:00"))
    assert [r[2:] for r in rows(db)] == [
        ("follow_up", "message:1", "done", "2026-11-11T15:00:00Z", m2),
        ("follow_up", f"message:{m2}", "open", None, None),
    ]


def test_dismissed_stays_dismissed_and_new_reply_raises_new_row(db, cfg):
    """A dismissal sticks across reconciles; a reply after it raises a new (thank-you) row."""
    add_contact(db, "Priya Shah", PRIYA)
    add_message(db, MON, "outgoing", PRIYA, "Coffee chat?")
    reminders.reconcile(db, cfg, at("2026-11-12T00:00:00"))
    reminders.mark(db, 1, "dismiss", at("2026-11-12T01:00:00"))
    reminders.reconcile(db, cfg, at("2026-11-12T02:00:00"))
    assert rows(db) == [(1, 1, "follow_up", "message:1", "dismissed", "2026-11-12T01:00:00Z", None)]
    assert reminders.listing(db, cfg, at("2026-11-12T02:00:00")) == []
    m2 = add_message(db, "2026-11-13T10:00:00", "incoming", PRIYA, "Re: Coffee chat?")
    reminders.reconcile(db, cfg, at("2026-11-13T11:00:00"))
    assert [r[2:5] for r in rows(db)] == [("follow_up", "message:1", "dismissed"),
                                          ("thank_you", f"message:{m2}", "open")]


def test_snooze_expires(db, cfg):
    """A snoozed reminder is hidden until snoozed_until, then open again (and listed) after reconcile."""
    add_contact(db, "Priya Shah", PRIYA)
    add_message(db, MON, "outgoing", PRIYA, "Coffee chat?")
    reminders.reconcile(db, cfg, at("2026-11-12T00:00:00"))
    until = at("2026-11-15T00:00:00")
    reminders.mark(db, 1, "snooze", at("2026-11-12T00:00:00"), until)
    second = timedelta(seconds=1)
    assert reminders.listing(db, cfg, until - second) == []
    reminders.reconcile(db, cfg, until - second)
    assert rows(db)[0][4] == "snoozed"
    assert [r["id"] for r in reminders.listing(db, cfg, until)] == [1]
    reminders.reconcile(db, cfg, until)
    assert rows(db)[0][4] == "open"


def test_snooze_default_is_three_days_and_past_refused(db, cfg):
    """`snooze` without --until postpones by 3 days; a date in the past is refused with a sentence."""
    add_contact(db, "Priya Shah", PRIYA)
    add_message(db, MON, "outgoing", PRIYA, "Coffee chat?")
    reminders.reconcile(db, cfg, at("2026-11-12T00:00:00"))
    row = reminders.mark(db, 1, "snooze", at("2026-11-12T00:00:00"))
    assert row["snoozed_until"] == "2026-11-15T00:00:00Z"
    with pytest.raises(InputError, match="not in the future"):
        reminders.mark(db, 1, "snooze", at("2026-11-12T00:00:00"), at("2026-11-11T00:00:00"))


def test_due_boundary_one_second(db, cfg):
    """Due at 14:00:00Z: one second before it is upcoming (not --due); at and after it, overdue."""
    add_contact(db, "Priya Shah", PRIYA)
    add_message(db, MON, "outgoing", PRIYA, "Coffee chat?")
    due = at("2026-11-11T14:00:00")
    second = timedelta(seconds=1)
    before = reminders.listing(db, cfg, due - second)
    assert before[0]["overdue_seconds"] == -1
    assert reminders.listing(db, cfg, due - second, due_only=True) == []
    assert reminders.listing(db, cfg, due, due_only=True)[0]["overdue_seconds"] == 0
    assert reminders.listing(db, cfg, due + second, due_only=True)[0]["overdue_seconds"] == 1


def test_max_unanswered_cut_off(db, cfg):
    """After the third unanswered message the open follow-up is settled and no new one appears."""
    add_contact(db, "Priya Shah", PRIYA)
    add_message(db, MON, "outgoing", PRIYA, "Coffee chat?")
    add_message(db, "2026-11-11T15:00:00", "outgoing", PRIYA, "Re: Coffee chat?")
    reminders.reconcile(db, cfg, at("2026-11-12T00:00:00"))
    m3 = add_message(db, "2026-11-20T15:00:00", "outgoing", PRIYA, "Re: Coffee chat?")
    reminders.reconcile(db, cfg, at("2026-11-21T00:00:00"))
    assert [r[4:] for r in rows(db)] == [("done", "2026-11-20T15:00:00Z", m3)]
    assert reminders.listing(db, cfg, at("2026-12-31T00:00:00")) == []


def test_cadence_days_per_contact(db, cfg):
    """contacts.cadence_days replaces check_in_after_days for that contact only."""
    add_contact(db, "Priya Shah", PRIYA, cadence=30)
    add_contact(db, "Sam Lee", "sam@example.net")
    for other in (PRIYA, "sam@example.net"):
        add_message(db, "2026-11-02T14:00:00", "incoming", other, "Hello")
        add_message(db, "2026-11-03T14:00:00", "outgoing", other, "Re: Hello")
    listed = reminders.listing(db, cfg, at("2026-11-04T00:00:00"))
    assert [(r["contact_name"], r["kind"], r["due_at"]) for r in listed] == [
        ("Priya Shah", "check_in", "2026-12-03T14:00:00Z"),
        ("Sam Lee", "check_in", "2027-02-01T14:00:00Z"),
    ]


def test_replay_now_does_not_settle_stored_rows(db, cfg):
    """`--now` in the past shows the reminder owed then (a later-settled row reads as open), changing nothing stored."""
    add_contact(db, "Priya Shah", PRIYA)
    m1 = add_message(db, MON, "outgoing", PRIYA, "Coffee chat?")
    m2 = add_message(db, "2026-11-12T10:00:00", "incoming", PRIYA, "Re: Coffee chat?")
    reminders.reconcile(db, cfg, at("2026-11-03T00:00:00"))  # a sync on the 3rd raised the follow-up
    reminders.reconcile(db, cfg, at("2026-11-13T00:00:00"))
    before = rows(db)
    past = reminders.listing(db, cfg, at("2026-11-11T15:00:00"))
    assert [(r["id"], r["kind"], r["anchor"], r["overdue_seconds"]) for r in past] == [
        (1, "follow_up", f"message:{m1}", 3600)]
    assert rows(db) == before
    now = reminders.listing(db, cfg, at("2026-11-13T00:00:00"))
    assert [(r["id"], r["kind"], r["anchor"]) for r in now] == [(2, "thank_you", f"message:{m2}")]


def test_listing_order_and_fields(db, cfg):
    """Overdue first (thank-yous, follow-ups, check-ins), upcoming after; each with the documented fields."""
    add_contact(db, "Ann Follow", "ann@example.org", "Initech")
    add_contact(db, "Bo Thanks", "bo@example.org")
    add_contact(db, "Cy Later", "cy@example.org")
    add_message(db, "2026-11-02T14:00:00", "outgoing", "ann@example.org", "Coffee chat?")
    add_message(db, "2026-11-10T14:00:00", "outgoing", "bo@example.org", "Question")
    add_message(db, "2026-11-12T14:00:00", "incoming", "bo@example.org", "Re: Question")
    add_message(db, "2026-11-13T14:00:00", "outgoing", "cy@example.org", "Hello")
    listed = reminders.listing(db, cfg, at("2026-11-16T12:00:00"))
    assert [(r["contact_name"], r["kind"], r["overdue_seconds"] >= 0) for r in listed] == [
        ("Bo Thanks", "thank_you", True), ("Ann Follow", "follow_up", True), ("Cy Later", "follow_up", False)]
    first = listed[1]
    assert first["contact_email"] == "ann@example.org" and first["company"] == "Initech"
    assert first["due_at"] == "2026-11-11T14:00:00Z" and first["last_subject"] == "Coffee chat?"
    assert set(first) >= {"id", "contact_id", "contact_name", "contact_email", "company", "kind", "due_at",
                          "reason", "status", "overdue_seconds", "last_subject"}


def test_unknown_id_is_one_sentence(db):
    """Acting on an id that does not exist raises a one-sentence InputError."""
    with pytest.raises(InputError, match=r"^There is no reminder with id 99; run `syncagent reminders`"):
        reminders.mark(db, 99, "done")


# --- the command -----------------------------------------------------------------

@pytest.fixture
def cli_env(tmp_path, cfg, db):
    path = tmp_path / "config.toml"
    path.write_text(f'timezone = "America/New_York"\n[database]\npath = "{cfg.database}"\n')
    add_contact(db, "Priya Shah", PRIYA, "Acme")
    add_message(db, MON, "outgoing", PRIYA, "Coffee chat?")
    return path


def invoke(path, *args):
    from syncagent.cli import cli

    return CliRunner().invoke(cli, ["--config", str(path), "reminders", *args], catch_exceptions=False)


def test_cli_json_shape(cli_env, monkeypatch):
    """`reminders --json` prints the documented JSON array; an obligation no sync stored yet has "id": null
    under --now, and its row's id once `reminders` ran at the real clock."""
    from syncagent import timeutil

    result = invoke(cli_env, "--json", "--now", "2026-11-12T00:00:00Z")
    assert result.exit_code == 0, result.output
    expected = {
        "id": None, "contact_id": 1, "contact_name": "Priya Shah", "contact_email": PRIYA, "company": "Acme",
        "kind": "follow_up", "due_at": "2026-11-11T14:00:00Z",
        "reason": "No reply to 'Coffee chat?' sent Mon 2 Nov (1 of 3)", "status": "open",
        "overdue_seconds": 36000, "stale": False, "last_subject": "Coffee chat?", "anchor": "message:1",
        "created_at": None, "snoozed_until": None, "notified_at": None,
    }
    assert json.loads(result.output) == [expected]
    assert invoke(cli_env, "--json", "--due", "--now", "2026-11-11T13:59:59Z").output.strip() == "[]"
    monkeypatch.setattr(timeutil, "_clock", lambda: at("2026-11-12T00:00:00"))
    stored = {**expected, "id": 1, "created_at": "2026-11-12T00:00:00Z"}
    assert json.loads(invoke(cli_env, "--json").output) == [stored]
    assert json.loads(invoke(cli_env, "--json", "--now", "2026-11-12T00:00:00Z").output) == [stored]


def test_cli_table_and_actions(cli_env, monkeypatch):
    """The table shows how overdue and why; done/dismiss/snooze act by id; an unknown id exits 1."""
    from syncagent import timeutil

    monkeypatch.setattr(timeutil, "_clock", lambda: datetime(2026, 11, 12, tzinfo=timezone.utc))
    table = invoke(cli_env)
    assert table.exit_code == 0
    assert "#1    follow-up  Priya Shah <priya@example.org>" in table.output
    assert "Priya Shah" in table.output and "10 hours overdue" in table.output and "Coffee chat?" in table.output
    snoozed = invoke(cli_env, "snooze", "1", "--until", "2026-12-01")
    assert snoozed.exit_code == 0 and "Snoozed reminder 1 until" in snoozed.output
    from syncagent.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--config", str(cli_env), "reminders", "done", "42"])
    assert exc.value.code == 1


def test_cli_help_has_examples():
    """`reminders --help` shows examples."""
    from syncagent.cli import cli

    result = CliRunner().invoke(cli, ["reminders", "--help"])
    assert result.exit_code == 0 and "Examples" in result.output and "snooze" in result.output


# --- end to end: Dovecot -> sync -> reminders ------------------------------------------

def _mail(sender, to, subject, date, mid, in_reply_to=None):
    extra = f"In-Reply-To: {in_reply_to}\r\n" if in_reply_to else ""
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: {mid}\r\n{extra}"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n").encode()


@pytest.mark.dovecot
def test_end_to_end_from_a_real_mailbox(mailbox, tmp_path, monkeypatch):
    """Mail in Dovecot + contacts -> `sync` -> `reminders --json --now` as expected; a thank-you
    appended to Sent and synced settles the thank-you reminder, resolved_by pointing at it."""
    me = "me@example.test"
    monkeypatch.setenv("SYNCAGENT_TEST_IMAP_PW", mailbox.password)
    path = tmp_path / "config.toml"
    path.write_text(
        f'timezone = "America/New_York"\n[database]\npath = "{tmp_path / "s.db"}"\n'
        f'[[accounts]]\nname = "test"\nkind = "imap"\nhost = "127.0.0.1"\nport = {mailbox.server.port}\n'
        f'security = "none"\nusername = "{mailbox.user}"\npassword_env = "SYNCAGENT_TEST_IMAP_PW"\n'
        f'addresses = ["{me}"]\ntimeout = 10\n')
    mailbox.append("Sent", _mail(me, "Priya Shah <priya@example.org>", "Coffee chat?",
                                 "Mon, 2 Nov 2026 09:00:00 -0500", "<ask1@example.test>"))
    mailbox.append("INBOX", _mail("Priya Shah <priya@example.org>", me, "Re: Coffee chat?",
                                  "Thu, 12 Nov 2026 10:00:00 -0500", "<reply1@example.org>", "<ask1@example.test>"))
    mailbox.append("Sent", _mail(me, "sam@example.net", "Quick question",
                                 "Mon, 16 Nov 2026 09:00:00 -0500", "<ask2@example.test>"))
    mailbox.append("INBOX", _mail("Lee Park <lee@example.com>", me, "Hello",
                                  "Tue, 17 Nov 2026 09:00:00 -0500", "<hello@example.com>"))
    mailbox.append("Sent", _mail(me, "lee@example.com", "Re: Hello",
                                 "Wed, 18 Nov 2026 10:00:00 -0500", "<re-hello@example.test>", "<hello@example.com>"))
    mailbox.append("INBOX", _mail("news@list.example", me, "Weekly news",
                                  "Wed, 18 Nov 2026 11:00:00 -0500", "<news@list.example>"))
    from syncagent.cli import cli

    runner = CliRunner()

    def run(*args):
        result = runner.invoke(cli, ["--config", str(path), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    run("contacts", "add", "Priya Shah", "priya@example.org", "--company", "Acme")
    run("contacts", "add", "Sam Lee", "sam@example.net")
    run("contacts", "add", "Lee Park", "lee@example.com")
    run("sync")
    listed = json.loads(run("reminders", "--json", "--now", "2026-11-20T12:00:00Z"))
    keep = ("id", "contact_name", "contact_email", "company", "kind", "due_at", "reason", "overdue_seconds",
            "last_subject")
    assert [{k: r[k] for k in keep} for r in listed] == [
        {"id": 1, "contact_name": "Priya Shah", "contact_email": "priya@example.org", "company": "Acme",
         "kind": "thank_you", "due_at": "2026-11-13T15:00:00Z",
         "reason": "Priya Shah replied 7 days ago; no thank-you sent", "overdue_seconds": 7 * 86400 - 3 * 3600,
         "last_subject": "Re: Coffee chat?"},
        {"id": 2, "contact_name": "Sam Lee", "contact_email": "sam@example.net", "company": None,
         "kind": "follow_up", "due_at": "2026-11-25T14:00:00Z",
         "reason": "No reply to 'Quick question' sent Mon 16 Nov (1 of 3)", "overdue_seconds": -(5 * 86400 + 2 * 3600),
         "last_subject": "Quick question"},
        {"id": 3, "contact_name": "Lee Park", "contact_email": "lee@example.com", "company": None,
         "kind": "check_in", "due_at": "2027-02-16T15:00:00Z", "reason": "Last talked 45 hours ago",
         "overdue_seconds": -(88 * 86400 + 3 * 3600), "last_subject": "Re: Hello"},
    ]
    mailbox.append("Sent", _mail(me, "priya@example.org", "Re: Coffee chat?", "Fri, 13 Nov 2026 08:00:00 -0500",
                                 "<thanks@example.test>", "<reply1@example.org>"))
    run("sync")
    db = open_db(tmp_path / "s.db")
    thanks = db.execute("SELECT id FROM messages WHERE message_id LIKE '%thanks@example.test%'").fetchone()[0]
    assert db.execute("SELECT status, resolved_at, resolved_by FROM reminders WHERE id = 1").fetchone() == (
        "done", "2026-11-13T13:00:00Z", thanks)
    after = json.loads(run("reminders", "--json", "--now", "2026-11-20T12:00:00Z"))
    assert [(r["contact_name"], r["kind"]) for r in after] == [
        ("Sam Lee", "follow_up"), ("Priya Shah", "check_in"), ("Lee Park", "check_in")]


# --- notifications -------------------------------------------------------------------------

def _notify_config(tmp_path, **notify):
    data = {"timezone": "America/New_York", "database": {"path": str(tmp_path / "s.db")}, "notify": notify}
    if notify.get("email"):
        data["smtp"] = {"host": "127.0.0.1", "port": notify.pop("port"), "security": "none",
                        "from_address": "me@example.com"}
        data["notify"] = {"email": True}
    return config_mod.parse(data, tmp_path / "config.toml")


def test_desktop_notification_once_per_reminder(tmp_path, monkeypatch):
    """A newly overdue reminder is announced once through notify-send; the next sync announces nothing."""
    cfg = _notify_config(tmp_path, desktop=True)
    db = open_db(cfg.database)
    add_contact(db, "Priya Shah", PRIYA)
    add_message(db, MON, "outgoing", PRIYA, "Coffee chat?")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "notified.txt"
    script = bindir / "notify-send"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{record}"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    reminders.reconcile(db, cfg, MON_AT)  # the sync that saw the message
    from syncagent.notify import announce as notify

    assert notify.notify_due(db, cfg, at("2026-11-11T13:59:59")) == 0  # not due yet
    assert notify.notify_due(db, cfg, at("2026-11-12T00:00:00")) == 1
    assert notify.notify_due(db, cfg, at("2026-11-12T01:00:00")) == 0
    lines = record.read_text().splitlines()
    assert lines[:2] == ["--app-name=syncagent", "syncagent: 1 reminder due"]
    assert "Follow-up: Priya Shah - No reply to 'Coffee chat?' sent Mon 2 Nov (1 of 3)" in lines


def test_email_notification_through_smtp(tmp_path):
    """With [notify] email = true the due reminders go out as one short mail through [smtp]."""
    import socket

    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.envelopes = []

        async def handle_DATA(self, server, session, envelope):
            self.envelopes.append(envelope)
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        cfg = _notify_config(tmp_path, email=True, port=port)
        db = open_db(cfg.database)
        add_contact(db, "Priya Shah", PRIYA)
        add_message(db, MON, "outgoing", PRIYA, "Coffee chat?")
        reminders.reconcile(db, cfg, MON_AT)  # the sync that saw the message
        from syncagent.notify import announce as notify

        assert notify.notify_due(db, cfg, at("2026-11-12T00:00:00")) == 1
    finally:
        controller.stop()
    assert len(inbox.envelopes) == 1
    assert inbox.envelopes[0].rcpt_tos == ["me@example.com"]
    body = inbox.envelopes[0].content.decode()
    assert "syncagent: 1 reminder due" in body and "Priya Shah" in body


def test_notifications_off_by_default(tmp_path):
    """With no [notify] keys nothing is sent and nothing is marked notified."""
    cfg = _notify_config(tmp_path)
    db = open_db(cfg.database)
    add_contact(db, "Priya Shah", PRIYA)
    add_message(db, MON, "outgoing", PRIYA, "Coffee chat?")
    reminders.reconcile(db, cfg, MON_AT)  # the sync that saw the message
    from syncagent.notify import announce as notify

    assert notify.notify_due(db, cfg, at("2026-11-12T00:00:00")) == 0
    assert db.execute("SELECT COUNT(*) FROM reminders WHERE notified_at IS NOT NULL").fetchone()[0] == 0


# --- stale reminders and bulk actions (a real mailbox's first hour) -------------------------------

FIRST_SYNC = at("2026-11-20T12:00:00")
OLD = [("Ann Old", "ann@example.org", "2025-03-02T14:00:00"), ("Bo Old", "bo@example.org", "2025-06-01T14:00:00"),
       ("Cy Old", "cy@example.org", "2026-09-01T14:00:00")]


@pytest.fixture
def first_hour(tmp_path, cfg, db, monkeypatch):
    """Three follow-ups owed for months (stale) and one fresh, reconciled by the first sync."""
    from syncagent import timeutil

    for name, address, when in OLD:
        add_contact(db, name, address)
        add_message(db, when, "outgoing", address, "Hello")
    add_contact(db, "Priya Shah", PRIYA)
    add_message(db, "2026-11-10T14:00:00", "outgoing", PRIYA, "Coffee chat?")
    monkeypatch.setattr(timeutil, "_clock", lambda: FIRST_SYNC)
    reminders.reconcile(db, cfg, FIRST_SYNC)
    path = tmp_path / "config.toml"
    path.write_text(f'timezone = "America/New_York"\n[database]\npath = "{cfg.database}"\n'
                    f'[digest]\noutput_dir = "{tmp_path / "digests"}"\n')
    return path


def test_stale_reminders_are_one_line_in_the_table(first_hour):
    """The table lists what is owed now and sums up the stale ones in one line; --stale lists only them."""
    table = invoke(first_hour).output
    assert "Priya Shah" in table and "Old" not in table
    assert "3 older obligations, overdue by more than 30 days: `syncagent reminders --stale`" in table.splitlines()
    stale = invoke(first_hour, "--stale").output
    assert stale.splitlines()[0] == "Overdue by more than 30 days (3)"
    assert all(name in stale for name, _, _ in OLD) and "Priya" not in stale


def test_json_lists_every_reminder_with_its_stale_flag(first_hour):
    """`--json` keeps stale reminders, each with "stale": true; `--json --stale` only them."""
    listed = json.loads(invoke(first_hour, "--json").output)
    assert sorted((r["contact_name"], r["stale"]) for r in listed) == [
        ("Ann Old", True), ("Bo Old", True), ("Cy Old", True), ("Priya Shah", False)]
    only = json.loads(invoke(first_hour, "--json", "--stale").output)
    assert sorted(r["contact_name"] for r in only) == ["Ann Old", "Bo Old", "Cy Old"]


def test_stale_after_days_is_configurable(first_hour):
    """[reminders] stale_after_days moves the line: at 1000 days nothing here is stale."""
    first_hour.write_text(first_hour.read_text() + "[reminders]\nstale_after_days = 1000\n")
    assert not any(r["stale"] for r in json.loads(invoke(first_hour, "--json").output))
    with pytest.raises(config_mod.ConfigError, match="stale_after_days"):
        config_mod.parse({"reminders": {"stale_after_days": 0}}, first_hour)


def test_notifications_skip_stale_reminders(tmp_path, cfg, db, monkeypatch, first_hour):
    """A first sync announces only the fresh reminder, never the months-old ones."""
    from syncagent.notify import announce

    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "notified.txt"
    (bindir / "notify-send").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{record}"\n')
    (bindir / "notify-send").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    noisy = config_mod.parse({"timezone": "America/New_York", "database": {"path": str(cfg.database)},
                              "notify": {"desktop": True}}, tmp_path / "config.toml")
    later = FIRST_SYNC + timedelta(days=2)  # Priya's follow-up is due on the 19th
    assert announce.notify_due(db, noisy, later) == 1
    assert "syncagent: 1 reminder due" in record.read_text() and "Old" not in record.read_text()


def test_digest_counts_stale_reminders(first_hour):
    """The digest lists the fresh reminder and counts the stale ones in one sentence."""
    from syncagent.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(first_hour), "digest"], catch_exceptions=False)
    markdown = Path(result.output.splitlines()[0]).read_text()
    assert "Also 3 older obligations, overdue by more than 30 days: syncagent reminders --stale" in markdown
    assert "Priya Shah" in markdown and "Ann Old" not in markdown


def test_bulk_actions_say_how_many_they_changed(first_hour, db):
    """Several ids, --stale, --kind and --before act at once and say how many rows changed."""
    status = lambda: dict(db.execute("SELECT contact_id, status FROM reminders").fetchall())  # noqa: E731
    result = invoke(first_hour, "dismiss", "--stale")
    assert (result.exit_code, result.output) == (0, "Dismissed 3 reminders.\n")
    assert status() == {1: "dismissed", 2: "dismissed", 3: "dismissed", 4: "open"}
    assert invoke(first_hour, "done", "--stale").output == "No open reminder matches; nothing changed.\n"
    result = invoke(first_hour, "snooze", "--kind", "follow_up", "--before", "2026-11-30", "--until", "2026-12-01")
    assert result.output == "Snoozed 1 reminder until Tue 1 Dec 2026 00:00 (America/New_York).\n"
    assert status()[4] == "snoozed"
    assert invoke(first_hour, "done", "4").output == "Marked reminder 4 done.\n"


def test_several_ids_at_once(first_hour, db):
    """`done ID ID...` marks every one in one go."""
    result = invoke(first_hour, "done", "1", "2", "3")
    assert (result.exit_code, result.output) == (0, "Marked 3 reminders done.\n")
    assert [r[0] for r in db.execute("SELECT status FROM reminders ORDER BY id")] == ["done", "done", "done", "open"]


def test_bulk_action_errors_are_one_sentence(first_hour, db, capsys):
    """An unknown id, or one already settled, is one sentence and exit 1, and changes nothing; no ids and no
    selector is a usage error (exit 2)."""
    from syncagent.cli import main

    def run(*args):
        with pytest.raises(SystemExit) as exc:
            main(["--config", str(first_hour), "reminders", *args])
        return exc.value.code, capsys.readouterr().err

    assert run("dismiss", "1", "99") == (
        1, "Error: There is no reminder with id 99; run `syncagent reminders` to see the ids.\n")
    assert run("dismiss", "98", "99")[1] == (
        "Error: There are no reminders with ids 98, 99; run `syncagent reminders` to see the ids.\n")
    assert db.execute("SELECT status FROM reminders WHERE id = 1").fetchone() == ("open",)
    invoke(first_hour, "done", "1")
    assert run("snooze", "1") == (
        1, "Error: Reminder 1 is already done, so nothing was changed; `syncagent reminders` lists the open ones.\n")
    code, err = run("done")
    assert code == 2 and "Give one or more reminder ids, or pick them with --kind, --stale or --before." in err
