"""The parser turns any header block into a normalized Message without raising."""

from datetime import datetime, timezone
from pathlib import Path

import pytest

from syncagent.parse.headers import parse_message

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
ARRIVAL = datetime(2026, 11, 20, 17, 0, tzinfo=timezone.utc)


def test_encoded_names_lowercase_addresses_and_utc_date():
    """RFC 2047 names are decoded, addresses lower-cased, Date converted to UTC."""
    m = parse_message(
        b"From: =?utf-8?q?Priya_Sh=C3=A4h?= <Priya@Example.COM>\r\n"
        b"To: me@x.com, \"Bob\" <BOB@y.org>\r\nBcc: hidden@z.com\r\n"
        b"Subject: =?iso-8859-1?q?Caf=E9?= chat\r\nDate: Mon, 2 Nov 2026 10:00:00 -0500\r\n"
        b"Message-ID: <abc@x>\r\n\r\nbody"
    )
    assert m.from_address == "priya@example.com" and m.from_name == "Priya Shäh"
    assert m.subject == "Café chat"
    assert m.date == "2026-11-02T15:00:00Z" and m.date_source == "header"
    assert [(a.role, a.address) for a in m.addresses] == [
        ("from", "priya@example.com"), ("to", "me@x.com"), ("to", "bob@y.org"), ("bcc", "hidden@z.com")]
    assert m.message_id == "abc@x"


def test_missing_date_uses_arrival_and_missing_id_is_stable():
    """Without Date the arrival time is used; without Message-ID the same headers give the same id."""
    raw = b"From: a@b.com\r\nSubject: hi\r\n\r\n"
    m1, m2 = parse_message(raw, arrived_at=ARRIVAL), parse_message(raw, arrived_at=ARRIVAL)
    assert m1.date == "2026-11-20T17:00:00Z" and m1.date_source == "arrival"
    assert m1.message_id == m2.message_id and m1.message_id.startswith("sha1-")


@pytest.mark.parametrize("date", [b"garbage", b"Mon, 99 Foo 2026 99:99:99 +9999", b"Fri, 31 Dec 9999 23:59:59 -1200"])
def test_unparsable_or_overflowing_dates_fall_back(date):
    """A Date that cannot be read (or overflows) falls back to the arrival time."""
    m = parse_message(b"From: a@b.com\r\nDate: " + date + b"\r\n\r\n", arrived_at=ARRIVAL)
    assert m.date == "2026-11-20T17:00:00Z"


def test_in_reply_to_takes_last_id_and_self_reference_is_dropped():
    """Junk In-Reply-To keeps its last <id>; a message never references itself."""
    m = parse_message(b"Message-ID: <me@x>\r\nIn-Reply-To: mumble <a@x> <b@x>\r\nReferences: <me@x> <a@x>\r\n\r\n")
    assert m.in_reply_to == "b@x" and m.references == ("a@x",)
    m = parse_message(b"Message-ID: <me@x>\r\nIn-Reply-To: <me@x>\r\n\r\n")
    assert m.in_reply_to is None


def test_eight_bit_and_unknown_charsets_become_readable():
    """Raw Latin-1 bytes and an unknown charset still give text, never an exception."""
    m = parse_message(b"Subject: =?x-made-up?q?caf=C3=A9?= \xe9t\xe9\r\nFrom: \xc9lodie <E@X.FR>\r\n\r\n")
    assert "café" in m.subject and "été" in m.subject
    assert m.from_address == "e@x.fr" and m.from_name == "Élodie"


@pytest.mark.parametrize("headers,reason", [
    (b"Auto-Submitted: auto-replied\r\n", "Auto-Submitted"),
    (b"X-Autoreply: yes\r\n", "X-Autoreply"),
    (b"Precedence: bulk\r\n", "Precedence"),
    (b"List-Id: <x.lists.example.org>\r\n", "List-Id"),
    (b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n", "delivery report"),
    (b"Subject: Automatic reply: Coffee?\r\n", "auto-reply subject"),
    (b"Subject: Abwesenheitsnotiz: Kaffee\r\n", "auto-reply subject"),
    (b"Subject: R\xc3\xa9ponse automatique : caf\xc3\xa9\r\n", "auto-reply subject"),
    (b"Subject: Fuera de la oficina\r\n", "auto-reply subject"),
    (b"Subject: Out of Office: back Monday\r\n", "auto-reply subject"),
])
def test_automatic_mail_is_flagged(headers, reason):
    """Auto-replies, bounces, bulk and list mail are automatic, in several languages."""
    m = parse_message(b"From: someone@example.com\r\n" + headers + b"\r\n")
    assert m.automatic and reason in m.automatic_reason


def test_bounce_sender_is_automatic():
    """Mail from MAILER-DAEMON or postmaster is a bounce."""
    assert parse_message(b"From: MAILER-DAEMON@mx.example.com\r\nSubject: hi\r\n\r\n").automatic


def test_a_human_reply_is_not_automatic():
    """An ordinary reply, even one quoting an auto-reply subject, is not automatic."""
    m = parse_message(b"From: p@x.com\r\nSubject: Re: Out of office tips\r\n\r\n")
    assert not m.automatic


def test_hostile_headers_are_bounded():
    """Ten thousand recipients, a 1 MB subject, NUL bytes: parsed, clipped, no exception."""
    to = b", ".join(b"r%d@x.com" % i for i in range(10_000))
    m = parse_message(b"To: " + to + b"\r\nSubject: " + b"A" * 1_000_000 + b"\x00\r\n\r\n")
    assert len([a for a in m.addresses if a.role == "to"]) == 10_000
    assert len(m.subject) <= 2000 and "\x00" not in m.subject


def test_every_corpus_message_parses():
    """Every single-message file of the public corpora parses without an exception."""
    if not CORPORA.exists():
        pytest.skip("../shared/corpora is not present")
    count = 0
    for path in CORPORA.rglob("*"):
        if path.is_file() and path.parent.name != "enron-mbox" and path.name not in ("README.md", "COPYING"):
            m = parse_message(path.read_bytes(), arrived_at=ARRIVAL)
            assert m.message_id and m.date
            count += 1
    assert count > 1000
