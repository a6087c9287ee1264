"""Known mail providers: IMAP settings from the domain of an address.

Used by ``syncagent init`` to fill in host, port and security, and to say what
each provider needs (an app password, the Bridge, the Gmail API). There is no
network lookup (no MX or autoconfig): this table is the whole knowledge, and
anything else is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    name: str
    host: str
    port: int = 993
    security: str = "tls"
    note: str | None = None  # what the user needs to know to log in
    gmail_api: bool = False  # the Gmail API is also possible (and recommended)


_APP_PASSWORD = "{name} needs an app password for IMAP (made in its account security settings), not your usual password."

PROVIDERS: dict[str, Provider] = {}


def _add(domains: str, provider: Provider) -> None:
    for d in domains.split():
        PROVIDERS[d] = provider


_add("gmail.com googlemail.com", Provider(
    "Gmail", "imap.gmail.com", note=(
        "Gmail over IMAP needs an app password (Google account > Security > 2-Step Verification > App passwords); "
        "the Gmail API is the alternative: kind = \"gmail\" then `syncagent auth gmail NAME` (read-only scope)."),
    gmail_api=True))
_add("outlook.com hotmail.com live.com msn.com outlook.de hotmail.co.uk hotmail.fr office365.com", Provider(
    "Outlook.com / Microsoft 365", "outlook.office365.com", note=(
        "Outlook.com and Microsoft 365 no longer accept passwords over IMAP: after init, set auth = \"oauth2\" and "
        "client_id in the account and run `syncagent auth microsoft NAME` (see the README).")))
_add("yahoo.com yahoo.co.uk yahoo.fr yahoo.de ymail.com rocketmail.com", Provider(
    "Yahoo Mail", "imap.mail.yahoo.com", note=_APP_PASSWORD.format(name="Yahoo Mail")))
_add("aol.com aim.com", Provider("AOL Mail", "imap.aol.com", note=_APP_PASSWORD.format(name="AOL Mail")))
_add("icloud.com me.com mac.com", Provider(
    "iCloud Mail", "imap.mail.me.com", note=(
        "iCloud needs an app-specific password (appleid.apple.com > Sign-In and Security); the username is your "
        "address.")))
_add("fastmail.com fastmail.fm fastmail.net messagingengine.com", Provider(
    "Fastmail", "imap.fastmail.com", note=_APP_PASSWORD.format(name="Fastmail")))
_add("gmx.com gmx.net gmx.de gmx.at gmx.ch", Provider(
    "GMX", "imap.gmx.net", note="GMX needs IMAP access switched on in its web settings (POP3 & IMAP)."))
_add("web.de", Provider("WEB.DE", "imap.web.de", note="WEB.DE needs IMAP access switched on in its web settings."))
_add("zoho.com zohomail.com", Provider(
    "Zoho Mail", "imap.zoho.com", note="Zoho needs IMAP enabled in its settings, and an app password with 2FA."))
_add("zoho.eu", Provider("Zoho Mail (EU)", "imap.zoho.eu",
                         note="Zoho needs IMAP enabled in its settings, and an app password with 2FA."))
_add("proton.me protonmail.com protonmail.ch pm.me", Provider(
    "Proton Mail (via Proton Mail Bridge)", "127.0.0.1", 1143, "starttls", note=(
        "Proton Mail is read through Proton Mail Bridge running on this machine; use the username and password "
        "the Bridge shows (not your Proton password), and trust its self-signed certificate by its fingerprint when init shows it.")))
_add("posteo.de posteo.net posteo.org posteo.eu", Provider("Posteo", "posteo.de"))
_add("mailbox.org", Provider("mailbox.org", "imap.mailbox.org"))
_add("yandex.com yandex.ru ya.ru", Provider(
    "Yandex Mail", "imap.yandex.com", note=_APP_PASSWORD.format(name="Yandex Mail")))
_add("mail.com email.com", Provider("mail.com", "imap.mail.com",
                                    note="mail.com needs IMAP access switched on in its web settings."))
_add("hey.com", Provider("HEY", "", note="HEY does not offer IMAP; syncagent cannot read it."))
_add("tutanota.com tuta.io tutanota.de", Provider(
    "Tuta", "", note="Tuta does not offer IMAP; syncagent cannot read it."))


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower() if "@" in address else ""


def lookup(address: str) -> Provider | None:
    """The provider of an address (or of a bare domain), or None when unknown."""
    domain = domain_of(address) if "@" in address else address.strip().lower()
    if domain in PROVIDERS:
        return PROVIDERS[domain]
    # Regional and company subdomains, e.g. "yahoo.co.jp" is not listed but "mail.fastmail.com" would be.
    parts = domain.split(".")
    for i in range(1, len(parts) - 1):
        parent = ".".join(parts[i:])
        if parent in PROVIDERS:
            return PROVIDERS[parent]
    return None


def guess_host(address: str) -> str | None:
    """For an unknown domain, the usual guess ``imap.<domain>`` (shown as a default, never trusted)."""
    domain = domain_of(address)
    return f"imap.{domain}" if domain else None
