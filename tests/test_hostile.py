"""Promise 4 with hostile and real-world mail: every message through a real sync, no exception,
nothing lost, bounded time per message (local Maildir for the bulk, Dovecot IMAP for the hostile set)."""

from __future__ import annotations

import mailbox
import os
import time
from pathlib import Path

import pytest
from faults_helpers import ME, PW_ENV, imap_config, maildir_config

from syncagent import config as config_mod
from syncagent.parse.headers import MAX_ADDRESSES, parse_message
from syncagent.pipeline.sync import sync_all
from syncagent.store.db import open_db

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
BAD_BYTES = b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc"  # invalid UTF-8 sequences


def _msg(mid: str, *, extra: bytes = b"", subject: bytes = b"Hostile", date: bytes = b"Mon, 16 Nov 2026 10:00:00 +0000",
         frm: bytes = b"Mallory <mallory@evil.example>", to: bytes = ME.encode()) -> bytes:
    return (b"From: " + frm + b"\r\nTo: " + to + b"\r\nSubject: " + subject + b"\r\nDate: " + date +
            b"\r\nMessage-ID: <" + mid.encode() + b">\r\n" + extra + b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n")


def hostile() -> dict[str, bytes]:
    """Named hostile messages; each must be stored (as best it can be) without an exception."""
    refs = b" ".join(b"<r%d@chain.example>" % i for i in range(10_000))
    many = b", ".join(b"Person %d <p%d@many.example>" % (i, i) for i in range(10_000))
    junk_words = b"=?x-unknown-charset?q?caf=E9?= =?utf-8?b?!!notbase64?= =?iso-8859-1?q?=FF=FE?= " + BAD_BYTES
    every_header = b"".join(h + b": " + junk_words + b"\r\n" for h in (
        b"Reply-To", b"Sender", b"List-Id", b"In-Reply-To", b"References", b"Auto-Submitted", b"Precedence",
        b"X-Autoreply", b"List-Unsubscribe", b"Return-Path"))
    return {
        "10k-recipients": _msg("many@h", to=many),
        "1mb-subject": _msg("big@h", subject=b"S" * 1_000_000),
        "nul-bytes": _msg("nul@h", subject=b"a\x00b\x00c", frm=b"Nul\x00 Name <nul\x00@evil.example>",
                          extra=b"Cc: x\x00y@evil.example\r\n"),
        "bad-utf8-unknown-charsets": _msg("enc@h", subject=junk_words, frm=b"=?x-made-up?q?M=E9?= " + BAD_BYTES +
                                          b" <m@evil.example>", to=junk_words + b" <me@example.test>",
                                          extra=every_header + b"Cc: " + junk_words + b"\r\n"),
        "year-9999": _msg("y9999@h", date=b"Fri, 31 Dec 9999 23:59:59 -1200"),
        "year-1900": _msg("y1900@h", date=b"Mon, 1 Jan 1900 00:00:00 +1400"),
        "refs-10k": _msg("chain@h", extra=b"In-Reply-To: <r9999@chain.example>\r\nReferences: " + refs + b"\r\n"),
        "self-thread": _msg("self@h", extra=b"In-Reply-To: <self@h>\r\nReferences: <self@h> <self@h>\r\n"),
        "loop-a": _msg("loop-a@h", extra=b"In-Reply-To: <loop-b@h>\r\nReferences: <loop-b@h>\r\n"),
        "loop-b": _msg("loop-b@h", extra=b"In-Reply-To: <loop-a@h>\r\nReferences: <loop-a@h>\r\n"),
        "shared-id-1": _msg("shared@h", subject=b"First of two", frm=b"a@one.example"),
        "shared-id-2": _msg("shared@h", subject=b"Second of two", frm=b"b@two.example", date=b"Tue, 2 Jan 2024 1:00 +0000"),
        "no-headers": b"\r\n\r\njust a body\r\n",
        "no-colon-lines": b"this is not a header\r\nFrom: a@b.example\r\n\r\nx\r\n",
        "folded-forever": b"Subject: a\r\n" + b" b\r\n" * 20_000 + b"From: f@x.example\r\n\r\n",
        "long-message-id": _msg("x" * 5000 + "@h"),
    }


def _write_maildir(root: Path, raws: list[bytes]) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, raw in enumerate(raws):
        (root / "cur" / f"{1700000000 + i}.M{i}P1.host:2,S").write_bytes(raw)
    return root


def _sync(cfg):
    db = open_db(cfg.database)
    started = time.perf_counter()
    results = sync_all(db, cfg)
    return db, results, time.perf_counter() - started


def test_each_hostile_message_parses_quickly():
    """Every hostile header block parses without raising in well under a second."""
    for name, raw in hostile().items():
        started = time.perf_counter()
        m = parse_message(raw)
        assert time.perf_counter() - started < 1.0, name
        assert m.message_id and m.date
        assert len(m.subject or "") <= 2_000 and "\x00" not in (m.subject or "") + (m.from_name or "")


def test_hostile_set_through_a_local_sync(tmp_path):
    """The hostile set synced from a Maildir: no error, one folder row per file, bounded time."""
    raws = list(hostile().values())
    cfg = config_mod.load(maildir_config(tmp_path, _write_maildir(tmp_path / "Maildir", raws)))
    db, results, seconds = _sync(cfg)
    assert all(r.ok for r in results), results
    assert db.execute("SELECT COUNT(*) FROM message_folders").fetchone()[0] == len(raws)
    # One Message-ID shared by two different messages is one row seen twice (the first copy wins).
    assert db.execute("SELECT COUNT(*) FROM messages WHERE message_id = 'shared@h'").fetchone()[0] == 1
    # 10,000 recipients plus the sender: kept up to the parser's cap, which is what bounds the time.
    assert db.execute("SELECT COUNT(*) FROM message_addresses a JOIN messages m ON m.id = a.message "
                      "WHERE m.message_id = 'many@h'").fetchone()[0] == MAX_ADDRESSES
    dates = dict(db.execute("SELECT message_id, date FROM messages WHERE message_id LIKE 'y%@h'").fetchall())
    assert all(d.endswith("Z") for d in dates.values()), dates
    assert seconds < 30


@pytest.mark.dovecot
def test_hostile_set_through_dovecot(mailbox, tmp_path, monkeypatch):
    """The hostile set APPENDed to Dovecot and synced over IMAP: no error, nothing lost."""
    from syncagent.sources.imap import connect as imap_connect

    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)
    raws = list(hostile().values())
    mailbox.append_many("INBOX", raws)
    on_server = mailbox.status("INBOX")[b"MESSAGES"]
    assert on_server == len(raws)
    monkeypatch.setenv(PW_ENV, mailbox.password)
    cfg = config_mod.load(imap_config(tmp_path, mailbox.server.direct_port, mailbox.user, batch_size=5, timeout=30))
    db, results, seconds = _sync(cfg)
    assert all(r.ok for r in results), [r.error for r in results]
    assert db.execute("SELECT COUNT(*) FROM message_folders WHERE folder = 'INBOX'").fetchone()[0] == on_server
    assert db.execute("SELECT COUNT(*) FROM messages WHERE message_id = 'shared@h'").fetchone()[0] == 1
    assert seconds < 60


def _corpus_messages() -> list[bytes]:
    out = []
    for p in sorted(CORPORA.rglob("*")):
        if not p.is_file() or p.name in ("README.md", "COPYING") or p.stat().st_size < 16:
            continue
        if "enron-mbox" in p.parts:
            out.extend(m.as_bytes() for m in mailbox.mbox(p, create=False))
        else:
            out.append(p.read_bytes())
    return out


@pytest.mark.skipif(not CORPORA.is_dir(), reason=f"no corpora at {CORPORA}")
def test_every_corpus_message_through_a_local_sync(tmp_path):
    """All ~5,000 corpus messages (files and mbox) synced from one Maildir: no error, none lost, < 20 ms each."""
    raws = _corpus_messages()
    cfg = config_mod.load(maildir_config(tmp_path, _write_maildir(tmp_path / "Maildir", raws)))
    db, results, seconds = _sync(cfg)
    assert all(r.ok for r in results), results
    assert db.execute("SELECT COUNT(*) FROM message_folders").fetchone()[0] == len(raws)
    assert db.execute("SELECT COUNT(*) FROM messages WHERE date IS NULL OR message_id IS NULL").fetchone()[0] == 0
    assert seconds / len(raws) < 0.02, f"{seconds:.1f} s for {len(raws)} messages"
    assert os.stat(cfg.database).st_size > 0
