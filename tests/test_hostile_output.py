"""Promise 6: strangers' text is data. Subjects, names and segments full of escape sequences,
bidi overrides and markup reach the terminal, the digest and notifications only as visible text,
while the database and JSON keep them exact."""

from __future__ import annotations

import base64
import csv
import errno
import json
import os
import select
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from faults_helpers import ME
from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.safe_text import for_json, for_markdown, for_markup, for_terminal, shorten

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-20T12:00:00Z"

# What a hostile sender puts in a subject: window title (OSC 0/2), clipboard write (OSC 52),
# clear screen and cursor home (CSI), an 8-bit CSI (C1), backspaces, a right-to-left override and isolate, and a Markdown/HTML payload.
HOSTILE_SUBJECT = ("Lunch? \x1b]0;pwned-title\x07\x1b]52;c;cGF5bG9hZA==\x07\x1b[2J\x1b[H\x9b31m"
                   "\x08\x08gone \u202etxt.exe\u2066 [click](http://evil.example) <img src=x onerror=alert(1)> &#x1b;")
HOSTILE_NAME = "Mallory \x1b]2;owned\x07\x1b[5m<script>alert(1)</script>\u202e"
HOSTILE_SEGMENT = "\x1b[41mvip\x1b[0m\u2067"
REPLY_NAME = "Eve \x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\"
# Bytes and characters a terminal obeys; none may leave syncagent except inside JSON escapes.
OBEYED = [b"\x1b", b"\x07", b"\x08", b"\xc2\x9b", "\u202e".encode(), "\u2066".encode(), "\u2067".encode()]


def _raw_header(text: str) -> bytes:
    return b"=?utf-8?b?" + base64.b64encode(text.encode()) + b"?="


def _mail(frm: bytes, to: bytes, subject: bytes, date: str, mid: str, reply_to: str | None = None) -> bytes:
    extra = f"In-Reply-To: <{reply_to}>\r\nReferences: <{reply_to}>\r\n".encode() if reply_to else b""
    return (b"From: " + frm + b"\r\nTo: " + to + b"\r\nSubject: " + subject + b"\r\nDate: " + date.encode() +
            b"\r\nMessage-ID: <" + mid.encode() + b">\r\n" + extra +
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n")


@pytest.fixture
def hostile_setup(tmp_path):
    """A Maildir with hostile subjects and display names, contacts with hostile names, synced."""
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    mails = [
        # An ask to Mallory, unanswered: a follow-up whose reason quotes the subject.
        _mail(ME.encode(), b"mallory@evil.example", _raw_header(HOSTILE_SUBJECT),
              "Mon, 2 Nov 2026 09:00:00 -0500", "ask@me.test"),
        # Eve answers an ask: a thank-you owed to a hostile display name; the raw ESC byte in a header too.
        _mail(ME.encode(), b"eve@evil.example", b"Coffee \x1b[2J?", "Tue, 10 Nov 2026 09:00:00 -0500", "ask2@me.test"),
        _mail(_raw_header(REPLY_NAME) + b" <eve@evil.example>", ME.encode(), _raw_header("Re: " + HOSTILE_SUBJECT),
              "Wed, 11 Nov 2026 09:00:00 -0500", "re@evil.example", reply_to="ask2@me.test"),
    ]
    for i, raw in enumerate(mails):
        (md / "cur" / f"{1700000000 + i}.M{i}P1.host:2,S").write_bytes(raw)
    db = tmp_path / "db.sqlite"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'timezone = "America/New_York"\n[database]\npath = "{db}"\n'
                   f'[digest]\noutput_dir = "{tmp_path / "digests"}"\n\n'
                   f'[[accounts]]\nname = "local"\nkind = "maildir"\npath = "{md}"\naddresses = ["{ME}"]\n')
    contacts = tmp_path / "contacts.csv"
    with contacts.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "email", "company", "segment"])
        w.writerow([HOSTILE_NAME, "mallory@evil.example", "\x1b[31mEvil Corp\x9b0m", HOSTILE_SEGMENT])
        w.writerow([REPLY_NAME, "eve@evil.example", "<iframe src=//evil.example>", HOSTILE_SEGMENT])
    for args in (["contacts", "import", str(contacts)], ["sync"]):
        proc = _run(cfg, *args)
        assert proc.returncode == 0, proc.stderr.decode()
    return cfg, db


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "COLUMNS": "200"}


def _run(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "syncagent", "--config", str(cfg), *args],
                          capture_output=True, env=_env(), timeout=120)


def _run_on_pty(cfg: Path, *args: str) -> tuple[int, bytes]:
    """The real CLI with stdin, stdout and stderr on a pseudo-terminal, as a person runs it."""
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "syncagent", "--config", str(cfg), *args],
                            stdin=slave, stdout=slave, stderr=slave, env=_env(), close_fds=True)
    os.close(slave)
    out = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                raise AssertionError(f"no output for 120 s from {args}")
            try:
                chunk = os.read(master, 65536)
            except OSError as exc:  # EIO: the child closed the terminal
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
        code = proc.wait(timeout=60)
    return code, bytes(out)


def _obeyed(data: bytes) -> list[bytes]:
    return [b for b in OBEYED if b in data]


def test_safe_text_shows_every_control_and_bidi_character():
    """ESC, BEL, CR, DEL, 8-bit CSI, bidi overrides and lone surrogates each become a visible stand-in."""
    assert for_terminal("a\x1b[2Jb\x07c\x7f\x00") == "a␛[2Jb␇c␡␀"
    assert for_terminal("x\x9b31m\u202eevil\u2066\u200f") == "x⟨U+009B⟩31m⟨U+202E⟩evil⟨U+2066⟩⟨U+200F⟩"
    assert for_terminal("one\ntwo\tthree\rfour") == "one␊two␉three␍four"
    assert for_terminal("one\ntwo\tthree\rfour", multiline=True) == "one\ntwo\tthree␍four"
    assert for_terminal("bad \udcff byte \u2028") == "bad \ufffd byte ⟨U+2028⟩"
    assert for_terminal("Zoë 李 🙂 شريف") == "Zoë 李 🙂 شريف"  # ordinary text of any script is untouched
    assert for_terminal(None) == ""


def test_safe_text_markup_and_markdown_render_as_typed():
    """Names holding HTML or Markdown come out escaped for HTML/Pango and inert in Markdown."""
    assert for_markup('<a href="x">\x1b') == "&lt;a href=&quot;x&quot;&gt;␛"
    assert for_markup("it's <b>", quote=False) == "it's &lt;b&gt;"
    assert for_markdown("[click](http://e) *b* `c` a|b <img> &#x202e; ~~s~~") == (
        "\\[click\\](http://e) \\*b\\* \\`c\\` a\\|b \\<img> \\&#x202e; \\~\\~s\\~\\~")
    assert for_markdown("Smith & Co <3") == "Smith & Co <3"  # plain text stays readable
    assert shorten("abcdef", 4) == "abc…" and shorten("abc", 4) == "abc"


def test_json_keeps_exact_values_but_nothing_a_terminal_obeys():
    """for_json round-trips every hostile value exactly, and its text holds no ESC, BEL, C1 or bidi character."""
    value = {"s": HOSTILE_SUBJECT, "n": HOSTILE_NAME, "bad": "\udcff"}
    text = for_json(value)
    assert json.loads(text) == value
    assert not _obeyed(text.encode("utf-8", "surrogatepass"))


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner) | st.tuples(inner, inner)
                       | st.dictionaries(st.text(), inner)
                       | st.dictionaries(st.integers() | st.floats() | st.booleans() | st.none(), inner),
                       max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(_VALUES, st.sampled_from([0, 2, 4]))
def test_json_is_the_standard_indented_text_with_only_unsafe_characters_escaped(value, indent):
    """--json prints exactly what json.dumps(indent=...) writes, for any nesting, save the unsafe characters' escapes."""
    expected = json.dumps(value, indent=indent, ensure_ascii=False)
    expected = "".join(f"\\u{ord(ch):04x}" if for_terminal(ch) != ch and ch not in "\n\t\r" and ord(ch) >= 0x7F
                       else ch for ch in expected)
    assert for_json(value, indent=indent) == expected


def test_commands_on_a_terminal_print_no_escape_sequence_from_mail(hostile_setup):
    """On a real pty, reminders, contacts list, stats and digest print strangers' text visibly and never as escapes."""
    cfg, db = hostile_setup
    seen = {}
    for args in (["reminders", "--now", NOW], ["contacts", "list"], ["stats", "--by", "segment", "--now", NOW],
                 ["digest", "--now", NOW], ["doctor", "--offline"], ["-v", "reminders", "--json", "--now", NOW]):
        code, out = _run_on_pty(cfg, *args)
        assert code in (0, 1), (args, out)  # doctor may find no systemd unit here
        assert not _obeyed(out), (args, _obeyed(out), out)
        seen[args[0] if args[0] != "-v" else "json"] = out.decode()
    # The hostile text is there, made visible: the user can see that something odd was sent.
    assert "Lunch? ␛]0;pwned-title␇␛]52;c;cGF5bG9hZA==␇␛[2J␛[H⟨U+009B⟩31m" in seen["reminders"]
    assert "Mallory ␛]2;owned␇␛[5m<script>" in seen["reminders"]
    assert "␛[31mEvil Corp⟨U+009B⟩0m" in seen["contacts"]
    assert "␛[41mvip␛[0m⟨U+2067⟩" in seen["stats"]
    # JSON on a terminal: the exact values, in escapes.
    listed = json.loads(seen["json"][seen["json"].index("["):])
    assert {r["contact_name"] for r in listed} == {HOSTILE_NAME, REPLY_NAME}
    assert any(HOSTILE_SUBJECT in r["reason"] for r in listed)


def test_output_through_a_pipe_carries_no_title_or_clipboard_sequence(hostile_setup):
    """With stdout not a terminal (piped to a file or a pager) no OSC title or clipboard write passes either."""
    cfg, _ = hostile_setup
    for args in (["reminders", "--now", NOW], ["contacts", "list"], ["stats", "--by", "segment"]):
        proc = _run(cfg, *args)
        assert proc.returncode == 0, proc.stderr.decode()
        assert not _obeyed(proc.stdout + proc.stderr), args


def test_database_keeps_the_exact_text(hostile_setup):
    """The stored subject and contact name are the exact strings the mail and the file held."""
    cfg, db = hostile_setup
    conn = sqlite3.connect(db)
    subjects = {r[0] for r in conn.execute("SELECT subject FROM messages")}
    names = {r[0] for r in conn.execute("SELECT name FROM contacts")}
    conn.close()
    assert HOSTILE_SUBJECT in subjects and "Re: " + HOSTILE_SUBJECT in subjects
    assert names == {HOSTILE_NAME, REPLY_NAME}


def test_digest_files_hold_no_control_character_or_markup_from_mail(hostile_setup, tmp_path):
    """The Markdown and HTML digests contain no ESC/BEL/C1/bidi character, no live tag and stay well-formed XML."""
    cfg, _ = hostile_setup
    proc = _run(cfg, "digest", "--now", NOW)
    assert proc.returncode == 0, proc.stderr.decode()
    md_path, html_path = (Path(p) for p in proc.stdout.decode().split())
    md, html = md_path.read_bytes(), html_path.read_bytes()
    for data in (md, html):
        assert not _obeyed(data)
        assert not [c for c in data.decode() if ord(c) < 32 and c not in "\n\t"]
    text = md.decode()
    assert "␛\\]0;pwned-title␇" in text and "\\[click\\](http://evil.example)" in text and "\\<img" in text
    assert "\\<script>" in text and "\\&#x1b;" in text
    page = html.decode()
    assert "<script" not in page and "<img" not in page and "<iframe" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    ET.fromstring(page.split("\n", 1)[1])  # the doctype line aside, the page parses as XML


def test_desktop_notification_escapes_markup_and_caps_length(tmp_path, monkeypatch):
    """notify-send gets names and subjects as escaped text (no <script>, <img>, <a>, <iframe>) and a bounded body."""
    from test_reminders import add_contact, add_message

    from syncagent import config as config_mod
    from syncagent.notify import announce
    from syncagent.store.db import open_db
    from syncagent.timeutil import parse_iso

    cfg = config_mod.parse({"timezone": "America/New_York", "database": {"path": str(tmp_path / "s.db")},
                            "notify": {"desktop": True}}, tmp_path / "config.toml")
    db = open_db(cfg.database)
    names = ['<script>alert(1)</script>', '<img src=x onerror="alert(1)">', '<a href="http://evil.example">Bank</a>',
             '<iframe src="//evil.example"></iframe>', "\x1b]0;title\x07Zed", "Long " + "x" * 5000]
    for i, name in enumerate(names):
        add_contact(db, name, f"p{i}@evil.example")
        add_message(db, f"2026-11-0{i + 2}T14:00:00", "outgoing", f"p{i}@evil.example", f"<b>Subject {i}</b> " + "y" * 3000)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "notified.bin"
    script = bindir / "notify-send"
    # The recorder keeps each argument NUL-terminated, so a newline in the body cannot fake an argument.
    script.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done >> "{record}"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    from syncagent.pipeline import reminders

    reminders.reconcile(db, cfg, parse_iso("2026-12-01T12:00:00Z"))  # the sync before the announcement
    assert announce.notify_due(db, cfg, parse_iso("2026-12-01T12:00:00Z")) == len(names)
    app, title, body = record.read_bytes().decode().split("\0")[:3]
    assert (app, title) == ("--app-name=syncagent", f"syncagent: {len(names)} reminders due")
    assert "<" not in body and ">" not in body and "\x1b" not in body and "\x07" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "&lt;a href=\"http://evil.example\"&gt;" in body
    assert "␛]0;title␇Zed" in body
    assert len(body) < 2000 and max(len(line) for line in body.splitlines()) < 400
