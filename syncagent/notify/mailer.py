"""Sending mail (the digest) over SMTP: TLS, STARTTLS or plain, certificates verified.

The password comes from ``syncagent.secrets`` and goes only to the server's AUTH;
every failure becomes one SyncagentError sentence.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from syncagent.errors import AuthError, ConfigError, SyncagentError

log = logging.getLogger(__name__)


def build_message(config, subject: str, text: str, html: str | None = None, to: str | None = None,
                  sender: str | None = None) -> EmailMessage:
    """The message: text/plain, with a text/html alternative when ``html`` is given."""
    if sender is None:
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
        client: smtplib.SMTP
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
    except TimeoutError:
        raise SyncagentError(f"The SMTP server {where} did not answer within {smtp.timeout:g} s; check [smtp] host and port, and your network.") from None
    except OSError as exc:
        raise SyncagentError(f"Cannot reach the SMTP server {where} ({exc.strerror or exc}); check [smtp] host and port, and your network.") from None
    log.info("mailed %r to %s via %s", subject, msg["To"], where)


def append_to_imap(config, subject: str, text: str, html: str | None = None) -> str:
    """Store the message in ``digest.imap_folder`` of ``digest.imap_account``, marked read.

    The one write syncagent ever makes to a mailbox, and only when that key is set:
    one APPEND (and a CREATE when the folder is missing). Returns "account:folder".
    """
    from datetime import datetime, timezone

    from syncagent.sources.imap import connect as imap_connect

    folder = config.digest.imap_folder
    if not folder:
        raise ConfigError(f"{config.path}: [digest] imap_folder is not set; set it to store the digest in a mailbox folder.")
    account = _imap_account(config)
    own = account.addresses[0] if account.addresses else account.username
    msg = build_message(config, subject, text, html=html, to=config.digest.email_to or own,
                        sender=(config.smtp.from_address or config.smtp.username) if config.smtp else own)
    client = imap_connect.connect(account)
    try:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        client.append(folder, msg.as_bytes(), flags=(br"\Seen",), msg_time=datetime.now(timezone.utc))
    except SyncagentError:
        raise
    except Exception as exc:
        from imapclient.exceptions import IMAPClientError

        if isinstance(exc, IMAPClientError) and not isinstance(exc, OSError):
            raise SyncagentError(
                f"The IMAP server {account.host} refused to store the digest in {folder!r} ({str(exc).strip().rstrip('.')}); "
                "check [digest] imap_folder."
            ) from None
        raise imap_connect.translate(exc, account, "digest upload") from None
    finally:
        imap_connect.close(client)
    log.info("stored %r in %s:%s", subject, account.name, folder)
    return f"{account.name}:{folder}"


def _imap_account(config):
    name = config.digest.imap_account
    if name:
        account = config.account(name)
    else:
        imap = [a for a in config.accounts if a.kind == "imap"]
        if not imap:
            raise ConfigError(f"{config.path}: [digest] imap_folder is set but there is no IMAP account; set imap_account to an [[accounts]] entry with kind = \"imap\".")
        account = imap[0]
    if account.kind != "imap":
        raise ConfigError(f"{config.path}: [digest] imap_account {account.name!r} is a {account.kind} account; name an account with kind = \"imap\".")
    return account


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
