"""IMAP failures reach the user as one sentence, exit code 1 and no traceback."""

from __future__ import annotations

import contextlib
import logging
import select
import shutil
import socket
import ssl
import subprocess
import threading

import pytest
from dovecot import make_message

from syncagent.cli import main
from syncagent.config import Account
from syncagent.sources.imap import connect as imap_connect
from syncagent.sources.imap.source import ImapSource

ME = "me@example.test"


@pytest.fixture(autouse=True)
def _no_retry(monkeypatch):
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)


def write_config(tmp_path, monkeypatch, *, host="127.0.0.1", port, username="nobody@example.test",
                 password="secret-pw", security="none", extra=""):
    monkeypatch.setenv("SYNCAGENT_TEST_IMAP_PW", password)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\npath = "{tmp_path / "db.sqlite"}"\n\n[[accounts]]\nname = "work"\nkind = "imap"\n'
        f'host = "{host}"\nport = {port}\nsecurity = "{security}"\nusername = "{username}"\n'
        f'password_env = "SYNCAGENT_TEST_IMAP_PW"\naddresses = ["{ME}"]\ntimeout = 10\n{extra}'
    )
    return path


def run_cli(path, capsys, *args):
    """Run `syncagent --config PATH sync` in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(path), "sync", *args])
    out, err = capsys.readouterr()
    logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers
                                       if not getattr(h, "_syncagent", False)]
    return exc.value.code, out, err


def error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.dovecot
def test_wrong_password(mailbox, tmp_path, monkeypatch, capsys):
    """A refused login names the server and the user and suggests an app password."""
    path = write_config(tmp_path, monkeypatch, port=mailbox.server.port, username=mailbox.user,
                        password="wrong")
    code, _out, err = run_cli(path, capsys)
    assert code == 1
    assert error_line(err) == (
        f"Error: The server 127.0.0.1 rejected the login for {mailbox.user}; check the username and "
        "password (for Gmail and others, an app password).")


def test_refused_port(tmp_path, monkeypatch, capsys):
    """A closed port on 127.0.0.1 says nothing accepts connections there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        path = write_config(tmp_path, monkeypatch, port=port)
        code, _out, err = run_cli(path, capsys)
    assert code == 1
    assert f"Nothing accepts connections at 127.0.0.1:{port} for account 'work'" in error_line(err)


def test_unknown_host(tmp_path, monkeypatch, capsys):
    """A host name that does not resolve says so and points at `host`."""
    path = write_config(tmp_path, monkeypatch, host="imap.nowhere.invalid", port=993, security="tls")
    code, _out, err = run_cli(path, capsys)
    assert code == 1
    assert "The IMAP server imap.nowhere.invalid of account 'work' cannot be found" in error_line(err)


def test_silent_server_times_out(tmp_path, monkeypatch, capsys):
    """A server that never greets fails after `timeout` seconds with a sentence about it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        path = write_config(tmp_path, monkeypatch, port=port, extra="")
        path.write_text(path.read_text().replace("timeout = 10", "timeout = 0.3"))
        code, _out, err = run_cli(path, capsys)
    assert code == 1
    assert f"127.0.0.1:{port} did not answer within 0.3 s" in error_line(err)


MISSING_NOPE = (
    "The folder 'Nope' named in `folders` of account 'work' does not exist on 127.0.0.1, so the other "
    "folders were synced without it; fix the name or remove it from `folders` (the folders there are: "
    "'Drafts', 'INBOX', 'Sent')."
)


@pytest.mark.dovecot
def test_missing_configured_folder_skips_it_and_keeps_syncing(mailbox, tmp_path, monkeypatch, capsys):
    """A folder in `folders` that does not exist is skipped with one warning per pass; the others keep syncing."""
    import re

    from syncagent.store.db import open_db

    mailbox.append("INBOX", make_message(1))
    path = write_config(tmp_path, monkeypatch, port=mailbox.server.port, username=mailbox.user,
                        extra='folders = ["INBOX", "Nope"]\n')
    code, out, err = run_cli(path, capsys)
    assert code == 0, err
    summary, hint = out.splitlines()  # the hint: no contact is tracked in this mailbox yet
    assert re.fullmatch(r"work: 1 new message in \d+\.\d s \(1 warning\)", summary), out
    assert hint.startswith("No contacts are tracked yet")
    assert err.splitlines() == [f"Warning: {MISSING_NOPE}"]
    mailbox.append("INBOX", make_message(2))
    code, out, err = run_cli(path, capsys)
    assert code == 0 and out.startswith("work: 1 new message in ")  # the ledger keeps moving
    assert err.count("Warning: ") == 1
    db = open_db(tmp_path / "db.sqlite")
    assert db.execute("SELECT status, new_messages, error, notes FROM sync_runs ORDER BY id").fetchall() == [
        ("ok", 1, None, MISSING_NOPE), ("ok", 1, None, MISSING_NOPE)]
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 2


@pytest.mark.dovecot
def test_no_configured_folder_exists(mailbox, tmp_path, monkeypatch, capsys):
    """When no folder named in `folders` exists, nothing can be synced: that is a failure naming what is there."""
    path = write_config(tmp_path, monkeypatch, port=mailbox.server.port, username=mailbox.user,
                        extra='folders = ["Archives", "Nope"]\n')
    code, _out, err = run_cli(path, capsys)
    assert code == 1
    assert error_line(err) == (
        "Error: No folder named in `folders` of account 'work' exists on 127.0.0.1; fix `folders` (the "
        "folders there are: 'Drafts', 'INBOX', 'Sent').")


@pytest.mark.dovecot
def test_starttls_not_offered(mailbox, tmp_path, monkeypatch, capsys):
    """security = "starttls" against a server without STARTTLS says to use tls instead."""
    path = write_config(tmp_path, monkeypatch, port=mailbox.server.port, username=mailbox.user,
                        security="starttls")
    code, _out, err = run_cli(path, capsys)
    assert code == 1
    assert "does not offer STARTTLS" in error_line(err)


# --- TLS ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 made with the openssl command."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


@contextlib.contextmanager
def tls_front(cert, key, target_port):
    """A TLS terminator on 127.0.0.1 relaying to a plain port (Dovecot), with a self-signed cert."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def relay(tls, plain):
        # One thread per connection, closing both sockets only when it is done: an SSL
        # socket closed under another thread's feet keeps writing to its old descriptor
        # number, which the process may already have reused for a file.
        try:
            while True:
                ready, _, _ = select.select([tls, plain], [], [], 30)
                if not ready:
                    return
                for src in ready:
                    dst = plain if src is tls else tls
                    data = src.recv(65536)
                    if not data:
                        return
                    while src is tls and tls.pending():
                        data += tls.recv(tls.pending())
                    dst.sendall(data)
        except (OSError, ssl.SSLError):
            pass
        finally:
            for sock in (tls, plain):
                with contextlib.suppress(OSError):
                    sock.close()

    def serve():
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                conn = ctx.wrap_socket(raw, server_side=True)
                up = socket.create_connection(("127.0.0.1", target_port))
            except (OSError, ssl.SSLError):
                raw.close()  # the client refused our certificate
                continue
            threading.Thread(target=relay, args=(conn, up), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield port
    finally:
        listener.close()


@pytest.mark.dovecot
def test_unverifiable_certificate(mailbox, self_signed, tmp_path, monkeypatch, capsys):
    """A self-signed certificate is refused, and the sentence says how to trust it for that account only."""
    with tls_front(*self_signed, mailbox.server.direct_port) as port:
        path = write_config(tmp_path, monkeypatch, port=port, username=mailbox.user, security="tls")
        code, _out, err = run_cli(path, capsys)
    assert code == 1
    line = error_line(err)
    assert line.startswith("Error: The TLS certificate of 127.0.0.1 could not be verified (self")
    assert "pin its certificate with `tls_fingerprint = \"sha256:...\"` in the [[accounts]] entry named 'work'" in line


@pytest.mark.dovecot
def test_tls_verify_false_connects(mailbox, self_signed, tmp_path, monkeypatch, capsys):
    """With tls_verify = false for the account the same server syncs over TLS."""
    mailbox.append("INBOX", make_message(1))
    with tls_front(*self_signed, mailbox.server.direct_port) as port:
        path = write_config(tmp_path, monkeypatch, port=port, username=mailbox.user, security="tls",
                            extra="tls_verify = false\n")
        code, out, err = run_cli(path, capsys)
    assert code == 0, err
    assert "work: 1 new message" in out


# --- folder choice (a stub LIST: Dovecot here always has a Sent folder) ---------------

class _ListOnly:
    def __init__(self, listing):
        self.listing = listing

    def list_folders(self):
        return self.listing


def _source(listing, gmail=False, folders=None):
    src = ImapSource(Account(name="x", kind="imap", host="h", username="u", folders=folders))
    src.client, src.gmail = _ListOnly(listing), gmail
    return src


def test_folder_choice_follows_special_use(caplog):
    """INBOX plus \\Sent by default; Gmail syncs only \\All; no \\Sent means INBOX alone with a warning."""
    plain = [((b"\\HasNoChildren",), b"/", "INBOX"), ((b"\\Sent",), b"/", "Sent Items")]
    assert _source(plain)._folders() == ["INBOX", "Sent Items"]
    gmail = [((), b"/", "INBOX"), ((b"\\HasChildren", b"\\Noselect"), b"/", "[Gmail]"),
             ((b"\\All", b"\\HasNoChildren"), b"/", "[Gmail]/All Mail"),
             ((b"\\Sent",), b"/", "[Gmail]/Sent Mail")]
    assert _source(gmail, gmail=True)._folders() == ["[Gmail]/All Mail"]
    assert _source(gmail, gmail=False)._folders() == ["INBOX", "[Gmail]/Sent Mail"]
    with caplog.at_level(logging.WARNING):
        assert _source([((), b"/", "INBOX")])._folders() == ["INBOX"]
    assert "marks no folder as Sent" in caplog.text
    assert _source(plain, folders=("Archive",))._folders() == ["Archive"]


def test_connect_is_retried_with_backoff(tmp_path, monkeypatch, capsys):
    """A server that hangs up at once is tried CONNECT_ATTEMPTS times, then reported as a dropped connection."""
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 3)
    monkeypatch.setattr(imap_connect, "CONNECT_WAIT_MAX", 0)
    accepted = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def hang_up():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        path = write_config(tmp_path, monkeypatch, port=port)
        code, _out, err = run_cli(path, capsys)
    finally:
        listener.close()
    assert code == 1
    assert f"The connection to 127.0.0.1:{port} for account 'work' failed" in error_line(err)
    assert len(accepted) == 3


@pytest.mark.dovecot
def test_oauth2_uses_the_gmail_token(mailbox, tmp_path, monkeypatch, capsys):
    """auth = "oauth2" logs in with AUTHENTICATE XOAUTH2 and the token from gmail_auth (refused here)."""
    from syncagent.sources.gmail import auth as gmail_auth

    monkeypatch.setattr(gmail_auth, "access_token", lambda account: "ya29.test-token")
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\npath = "{tmp_path / "db.sqlite"}"\n\n[[accounts]]\nname = "work"\nkind = "imap"\n'
        f'host = "127.0.0.1"\nport = {mailbox.server.port}\nsecurity = "none"\nusername = "{mailbox.user}"\n'
        'auth = "oauth2"\ntimeout = 10\n')
    code, _out, err = run_cli(path, capsys)
    assert code == 1
    assert "rejected the login" in error_line(err)
    assert "AUTHENTICATE" in mailbox.server.commands
    assert "LOGIN" not in mailbox.server.commands
