"""The provider table used by `syncagent init`."""

from __future__ import annotations

import pytest

from syncagent.setup import providers


@pytest.mark.parametrize("address,host,port,security", [
    ("me@gmail.com", "imap.gmail.com", 993, "tls"),
    ("me@googlemail.com", "imap.gmail.com", 993, "tls"),
    ("me@outlook.com", "outlook.office365.com", 993, "tls"),
    ("me@hotmail.com", "outlook.office365.com", 993, "tls"),
    ("me@live.com", "outlook.office365.com", 993, "tls"),
    ("me@yahoo.com", "imap.mail.yahoo.com", 993, "tls"),
    ("me@icloud.com", "imap.mail.me.com", 993, "tls"),
    ("me@me.com", "imap.mail.me.com", 993, "tls"),
    ("me@mac.com", "imap.mail.me.com", 993, "tls"),
    ("me@fastmail.com", "imap.fastmail.com", 993, "tls"),
    ("me@fastmail.fm", "imap.fastmail.com", 993, "tls"),
    ("me@gmx.de", "imap.gmx.net", 993, "tls"),
    ("me@zoho.com", "imap.zoho.com", 993, "tls"),
    ("me@proton.me", "127.0.0.1", 1143, "starttls"),
    ("me@protonmail.com", "127.0.0.1", 1143, "starttls"),
    ("me@posteo.de", "posteo.de", 993, "tls"),
    ("me@mailbox.org", "imap.mailbox.org", 993, "tls"),
    ("me@aol.com", "imap.aol.com", 993, "tls"),
    ("Me@GMail.COM", "imap.gmail.com", 993, "tls"),
])
def test_known_domains(address, host, port, security):
    """Each known domain maps to its IMAP server, port and security, case-insensitively."""
    p = providers.lookup(address)
    assert (p.host, p.port, p.security) == (host, port, security)


def test_gmail_suggests_the_api_and_others_do_not():
    """Only Gmail is flagged for the Gmail API, and its note says how to use it."""
    gmail = providers.lookup("me@gmail.com")
    assert gmail.gmail_api and "syncagent auth gmail" in gmail.note
    assert not providers.lookup("me@fastmail.com").gmail_api


def test_unknown_domain_gives_a_guess_only():
    """An unknown domain is not in the table; the suggested default is imap.<domain>."""
    assert providers.lookup("me@example.com") is None
    assert providers.guess_host("me@example.com") == "imap.example.com"
    assert providers.lookup("not-an-address") is None


def test_services_without_imap_have_no_host():
    """Providers without IMAP are known so init can say so instead of guessing a server."""
    hey = providers.lookup("me@hey.com")
    assert hey.host == "" and "does not offer IMAP" in hey.note
