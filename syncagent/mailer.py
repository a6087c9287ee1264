"""Sending mail (the digest) over SMTP: TLS, STARTTLS or plain, certificates verified.

The password comes from ``syncagent.secrets`` and goes only to the server's AUTH;
every failure becomes one SyncagentError sentence.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from syncagent.errors import AuthError, ConfigError, SyncagentError

log = logging.getLogger(__name__)


def build_message(config, subject: str, text: str, html: str | None = None, to: str | None = None) -> EmailMessage:
    """The message: text/plain, with a text/html alternative when ``html`` is given."""
    smtp = _smtp(config)
    sender = smtp.from_address or smtp.username
    if not sender:
        raise ConfigError(f"{config.path}: [smtp] has neither from_address nor username; set from_address = \"you@example.com\".")
    recipient = to or config.digest.email_to
    if not recipient:
        raise ConfigError(f"{config.path}: there is no recipient; set email_to under [digest].")
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = recipient
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"  # so our own sync counts it as automatic
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def send(config, subject: str, text: str, html: str | None = None, to: str | None = None) -> None:
    """Deliver one message through ``[smtp]``; raise a one-sentence SyncagentError on failure."""
    smtp = _smtp(config)
    msg = build_message(config, subject, text, html=html, to=to)
    context = ssl.create_default_context()
    if not smtp.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    where = f"{smtp.host}:{smtp.port}"
    try:
        if smtp.security == "tls":
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=context)
            if smtp.username:
                from syncagent import secrets

                if smtp.secret is None or not smtp.secret.configured:
                    raise ConfigError(f"{config.path}: [smtp] has a username but no password source; set password_command, password_env or keyring = true.")
                client.login(smtp.username, secrets.resolve(smtp.secret))
            client.send_message(msg)
    except smtplib.SMTPAuthenticationError:
        raise AuthError(f"The SMTP server {where} refused the login for {smtp.username}; check [smtp] username and its password source.") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise SyncagentError(f"The SMTP server {where} does not support that ({_reason(exc)}); try another [smtp] security setting.") from None
    except smtplib.SMTPRecipientsRefused:
        raise SyncagentError(f"The SMTP server {where} refused the recipient {msg['To']}; check digest.email_to.") from None
    except smtplib.SMTPException as exc:
        raise SyncagentError(f"The SMTP server {where} did not accept the message ({_reason(exc)}); check [smtp] and try again.") from None
    except ssl.SSLError as exc:
        raise SyncagentError(f"The TLS handshake with {where} failed ({exc.reason or exc}); check [smtp] security and port, or set tls_verify = false for a self-signed server you trust.") from None
    except (socket.timeout, TimeoutError):
        raise SyncagentError(f"The SMTP server {where} did not answer within {smtp.timeout:g} s; check [smtp] host and port, and your network.") from None
    except OSError as exc:
        raise SyncagentError(f"Cannot reach the SMTP server {where} ({exc.strerror or exc}); check [smtp] host and port, and your network.") from None
    log.info("mailed %r to %s via %s", subject, msg["To"], where)


def _smtp(config):
    if config.smtp is None:
        raise ConfigError(f"{config.path}: there is no [smtp] table; add one with host, port, security and a password source to send mail.")
    return config.smtp


def _reason(exc: smtplib.SMTPException) -> str:
    code = getattr(exc, "smtp_code", None)
    error = getattr(exc, "smtp_error", b"")
    if isinstance(error, bytes):
        error = error.decode("utf-8", "replace")
    text = f"{code} {error}".strip() if code else str(exc)
    return text.rstrip(".") or exc.__class__.__name__
