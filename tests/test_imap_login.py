"""Logging in with passwords outside ASCII, and keeping every password out of error texts and logs."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading

import pytest
from dovecot import make_message
from test_imap_errors import error_line, run_cli, write_config

from syncagent import config as config_mod
from syncagent.pipeline.sync import sync_all
from syncagent.sources.imap import connect as imap_connect
from syncagent.store.db import open_db

UTF8_PASSWORD = "Grüße-für-Jürgen-€"


@pytest.fixture(autouse=True)
def _no_retry(monkeypatch):
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)


def _leaks(text: str, password: str) -> list[str]:
    """The characters of ``password`` outside ASCII (and the password itself) that occur in ``text``."""
    found = [ch for ch in dict.fromkeys(password) if not ch.isascii() and ch in text]
    return found + ([password] if password in text else [])


@pytest.mark.dovecot
def test_utf8_password_logs_in_with_authenticate_plain(dovecot, tmp_path, monkeypatch, capsys):
    """A password with umlauts and a euro sign logs in (AUTHENTICATE PLAIN, UTF-8) and the mail is synced."""
    mailbox = dovecot.new_user(password=UTF8_PASSWORD)
    mailbox.append("INBOX", make_message(1))
    path = write_config(tmp_path, monkeypatch, port=dovecot.port, username=mailbox.user,
                        password=UTF8_PASSWORD)
    code, out, err = run_cli(path, capsys)
    assert code == 0, err
    assert "work: 1 new message" in out
    assert "AUTHENTICATE" in dovecot.commands and "LOGIN" not in dovecot.commands


@pytest.mark.dovecot
def test_wrong_utf8_password_is_one_sentence_without_any_of_it(dovecot, tmp_path, monkeypatch, caplog):
    """A wrong non-ASCII password gives the usual refusal; no character of it reaches sync_runs or the log."""
    mailbox = dovecot.new_user(password=UTF8_PASSWORD)
    wrong = "Jürgen-Straße-ü"
    path = write_config(tmp_path, monkeypatch, port=dovecot.port, username=mailbox.user, password=wrong)
    cfg = config_mod.load(path)
    db = open_db(cfg.database)
    with caplog.at_level(logging.DEBUG):
        [result] = sync_all(db, cfg)
    assert result.error == (
        f"The server 127.0.0.1 rejected the login for {mailbox.user}; check the username and password "
        "(for Gmail and others, an app password).")
    [(stored,)] = db.execute("SELECT error FROM sync_runs").fetchall()
    assert stored == result.error
    assert _leaks(stored, wrong) == [] and _leaks(caplog.text, wrong) == []
    assert "Traceback" not in caplog.text


@contextlib.contextmanager
def greeting_only(capabilities: str):
    """An IMAP server on 127.0.0.1 greeting with ``capabilities``: it refuses AUTHENTICATE, answers CAPABILITY and LOGOUT."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    received: list[bytes] = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(f"* OK [CAPABILITY {capabilities}] ready\r\n".encode())
                with contextlib.suppress(OSError):
                    lines = conn.makefile("rb")
                    for line in lines:
                        received.append(line)
                        tag = line.split(b" ", 1)[0]
                        if b" LOGOUT" in line.upper():
                            conn.sendall(b"* BYE\r\n" + tag + b" OK LOGOUT done\r\n")
                            break
                        if b" CAPABILITY" in line.upper():
                            conn.sendall(f"* CAPABILITY {capabilities}\r\n".encode() + tag + b" OK done\r\n")
                            continue
                        if b" AUTHENTICATE " in line.upper():
                            conn.sendall(b"+ \r\n")
                            received.append(lines.readline())  # the SASL answer, or "*" to abort
                            conn.sendall(tag + b" NO [AUTHENTICATIONFAILED] no\r\n")
                            continue
                        conn.sendall(tag + b" BAD not here\r\n")

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1], received
    finally:
        listener.close()


def test_utf8_password_without_auth_plain_says_what_to_do(tmp_path, monkeypatch, capsys):
    """A server offering no AUTHENTICATE PLAIN is never sent a non-ASCII password; the sentence says why and what to do."""
    with greeting_only("IMAP4rev1 AUTH=LOGIN") as (port, received):
        path = write_config(tmp_path, monkeypatch, port=port, password=UTF8_PASSWORD)
        code, _out, err = run_cli(path, capsys)
    assert code == 1
    assert error_line(err) == (
        "Error: The password of account 'work' has characters outside ASCII, which 127.0.0.1 can only "
        "receive through AUTHENTICATE PLAIN, and it does not offer it; use an app password (or change "
        "the password) made of ASCII characters only.")
    assert not any(b"LOGIN" in line.upper() or b"AUTHENTICATE" in line.upper() for line in received)
    assert _leaks(err, UTF8_PASSWORD) == []


def test_failure_while_sending_a_password_never_quotes_it(tmp_path, monkeypatch, caplog):
    """An exception raised while the password is handled (here: a fault in the encoder) is named, never quoted."""
    import imaplib

    def broken(self, inp):
        # Like a codec refusing the first character outside ASCII: its text quotes that character.
        at = next(i for i, ch in enumerate(inp) if not ch.isascii())
        raise UnicodeEncodeError("ascii", inp, at, at + 1, "ordinal not in range(128)")

    monkeypatch.setattr(imaplib._Authenticator, "encode", broken)
    with greeting_only("IMAP4rev1 AUTH=PLAIN") as (port, _received):
        path = write_config(tmp_path, monkeypatch, port=port, password=UTF8_PASSWORD)
        cfg = config_mod.load(path)
        db = open_db(cfg.database)
        with caplog.at_level(logging.DEBUG):
            [result] = sync_all(db, cfg)
    assert result.error == (
        f"The login to 127.0.0.1:{port} for account 'work' failed with UnicodeEncodeError (its text is "
        "withheld because it may quote the password); report it if it persists.")
    assert _leaks(result.error, UTF8_PASSWORD) == [] and _leaks(caplog.text, UTF8_PASSWORD) == []
