"""Errors say what happened, not what the server sent: a truncated or garbled FETCH answer from a
real Dovecot session (cut or rewritten by a relay) gives an error sentence, a sync_runs.error and
a log free of mail header fragments; the bytes appear only in the -vv debug log."""

from __future__ import annotations

import contextlib
import re
import select
import socket
import sqlite3
import threading

import pytest
from dovecot import make_message
from test_imap_errors import error_line, run_cli, write_config

SECRET_SUBJECT = "Project Nightingale term sheet"
# What must never reach an error sentence, the sync_runs table or the default log.
SERVER_BYTES = re.compile(r"FETCH|BODY\[|HEADER\.FIELDS|b'|b\"|\\r\\n|Nightingale|Subject:|\{\d+\}")


@contextlib.contextmanager
def tampering_relay(target_port: int, mode: str):
    """A TCP relay to Dovecot that spoils the answer to the header FETCH: ``cut`` ends the connection
    in the middle of the response line, ``garbage`` answers a malformed FETCH quoting a header."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def relay(client, server):
        fetch_tag = None
        pending = b""
        try:
            while True:
                ready, _, _ = select.select([client, server], [], [], 30)
                if not ready:
                    return
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    if src is client:
                        if b"HEADER.FIELDS" in data:  # every header FETCH (a retry too) is spoilt
                            fetch_tag = data.split(b" ", 1)[0]
                            if mode == "garbage":
                                client.sendall(b"* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] \"Subject: "
                                               + SECRET_SUBJECT.encode() + b"\" ))) ((\r\n" + fetch_tag
                                               + b" OK done\r\n")
                                continue
                        server.sendall(data)
                    elif fetch_tag is not None and mode == "cut":
                        pending += data
                        at = pending.find(b"HEADER.FIELDS")
                        if at >= 0:
                            client.sendall(pending[:at + 24])  # inside the line, before its CRLF
                            return
                    else:
                        client.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.close()

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", target_port))
            threading.Thread(target=relay, args=(conn, up), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.mark.dovecot
@pytest.mark.parametrize("mode", ["cut", "garbage"])
def test_spoilt_fetch_answer_is_described_not_quoted(mode, mailbox, tmp_path, monkeypatch, capsys):
    """A cut or garbled FETCH answer fails the sync with a sentence naming what happened and quoting no server bytes."""
    mailbox.append("INBOX", make_message(1, subject=SECRET_SUBJECT))
    with tampering_relay(mailbox.server.direct_port, mode) as port:
        path = write_config(tmp_path, monkeypatch, port=port, username=mailbox.user, password=mailbox.password)
        code, out, err = run_cli(path, capsys)
    assert code == 1
    line = error_line(err)
    assert not SERVER_BYTES.search(line), line
    assert "next sync" in line
    assert not SERVER_BYTES.search(out + err), out + err
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    stored = [r[0] for r in conn.execute("SELECT error FROM sync_runs WHERE status = 'failed'")]
    conn.close()
    assert stored and not any(SERVER_BYTES.search(e) for e in stored), stored


@pytest.mark.dovecot
def test_server_bytes_stay_in_the_debug_log(mailbox, tmp_path, monkeypatch, capsys):
    """With -vv the debug log still shows what the server sent, for diagnosing; the error sentence does not."""
    mailbox.append("INBOX", make_message(1, subject=SECRET_SUBJECT))
    with tampering_relay(mailbox.server.direct_port, "cut") as port:
        path = write_config(tmp_path, monkeypatch, port=port, username=mailbox.user, password=mailbox.password)
        from syncagent.cli import main

        with pytest.raises(SystemExit):
            main(["-vv", "--config", str(path), "sync"])
        err = capsys.readouterr().err
    import logging

    logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers if not getattr(h, "_syncagent", False)]
    assert "HEADER.FIELDS" in err
    errors = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and not SERVER_BYTES.search(errors[0]), errors


def test_gmail_transport_error_is_described_not_quoted():
    """A Gmail transport failure whose text quotes the answer it choked on becomes a sentence without that text."""
    import httplib2

    from syncagent.config import parse
    from syncagent.errors import TransientSourceError
    from syncagent.sources.gmail.api import GmailClient

    cfg = parse({"accounts": [{"name": "g", "kind": "gmail", "client_secret_file": "/nonexistent.json"}]}, None)
    client = GmailClient.__new__(GmailClient)
    client.account = cfg.accounts[0]

    def choke():
        raise httplib2.RelativeURIError(f"b'HTTP/1.1 200 OK\\r\\nSubject: {SECRET_SUBJECT}'")

    with pytest.raises(TransientSourceError) as caught:
        client._guard(choke)
    assert not SERVER_BYTES.search(str(caught.value)), str(caught.value)
    assert "RelativeURIError" in str(caught.value)
