"""The ledger's database side: matching rules, derived tables, contact_summary, and real Enron mail."""

from __future__ import annotations

import mailbox
from datetime import datetime, timezone
from pathlib import Path

import pytest

from syncagent.model import Batch, Seen
from syncagent.parse.headers import parse_message
from syncagent.pipeline import ledger as ledger_store
from syncagent.store import db as store

ME = "me@example.com"
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"


@pytest.fixture
def db(tmp_path):
    """A fresh, migrated database with three contacts: Alice (two addresses), Bob, and Carol (no mail)."""
    db = store.open_db(tmp_path / "x.db")
    add_contact(db, 1, "Alice Archer", ["alice@corp.example", "alice.archer@home.example"], company="Corp", segment="alumni")
    add_contact(db, 2, "Bob Baker", ["bob@startup.example"], segment="recruiter")
    add_contact(db, 3, "Carol Chen", ["carol@quiet.example"])
    return db


def add_contact(db, cid: int, name: str, emails: list[str], company=None, segment=None) -> None:
    db.execute(
        "INSERT INTO contacts (id, name, company, segment, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        [cid, name, company, segment, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"],
    )
    for pos, address in enumerate(emails):
        db.execute("INSERT INTO contact_emails (address, contact_id, position) VALUES (?, ?, ?)", [address, cid, pos])


def raw(frm: str, to: str, subject: str, date: str | None, msgid: str, *, cc: str | None = None,
        bcc: str | None = None, extra: str = "") -> bytes:
    lines = [f"From: {frm}", f"To: {to}", f"Subject: {subject}", f"Message-ID: <{msgid}>"]
    if cc:
        lines.append(f"Cc: {cc}")
    if bcc:
        lines.append(f"Bcc: {bcc}")
    if date:
        lines.append(f"Date: {date}")
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode()


def save(db, data: bytes, folder: str = "INBOX", location: str | None = None, account: str = "main",
         arrived_at: datetime | None = None) -> None:
    msg = parse_message(data, arrived_at=arrived_at or datetime(2026, 11, 30, tzinfo=timezone.utc))
    seen = Seen(folder=folder, location=location or msg.message_id)
    store.save_batch(db, account, [ME, "me@alias.example"], Batch(items=[(msg, seen)], folder=folder))


def ledger_row(db, cid: int) -> dict:
    cur = db.execute("SELECT * FROM contact_ledger WHERE contact_id = ?", [cid])
    return dict(zip([d[0] for d in cur.description], cur.fetchone()))


def replies(db, cid: int) -> list[tuple]:
    return db.execute(
        "SELECT asked_at, replied_at, response_seconds, response_hours FROM replies WHERE contact_id = ? "
        "ORDER BY replied_at", [cid]
    ).fetchall()


def test_out_of_office_before_the_real_reply(db):
    """An out-of-office auto-reply is ignored; the response time runs to the real reply."""
    save(db, raw(ME, "alice@corp.example", "Coffee?", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me"), "Sent")
    save(db, raw("alice@corp.example", ME, "Automatic reply: Coffee?", "Mon, 02 Nov 2026 09:00:05 +0000",
                 "ooo@corp", extra="Auto-Submitted: auto-replied"))
    save(db, raw("alice@corp.example", ME, "Re: Coffee?", "Tue, 03 Nov 2026 10:30:00 +0100", "re@corp"))
    ledger_store.recompute(db, NOW)
    row = ledger_row(db, 1)
    assert row["state"] == "REPLIED"
    assert row["messages_received"] == 1
    assert replies(db, 1) == [("2026-11-02T09:00:00Z", "2026-11-03T09:30:00Z", 88200, 24.5)]
    assert row["first_response_hours"] == 24.5 and row["median_response_hours"] == 24.5
    assert row["first_reply_at"] == "2026-11-03T09:30:00Z"


def test_bounce_is_not_a_reply(db):
    """A delivery failure for the ask is automatic: the contact stays ASKED with one unanswered message."""
    save(db, raw(ME, "bob@startup.example", "Hello", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me"), "Sent")
    save(db, raw("MAILER-DAEMON@mx.startup.example", ME, "Undelivered Mail Returned to Sender",
                 "Mon, 02 Nov 2026 09:01:00 +0000", "bounce@mx",
                 extra='Content-Type: multipart/report; report-type=delivery-status; boundary="b"'))
    ledger_store.recompute(db, NOW)
    assert db.execute("SELECT automatic FROM messages WHERE message_id = 'bounce@mx'").fetchone() == (1,)
    row = ledger_row(db, 2)
    assert (row["state"], row["unanswered"], row["replied"], row["messages_received"]) == ("ASKED", 1, 0, 0)


def test_reply_from_second_address_in_a_new_thread(db):
    """A reply from the contact's other address, in a fresh thread with a new subject, is their reply."""
    save(db, raw(ME, "Alice <Alice@Corp.Example>", "Intro", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me"), "Sent")
    save(db, raw("alice.archer@home.example", ME, "Different topic", "Mon, 02 Nov 2026 11:00:00 +0000", "new@home"))
    ledger_store.recompute(db, NOW)
    assert ledger_row(db, 1)["state"] == "REPLIED"
    assert replies(db, 1) == [("2026-11-02T09:00:00Z", "2026-11-02T11:00:00Z", 7200, 2.0)]


def test_reply_without_date_uses_arrival_time(db):
    """A reply missing its Date header is timed at its arrival."""
    save(db, raw(ME, "bob@startup.example", "Hi", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me"), "Sent")
    save(db, raw("bob@startup.example", ME, "Re: Hi", None, "nodate@startup"),
         arrived_at=datetime(2026, 11, 4, 9, 0, 30, tzinfo=timezone.utc))
    ledger_store.recompute(db, NOW)
    assert replies(db, 2) == [("2026-11-02T09:00:00Z", "2026-11-04T09:00:30Z", 172830, 48.01)]


def test_own_copy_in_two_folders_counts_once(db):
    """The Sent copy and the copy in INBOX (cc to self) are one message, one outgoing count."""
    data = raw(ME, "bob@startup.example", "Hi", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me", cc=ME)
    save(db, data, "Sent", "1")
    save(db, data, "INBOX", "7")
    ledger_store.recompute(db, NOW)
    row = ledger_row(db, 2)
    assert (row["messages_sent"], row["unanswered"]) == (1, 1)
    assert db.execute("SELECT COUNT(*) FROM contact_messages WHERE contact_id = 2").fetchone() == (1,)


def test_same_message_in_two_accounts_counts_once(db):
    """One Message-ID held by two accounts is one event per contact, represented by the lower row id."""
    data = raw(ME, "bob@startup.example", "Hi", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me")
    save(db, data, "Sent", account="main")
    save(db, data, "Sent", account="backup")
    events = ledger_store.contact_events(db, NOW)[2]
    low = db.execute("SELECT MIN(id) FROM messages").fetchone()[0]
    assert [(e.kind, e.ref) for e in events] == [("out", f"message:{low}")]


def test_outreach_with_contact_only_in_bcc(db):
    """A contact only in Bcc of our own message has been asked."""
    save(db, raw(ME, "someone@else.example", "Intro", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me",
                 bcc="bob@startup.example"), "Sent")
    ledger_store.recompute(db, NOW)
    row = ledger_row(db, 2)
    assert (row["state"], row["messages_sent"], row["first_outreach_at"]) == ("ASKED", 1, "2026-11-02T09:00:00Z")


def test_cc_on_a_third_persons_intro_is_nothing(db):
    """Bob Cc'd on Dave's intro mail to me is neither a reply from Bob nor our outreach to him."""
    save(db, raw(ME, "bob@startup.example", "Hi", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me"), "Sent")
    save(db, raw("dave@friend.example", ME, "Intro: you, meet Alice", "Tue, 03 Nov 2026 09:00:00 +0000",
                 "intro@friend", cc="bob@startup.example, alice@corp.example"))
    ledger_store.recompute(db, NOW)
    assert ledger_row(db, 2)["state"] == "ASKED"
    alice = ledger_row(db, 1)
    assert (alice["state"], alice["messages_sent"], alice["messages_received"]) == (None, 0, 0)
    assert db.execute("SELECT COUNT(*) FROM contact_messages WHERE contact_id = 1").fetchone() == (0,)


def test_gone_messages_still_count_and_now_is_respected(db):
    """A message deleted from the server is still history; mail dated after --now is not."""
    save(db, raw(ME, "bob@startup.example", "Hi", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me"), "Sent", "1")
    save(db, raw("bob@startup.example", ME, "Re: Hi", "Mon, 09 Nov 2026 09:00:00 +0000", "re@startup"), "INBOX", "2")
    store.save_batch(db, "main", [ME], Batch(folder="Sent", gone=["1"]))
    assert db.execute("SELECT gone FROM messages WHERE message_id = 'ask@me'").fetchone() == (1,)
    ledger_store.recompute(db, NOW)
    assert ledger_row(db, 2)["state"] == "REPLIED"
    ledger_store.recompute(db, datetime(2026, 11, 5, tzinfo=timezone.utc))
    assert (ledger_row(db, 2)["state"], ledger_row(db, 2)["computed_at"]) == ("ASKED", "2026-11-05T00:00:00Z")


def test_meetings_count_when_confirmed_and_ended(db):
    """A confirmed meeting with the contact moves them to MET at its end; a cancelled one never counts."""
    save(db, raw(ME, "alice@corp.example", "Coffee?", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me"), "Sent")
    db.execute("INSERT INTO meetings (id, uid, status, start_at, end_at) VALUES "
               "(1, 'u1', 'confirmed', '2026-11-10T15:00:00Z', '2026-11-10T16:00:00Z'), "
               "(2, 'u2', 'cancelled', '2026-11-12T15:00:00Z', '2026-11-12T16:00:00Z')")
    db.execute("INSERT INTO meeting_contacts (meeting, contact_id) VALUES (1, 1), (2, 2)")
    events = ledger_store.contact_events(db)
    assert [(e.kind, e.ref) for e in events[1]][1:] == [("meeting", "meeting:1")]
    assert events[2] == [] and events[3] == []
    led = ledger_store.recompute(db, datetime(2026, 11, 10, 15, 30, tzinfo=timezone.utc))[1]
    assert led.state == "ASKED"  # still in the meeting
    led = ledger_store.recompute(db, NOW)[1]
    assert (led.state, led.owed_since.ref) == ("MET", "meeting:1")
    row = ledger_row(db, 1)
    assert (row["state"], row["last_interaction_at"], row["replied"]) == ("MET", "2026-11-10T16:00:00Z", 0)


def test_recompute_is_idempotent(db):
    """Recomputing twice at the same instant leaves identical tables."""
    save(db, raw(ME, "alice@corp.example", "Coffee?", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me"), "Sent")
    save(db, raw("alice@corp.example", ME, "Re: Coffee?", "Mon, 02 Nov 2026 10:00:00 +0000", "re@corp"))

    def dump():
        return [db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("contact_ledger", "replies", "contact_messages")]

    ledger_store.recompute(db, NOW)
    first = dump()
    ledger_store.recompute(db, NOW)
    assert dump() == first
    assert len(first[2]) == 2
    ledger_store.recompute(db, datetime(2026, 12, 2, tzinfo=timezone.utc))
    assert db.execute("SELECT DISTINCT computed_at FROM contact_ledger").fetchall() == [("2026-12-02T00:00:00Z",)]
    assert dump()[1:] == first[1:]


def test_contact_summary_rows(db):
    """contact_summary has exactly the contract's columns and a row per contact, zeros for no mail."""
    save(db, raw(ME, "alice@corp.example", "Coffee?", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me"), "Sent")
    save(db, raw(ME, "alice@corp.example", "Coffee? (bump)", "Mon, 09 Nov 2026 09:00:00 +0000", "bump@me"), "Sent")
    save(db, raw("alice@corp.example", ME, "Re: Coffee?", "Tue, 10 Nov 2026 09:00:00 +0000", "re@corp"))
    save(db, raw(ME, "bob@startup.example", "Hi", "Mon, 02 Nov 2026 09:00:00 +0000", "hi@me"), "Sent")
    ledger_store.recompute(db, NOW)
    cur = db.execute("SELECT * FROM contact_summary ORDER BY contact_id")
    assert [d[0] for d in cur.description] == [
        "contact_id", "name", "company", "segment", "first_outreach_at", "first_reply_at",
        "first_response_hours", "median_response_hours", "replied", "messages_sent",
        "messages_received", "last_interaction_at", "state", "reached", "responsiveness",
    ]
    assert cur.fetchall() == [
        (1, "Alice Archer", "Corp", "alumni", "2026-11-02T09:00:00Z", "2026-11-10T09:00:00Z",
         192.0, 192.0, 1, 2, 1, "2026-11-10T09:00:00Z", "REPLIED", 1, None),
        (2, "Bob Baker", None, "recruiter", "2026-11-02T09:00:00Z", None, None, None, 0, 1, 0,
         "2026-11-02T09:00:00Z", "ASKED", 1, None),
        (3, "Carol Chen", None, None, None, None, None, None, 0, 0, 0, None, None, 0, None),
    ]
    # Before any recompute (a contact added since): still a row, with zeros.
    add_contact(db, 4, "Dan New", ["dan@new.example"])
    assert db.execute("SELECT reached, replied, messages_sent, messages_received, state FROM contact_summary "
                      "WHERE contact_id = 4").fetchone() == (0, 0, 0, 0, None)


def test_hand_edited_contact_address_still_matches(db):
    """A contact address stored with capitals and spaces (edited by hand) still matches normalized mail."""
    db.execute("UPDATE contact_emails SET address = ' Bob@Startup.Example' WHERE contact_id = 2")
    save(db, raw(ME, "bob@startup.example", "Hi", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me"), "Sent")
    assert [e.kind for e in ledger_store.contact_events(db, NOW)[2]] == ["out"]


ENRON = CORPORA / "enron-mbox"


@pytest.mark.skipif(not (ENRON / "enron.allen-p.sent").exists(), reason="corpus ../shared/corpora/enron-mbox absent")
def test_enron_allen_ledger(tmp_path):
    """Ledger facts on Phillip Allen's real mail of 12-14 Dec 2000, checked by reading the messages.

    How they were verified: the mbox files `enron.allen-p.sent` and `enron.allen-p.notes_inbox`
    were read message by message (Date, From, To, Cc, body). On 12 Dec 12:03Z Phillip wrote
    Christi Nicolay "Talking points about California Gas market"; she answered at 12:41Z.
    On 13 Dec 15:04Z he sent two charts to a list (Christi, pkaufma@ = Paul Kaufman,
    Rebecca Cantrell, Stephanie Miller, ...). Rebecca asked about the charts at 16:01Z ("Re:")
    and at 16:22Z forwarded "Final Filed Version -- SDG&E Comments" to a list that includes
    Stephanie. Paul's "Re:" about the charts is dated 13:40Z, before the mail it quotes (the
    corpus' clocks disagree; the ledger follows Date headers), and Phillip answered him on
    14 Dec 10:11Z "Yes you can use this chart. Does it make sense?". Stephanie wrote at 13:26Z
    to Jeff Dasovich with Phillip and pkaufma@ in Cc.
    The corpus gives every folder's copy its own Message-ID, so Phillip's own copies in
    notes_inbox (he mailed himself at pallen@enron.com) are skipped: a real mailbox would
    dedupe them by Message-ID.
    """
    db = store.open_db(tmp_path / "enron.db")
    own = ["phillip.allen@enron.com", "pallen@enron.com"]
    for name in ("sent", "notes_inbox"):
        items = []
        for i, m in enumerate(mailbox.mbox(str(ENRON / f"enron.allen-p.{name}"))):
            msg = parse_message(bytes(m))
            if name == "notes_inbox" and msg.from_address in own:
                continue
            items.append((msg, Seen(folder=name, location=str(i))))
        store.save_batch(db, "allen", own, Batch(items=items, folder=name))
    add_contact(db, 1, "Christi Nicolay", ["christi.nicolay@enron.com"])
    add_contact(db, 2, "Rebecca Cantrell", ["rebecca.cantrell@enron.com"])
    add_contact(db, 3, "Paul Kaufman", ["paul.kaufman@enron.com", "pkaufma@enron.com"])
    add_contact(db, 4, "Stephanie Miller", ["stephanie.miller@enron.com"])
    result = ledger_store.recompute(db, datetime(2000, 12, 31, tzinfo=timezone.utc))

    christi, rebecca, paul, stephanie = (result[i] for i in (1, 2, 3, 4))
    # Christi: asked, replied in 38 minutes, then got the charts (a thank-you-ish send): ACKED.
    # Her Cc on Stephanie's mail is not a message from her.
    assert [(r.seconds, r.asked_at.isoformat()) for r in christi.replies] == [(2280, "2000-12-12T12:03:00+00:00")]
    assert (christi.state, christi.messages_sent, christi.messages_received) == ("ACKED", 2, 1)
    # Rebecca: one ask, a reply after 57 minutes, then an FYI: still REPLIED, owed from the first reply.
    assert [r.seconds for r in rebecca.replies] == [3420]
    assert (rebecca.state, rebecca.messages_sent, rebecca.messages_received) == ("REPLIED", 1, 2)
    assert rebecca.owed_since.subject == "Re:" and rebecca.owed_since.at.isoformat() == "2000-12-13T16:01:00+00:00"
    # Paul: reached through his second address; his mail came first (INBOUND), so no reply is timed;
    # the 14 Dec answer is a new ask. Stephanie's Cc to pkaufma@ is not from him.
    assert (paul.state, paul.unanswered, paul.replies) == ("ASKED", 1, ())
    assert (paul.messages_sent, paul.messages_received) == (2, 1)
    assert paul.first_outreach_at.isoformat() == "2000-12-13T15:04:00+00:00"
    # Stephanie: her own mail (Phillip in Cc) counts; Rebecca's FYI addressed to her does not.
    assert (stephanie.state, stephanie.messages_sent, stephanie.messages_received) == ("ACKED", 1, 1)
    row = db.execute("SELECT replied, first_response_hours, state FROM contact_summary WHERE contact_id = 2").fetchone()
    assert row == (1, 0.95, "REPLIED")


def test_failed_recompute_leaves_the_previous_tables(db):
    """A write failing half-way through a rebuild rolls it all back: readers keep the last good ledger."""
    save(db, raw(ME, "bob@startup.example", "Hi", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me"), "Sent")
    ledger_store.recompute(db, datetime(2026, 11, 3, tzinfo=timezone.utc))
    save(db, raw("bob@startup.example", ME, "Re: Hi", "Tue, 03 Nov 2026 09:00:00 +0000", "re@startup"))
    # Fails after contact_ledger and replies were already rewritten inside the transaction.
    db.execute("CREATE TEMP TRIGGER fail BEFORE INSERT ON contact_messages BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(Exception, match="disk full"):
        ledger_store.recompute(db, NOW)
    assert not db.conn.in_transaction
    assert (ledger_row(db, 2)["state"], replies(db, 2)) == ("ASKED", [])
    assert db.execute("SELECT COUNT(*) FROM contact_messages").fetchone() == (1,)


def test_recompute_inside_a_callers_transaction(db):
    """Called within an open transaction, recompute uses a savepoint and the caller decides to commit."""
    save(db, raw(ME, "bob@startup.example", "Hi", "Mon, 02 Nov 2026 09:00:00 +0000", "ask@me"), "Sent")
    db.conn.execute("BEGIN")
    ledger_store.recompute(db, NOW)
    assert db.conn.in_transaction
    db.conn.execute("ROLLBACK")
    assert db.execute("SELECT COUNT(*) FROM contact_ledger").fetchone() == (0,)
