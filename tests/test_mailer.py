"""Mailing the digest through a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import datetime as dt
import email
import socket
import ssl
from email import policy

import digest_scenario as scenario
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from syncagent import config as config_mod
from syncagent.digest import data as digest
from syncagent.errors import AuthError, SyncagentError
from syncagent.notify import mailer
from syncagent.store.db import open_db

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

PASSWORD = "s3cret-Pa55word-never-in-mail"


class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"me@example.com" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535 itself


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    # Plain AUTH on loopback; the TLS paths have their own test.
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), authenticator=_authenticator,
                            auth_require_tls=False, auth_required=True)
    controller.start()
    yield controller, inbox
    controller.stop()


def _config(tmp_path, port, **smtp):
    data = {
        "timezone": "America/New_York",
        "database": {"path": str(tmp_path / "syncagent.db")},
        "digest": {"output_dir": str(tmp_path / "digests"), "email_to": "me+digest@example.com"},
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "username": "me@example.com",
                 "password_env": "SYNCAGENT_TEST_SMTP_PASSWORD", "timeout": 10, **smtp},
    }
    return config_mod.parse(data, tmp_path / "config.toml")


def test_digest_is_mailed_once_with_text_and_html(tmp_path, smtp_server, monkeypatch):
    """--send delivers one message with text and HTML parts, right headers, and no password inside."""
    controller, inbox = smtp_server
    monkeypatch.setenv("SYNCAGENT_TEST_SMTP_PASSWORD", PASSWORD)
    config = _config(tmp_path, controller.port, from_address="syncagent@example.com")
    db = open_db(config.database)
    scenario.build(db, config=config)
    result = digest.build(db, config, now=scenario.NOW, send=True)
    assert result.sent_to == "me+digest@example.com"
    assert len(inbox.envelopes) == 1
    envelope = inbox.envelopes[0]
    assert envelope.mail_from == "syncagent@example.com"
    assert envelope.rcpt_tos == ["me+digest@example.com"]
    raw = envelope.original_content
    assert PASSWORD.encode() not in raw
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["From"] == "syncagent@example.com" and msg["To"] == "me+digest@example.com"
    assert msg["Subject"] == "syncagent digest 2026-W48: 3 owed, 2 replies, 2 sent"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Alice Able (Acme)" in text and text.startswith("# Your networking week 2026-W48")
    assert "<svg" in html and "Alice Able (Acme)" in html
    row = db.execute("SELECT sent_to, sent_at FROM digests WHERE week = '2026-W48'").fetchone()
    assert row[0] == "me+digest@example.com" and row[1]


def test_from_defaults_to_the_username(tmp_path, smtp_server, monkeypatch):
    """Without from_address the message comes from the SMTP username; text-only mail is one part."""
    controller, inbox = smtp_server
    monkeypatch.setenv("SYNCAGENT_TEST_SMTP_PASSWORD", PASSWORD)
    mailer.send(_config(tmp_path, controller.port), "Hello", "Just text.")
    msg = email.message_from_bytes(inbox.envelopes[0].original_content, policy=policy.default)
    assert msg["From"] == "me@example.com" and msg.get_content_type() == "text/plain"


def test_refused_login_is_one_sentence(tmp_path, smtp_server, monkeypatch):
    """A wrong password is an AuthError naming the server and the fix, without the password."""
    controller, inbox = smtp_server
    monkeypatch.setenv("SYNCAGENT_TEST_SMTP_PASSWORD", "wrong-password")
    with pytest.raises(AuthError) as err:
        mailer.send(_config(tmp_path, controller.port), "Hello", "text")
    text = str(err.value)
    assert text.startswith(f"The SMTP server 127.0.0.1:{controller.port} refused the login for me@example.com")
    assert "wrong-password" not in text and text.endswith("check [smtp] username and its password source.")
    assert inbox.envelopes == []


def test_unreachable_server_is_one_sentence(tmp_path, monkeypatch):
    """Nothing listening on the port becomes 'Cannot reach the SMTP server ...'."""
    monkeypatch.setenv("SYNCAGENT_TEST_SMTP_PASSWORD", PASSWORD)
    port = _free_port()
    with pytest.raises(SyncagentError, match=rf"^Cannot reach the SMTP server 127.0.0.1:{port} .*check \[smtp\] host and port"):
        mailer.send(_config(tmp_path, port), "Hello", "text")


def _self_signed(tmp_path):
    pytest.importorskip("cryptography", reason="cryptography (a transitive dependency) makes the test certificate")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


def test_starttls_verifies_certificates_unless_told_not_to(tmp_path, monkeypatch):
    """STARTTLS to a self-signed server fails with a sentence; tls_verify = false delivers."""
    monkeypatch.setenv("SYNCAGENT_TEST_SMTP_PASSWORD", PASSWORD)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), authenticator=_authenticator,
                            tls_context=_self_signed(tmp_path), require_starttls=True, auth_required=True)
    controller.start()
    try:
        with pytest.raises(SyncagentError, match="TLS handshake .* failed .*tls_verify = false"):
            mailer.send(_config(tmp_path, controller.port, security="starttls"), "Hello", "text")
        mailer.send(_config(tmp_path, controller.port, security="starttls", tls_verify=False), "Hello", "text")
    finally:
        controller.stop()
    assert len(inbox.envelopes) == 1


@pytest.mark.dovecot
def test_digest_stored_in_an_imap_folder_only_when_configured(tmp_path, mailbox, monkeypatch):
    """With imap_folder set, run_weekly APPENDs one read message there (creating the folder) and nothing else."""
    monkeypatch.setenv("SYNCAGENT_TEST_IMAP_PW", mailbox.password)
    account = {"name": "box", "kind": "imap", "host": "127.0.0.1", "port": mailbox.server.port, "security": "none",
               "username": mailbox.user, "password_env": "SYNCAGENT_TEST_IMAP_PW", "addresses": ["me@example.com"],
               "timeout": 10}
    data = {"timezone": "America/New_York", "database": {"path": str(tmp_path / "syncagent.db")},
            "accounts": [account],
            "digest": {"output_dir": str(tmp_path / "digests"), "imap_folder": "Digests", "imap_account": "box"}}
    config = config_mod.parse(data, tmp_path / "config.toml")
    db = open_db(config.database)
    scenario.build(db, config=config)
    inbox_before = mailbox.flags("INBOX")
    result = digest.run_weekly(db, config, dt.datetime(2026, 11, 30, 13, tzinfo=dt.timezone.utc))
    assert result.sent_to == "imap:box:Digests"
    assert mailbox.flags("INBOX") == inbox_before
    with mailbox.client() as c:
        c.select_folder("Digests", readonly=True)
        uids = c.search(["ALL"])
        assert len(uids) == 1
        fetched = c.fetch(uids, ["FLAGS", "BODY.PEEK[]"])[uids[0]]
    assert rb"\Seen" in fetched[b"FLAGS"]
    msg = email.message_from_bytes(fetched[b"BODY[]"], policy=policy.default)
    assert msg["Subject"].startswith("syncagent digest 2026-W48:")
    assert msg.get_body(("html",)) is not None and PASSWORD.encode() not in fetched[b"BODY[]"]
    assert mailbox.password.encode() not in fetched[b"BODY[]"]


def test_no_delivery_target_is_one_sentence(tmp_path):
    """--send with neither email_to nor imap_folder says which keys to set."""
    config = scenario.make_config(tmp_path)
    db = open_db(config.database)
    with pytest.raises(SyncagentError, match="set email_to .* or imap_folder under \\[digest\\]"):
        digest.build(db, config, now=scenario.NOW, send=True)
