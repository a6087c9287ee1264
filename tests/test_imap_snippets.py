"""Opt-in snippets: the first KB of the text part only, decoded, flags untouched; off by default."""

from __future__ import annotations

import base64
import quopri

import pytest
from dovecot import FORBIDDEN, make_message
from test_imap_sync import count, make_config, sync

from syncagent.sources.imap import connect as imap_connect
from syncagent.sources.imap import parts as imap_parts
from syncagent.store.db import open_db

ME = "me@example.test"


@pytest.fixture(autouse=True)
def _no_retry(monkeypatch):
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)


def mime(n: int, body_parts: str, ctype: str = "multipart/alternative") -> bytes:
    return (
        f"From: Bob <bob@example.org>\r\nTo: {ME}\r\nSubject: Part {n}\r\n"
        f"Date: Mon, 16 Nov 2026 10:00:00 +0000\r\nMessage-ID: <part{n}@example.org>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: {ctype}; boundary="b"\r\n\r\n{body_parts}'
    ).encode()


LONG = ("Thanks for taking the time to talk last week. " * 60).strip()
ALT_QP = mime(1, (
    "--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    + quopri.encodestring(("Caf\u00e9 on Friday?\r\n\r\nOn Monday, Ann wrote:\r\n> old text\r\n-- \r\nBob\r\n")
                          .encode("latin-1")).decode()
    + "\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>not this</p>\r\n--b--\r\n"))
HTML_ONLY = mime(2, (
    "--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(("<html><head><style>p {color: red}</style></head><body><p>Hello &amp; welcome"
                          "</p><blockquote>quoted</blockquote><p>" + LONG + "</p></body></html>").encode())
    .decode().replace("\n", "\r\n") + "--b--\r\n"))


def test_snippets_are_stored_without_changing_flags(mailbox, tmp_path, monkeypatch):
    """With fetch_snippets the snippet is stored from a partial BODY.PEEK of the text part, and \\Seen stays unset."""
    mailbox.append("INBOX", make_message(0))
    mailbox.append("INBOX", ALT_QP)
    mailbox.append("INBOX", HTML_ONLY)
    before = mailbox.flags("INBOX")
    cfg = make_config(mailbox, tmp_path, monkeypatch, fetch_snippets=True)
    db = open_db(cfg.database)
    assert sync(db, cfg).new_messages == 3
    snippets = dict(db.execute("SELECT message_id, snippet FROM messages").fetchall())
    assert snippets["msg0@example.org"] == "Body 0"
    assert snippets["part1@example.org"] == "Café on Friday?"  # quote, attribution and signature dropped
    html = snippets["part2@example.org"]
    assert html.startswith("Hello & welcome Thanks for taking the time")
    assert "quoted" not in html and "color" not in html
    assert len(html) <= imap_parts.SNIPPET_CHARS + 1 and html.endswith("…")
    assert mailbox.flags("INBOX") == before
    assert all(rb"\Seen" not in flags for flags in mailbox.flags("INBOX").values())
    assert not FORBIDDEN & set(mailbox.server.commands)
    body_fetches = [line for line in mailbox.server.command_lines if "BODY.PEEK[" in line and "HEADER" not in line]
    # The text part is part 1 of all three: one FETCH for the chunk, never one per message.
    assert body_fetches == ["UID FETCH 1,2,3 (BODY.PEEK[1]<0.1024>)"]
    assert not any("BODY[" in line or "RFC822 " in line or "RFC822.TEXT" in line
                   for line in mailbox.server.command_lines)


def test_no_snippet_fetch_by_default(mailbox, tmp_path, monkeypatch):
    """Without fetch_snippets no body part is fetched at all: only the header fields and the structure."""
    mailbox.append_many("INBOX", [make_message(0), ALT_QP, HTML_ONLY])
    cfg = make_config(mailbox, tmp_path, monkeypatch)
    assert cfg.accounts[0].fetch_snippets is False
    db = open_db(cfg.database)
    assert sync(db, cfg).new_messages == 3
    assert count(db, "SELECT COUNT(*) FROM messages WHERE snippet IS NOT NULL") == 0
    fetches = [line for line in mailbox.server.command_lines if line.startswith("UID FETCH")]
    assert len(fetches) == 1
    assert "BODY.PEEK[HEADER.FIELDS" in fetches[0] and "BODYSTRUCTURE" in fetches[0]
    assert "BODY.PEEK[1" not in fetches[0] and "<0." not in fetches[0]


def test_one_body_fetch_per_chunk(mailbox, tmp_path, monkeypatch):
    """Messages sharing a structure get their snippets from one extra FETCH per chunk of UIDs."""
    mailbox.append_many("INBOX", [make_message(i) for i in range(7)])
    cfg = make_config(mailbox, tmp_path, monkeypatch, fetch_snippets=True, batch_size=3)
    db = open_db(cfg.database)
    assert sync(db, cfg).new_messages == 7
    body_fetches = [line for line in mailbox.server.command_lines if "<0.1024>" in line]
    assert body_fetches == ["UID FETCH 1,2,3 (BODY.PEEK[1]<0.1024>)", "UID FETCH 4,5,6 (BODY.PEEK[1]<0.1024>)",
                            "UID FETCH 7 (BODY.PEEK[1]<0.1024>)"]
    assert count(db, "SELECT COUNT(*) FROM messages WHERE snippet LIKE 'Body %'") == 7


def test_partial_decoding_tolerates_cuts():
    """A base64 quantum, a quoted-printable escape or a UTF-8 character cut at 1024 bytes decodes cleanly."""
    text = "Grüße aus Köln, " * 100
    b64 = base64.encodebytes(text.encode())[:1023]
    assert imap_parts.decode_part(b64, "base64", "utf-8", partial=True).startswith("Grüße aus Köln")
    qp = quopri.encodestring(text.encode())
    cut = qp[: qp.index(b"=C3") + 2]  # "=C" cut from "=C3"
    decoded = imap_parts.decode_part(cut, "quoted-printable", "utf-8", partial=True)
    assert "=" not in decoded and "\ufffd" not in decoded
    raw = text.encode()[:3]  # "Gr" and half of "ü"
    assert imap_parts.decode_part(raw, "8bit", "utf-8", partial=True) == "Gr"
    assert imap_parts.decode_part(b"caf\xe9!", "8bit", "x-no-such-charset", partial=True) == "caf\ufffd!"
    assert imap_parts.decode_part(b"caf\xe9", "8bit", "windows-1252", partial=True) == "café"


def test_snippet_text_rules():
    """Whitespace collapses, quoted lines and their attribution and the signature go, long text is cut at a word."""
    body = "Hi Ann,\n\n  thanks   for\tthe intro.\n\nOn Tue, Bob <b@x.org> wrote:\n> earlier\n>> older\nBest\n-- \nBob\n555"
    assert imap_parts.make_snippet(body) == "Hi Ann, thanks for the intro. Best"
    assert imap_parts.make_snippet("> only a quote\n") is None
    assert imap_parts.make_snippet("Sounds good.\nOn Tue, 3 Nov 2026, Bob Example <bob@example.org>\nwrote:\n> x") == \
        "Sounds good."  # an attribution wrapped by the mailer goes too
    assert imap_parts.make_snippet("Thanks!\n________________________________\nFrom: Bob\nSent: Monday") == "Thanks!"
    html = imap_parts.html_to_text("<div>Great, thanks</div><div>On Mon, Bob wrote:</div><blockquote>old</blockquote>")
    assert imap_parts.make_snippet(html) == "Great, thanks"
    long = imap_parts.make_snippet("word " * 100)
    assert long.endswith("word…") and len(long) <= 201
    assert imap_parts.html_to_text("<p>a<script>x()</script></p><div>b</div><p>c <b") .split() == ["a", "b", "c"]


def test_text_part_choice():
    """The first inline text/plain wins over HTML and attachments; HTML is the fallback; odd structures give none."""
    from imapclient.response_types import BodyData

    plain = (b"text", b"plain", (b"charset", b"iso-8859-1"), None, None, b"quoted-printable", 13, 0, None, None, None)
    html = (b"text", b"html", (b"charset", b"us-ascii"), None, None, b"7bit", 9, 0, None, None, None)
    attached = (b"text", b"plain", (b"name", b"x.txt"), None, None, b"7bit", 8, 0, None,
                (b"attachment", (b"filename", b"x.txt")), None)
    alt = BodyData.create(([BodyData.create(html), BodyData.create(plain)], b"alternative", (), None, None, None))
    mixed = BodyData.create(([BodyData.create(attached), alt], b"mixed", (), None, None, None))
    assert imap_parts.find_text(mixed) == ("2.2", "plain", "quoted-printable", "iso-8859-1")
    html_only = BodyData.create(([BodyData.create(attached), BodyData.create(html)], b"mixed", (), None, None, None))
    assert imap_parts.find_text(html_only) == ("2", "html", "7bit", "us-ascii")
    assert imap_parts.find_text(BodyData.create(plain)) == ("1", "plain", "quoted-printable", "iso-8859-1")
    assert imap_parts.find_text(BodyData.create(attached)) is None
    assert imap_parts.find_text((b"oops",)) is None


def test_turning_snippets_on_later_fills_old_messages_with_full(mailbox, tmp_path, monkeypatch):
    """Messages synced before fetch_snippets was set get their snippet from the next `sync --full`."""
    mailbox.append_many("INBOX", [make_message(i) for i in range(2)])
    cfg = make_config(mailbox, tmp_path, monkeypatch)
    db = open_db(cfg.database)
    assert sync(db, cfg).new_messages == 2
    on = make_config(mailbox, tmp_path, monkeypatch, fetch_snippets=True)
    assert sync(db, on).new_messages == 0
    assert count(db, "SELECT COUNT(*) FROM messages WHERE snippet IS NOT NULL") == 0
    assert sync(db, on, full=True).ok
    assert sorted(r[0] for r in db.execute("SELECT snippet FROM messages")) == ["Body 0", "Body 1"]


@pytest.mark.slow
def test_corpora_snippets(mailbox, tmp_path, monkeypatch):
    """Every corpus message syncs with fetch_snippets: short one-line snippets, few body FETCHes, no flag changed."""
    from test_imap_sync import _corpus_files

    files = _corpus_files()
    if not files:
        pytest.skip("no corpora at ../shared/corpora")
    mailbox.append_many("INBOX", [p.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for p in files])
    before = mailbox.flags("INBOX")
    cfg = make_config(mailbox, tmp_path, monkeypatch, fetch_snippets=True)
    db = open_db(cfg.database)
    result = sync(db, cfg)
    assert result.ok, result.error
    snippets = [r[0] for r in db.execute("SELECT snippet FROM messages")]
    filled = [s for s in snippets if s]
    assert len(filled) > 0.8 * len(snippets)
    assert all(len(s) <= imap_parts.SNIPPET_CHARS + 1 and "\n" not in s and "  " not in s for s in filled)
    partial = [line for line in mailbox.server.command_lines if "<0.1024>" in line]
    assert 0 < len(partial) < len(snippets) / 10  # grouped by part number, not one per message
    assert mailbox.flags("INBOX") == before


SENT = (
    f"From: Me <{ME}>\r\nTo: Priya Shah <priya@acme.example>\r\nSubject: Your routing work at Acme\r\n"
    "Date: Mon, 16 Nov 2026 10:00:00 +0000\r\nMessage-ID: <sent1@example.test>\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
    "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    "Hi Priya, how did you move into routing? Which skills mattered most?\r\n\r\n"
    "On Sun, Nov 15, 2026 Priya wrote:\r\n> Why? Who? What?\r\n"
    "--b\r\nContent-Type: text/html\r\n\r\n<p>Hi Priya</p>\r\n--b--\r\n"
).encode()


@pytest.mark.parametrize("analyze", [True, False])
def test_own_sent_mail_is_measured_with_body_peek_only(mailbox, tmp_path, monkeypatch, analyze):
    """The user's sent message is measured from a partial BODY.PEEK of its text part (numbers only, \\Seen unset);
    with [privacy] analyze_outreach = false no body part is fetched at all."""
    from syncagent import config as config_mod

    mailbox.append("Sent", SENT)
    mailbox.append("INBOX", make_message(0))
    before = mailbox.flags("Sent")
    base = make_config(mailbox, tmp_path, monkeypatch)
    account = {"name": "test", "kind": "imap", "host": "127.0.0.1", "port": mailbox.server.port,
               "security": "none", "username": mailbox.user, "password_env": "SYNCAGENT_TEST_IMAP_PW",
               "addresses": [ME], "timeout": 10}
    cfg = config_mod.parse({"database": {"path": str(base.database)}, "accounts": [account],
                            "privacy": {"analyze_outreach": analyze}}, tmp_path / "config.toml")
    db = open_db(cfg.database)
    assert sync(db, cfg).new_messages == 2
    rows = db.execute("SELECT o.words, o.questions, o.personalized, m.snippet FROM outreach o "
                      "JOIN messages m ON m.id = o.message").fetchall()
    body_fetches = [line for line in mailbox.server.command_lines if "BODY.PEEK[" in line and "HEADER" not in line]
    if analyze:
        assert rows == [(12, 2, 1, None)]  # the quoted questions are not the user's; no snippet is kept
        assert body_fetches == ["UID FETCH 1 (BODY.PEEK[1]<0.4096>)"]
    else:
        assert rows == [] and body_fetches == []
    assert mailbox.flags("Sent") == before
    assert all(rb"\Seen" not in flags for flags in mailbox.flags("Sent").values())
    assert not FORBIDDEN & set(mailbox.server.commands)
