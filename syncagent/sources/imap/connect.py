"""Connecting and logging in to an IMAP account, with every failure as one sentence.

Used by the IMAP source and by commands that only need to check an account
(``init``, ``doctor``). Connection failures that may pass (DNS, refused port,
timeout, a dropped connection) become ``TransientSourceError`` and the connect
step is retried with backoff; a refused login is an ``AuthError`` and a bad
certificate a ``SourceError``, which retrying cannot fix.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl

from syncagent.config import Account
from syncagent.errors import AuthError, SourceError, SyncagentError, TransientSourceError

log = logging.getLogger(__name__)

# Retrying the connect step (not the login): attempts and the longest wait in
# seconds. Tests set CONNECT_ATTEMPTS = 1 so failures answer at once.
CONNECT_ATTEMPTS = 3
CONNECT_WAIT_MAX = 30.0

# A plain connection waits this long for the server's greeting before asking
# whether the port wants TLS instead: a TLS port stays silent waiting for a
# ClientHello, which would otherwise cost the whole timeout on every attempt.
GREETING_WAIT = 3.0
PROBE_TIMEOUT = 1.5


class CertificateError(SourceError):
    """The server's certificate did not verify; ``init`` offers to pin it."""


def tls_context(account: Account) -> ssl.SSLContext:
    """A verifying context, unless the account pins a fingerprint (checked after the handshake) or says
    ``tls_verify = false``."""
    ctx = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH)
    if account.tls_fingerprint or not account.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(account: Account, *, attempts: int | None = None):
    """Return a logged-in ``IMAPClient`` (``normalise_times`` off), retrying the connect step."""
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

    retrying = Retrying(
        stop=stop_after_attempt(attempts or CONNECT_ATTEMPTS),
        wait=wait_exponential_jitter(initial=1, max=CONNECT_WAIT_MAX),
        retry=retry_if_exception_type(TransientSourceError),
        reraise=True,
        before_sleep=lambda rs: log.info("%s: %s; retrying", account.name, rs.outcome and rs.outcome.exception()),
    )
    client = retrying(open_connection, account)
    try:
        login(client, account)
    except BaseException:
        close(client)
        raise
    return client


def open_connection(account: Account):
    """Open the socket (TLS, STARTTLS or plain) and read the greeting; no login.

    ``security`` that does not match the port is told apart from a dead server
    within seconds: a plain connection to a TLS port gets no greeting but a TLS
    handshake there succeeds; a TLS handshake with a plain port fails because the
    server sent its ``* OK`` greeting instead.
    """
    try:
        if account.security == "tls":
            try:
                client = _client(account, account.timeout)
            except ssl.SSLError as exc:
                greeting = None if isinstance(exc, ssl.SSLCertVerificationError) else _plain_greeting(account)
                if greeting is not None:
                    raise SourceError(_speaks_plain(account, greeting)) from exc
                raise
        else:
            try:
                client = _client(account, min(account.timeout, GREETING_WAIT))
            except TimeoutError as exc:
                if _speaks_tls(account):
                    raise SourceError(_speaks_tls_sentence(account)) from exc
                if account.timeout <= GREETING_WAIT:
                    raise
                client = _client(account, account.timeout)  # only slow: wait the full timeout
        client.normalise_times = False  # keep INTERNALDATE timezone-aware
        try:
            if account.security == "starttls":
                client.starttls(tls_context(account))
            if account.tls_fingerprint:
                check_pin(client.socket(), account)  # before any password is sent
        except BaseException:
            close(client)
            raise
    except SyncagentError:
        raise
    except Exception as exc:
        raise translate(exc, account, "connect") from exc
    return client


def fingerprint_of(der: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(der).hexdigest()


def check_pin(sock, account: Account) -> None:
    """Refuse a certificate other than the one pinned in ``tls_fingerprint``."""
    der = sock.getpeercert(binary_form=True) if hasattr(sock, "getpeercert") else None
    seen = fingerprint_of(der) if der else "none"
    if seen != account.tls_fingerprint:
        raise SourceError(
            f"The TLS certificate of {account.host} has the fingerprint {seen}, not the {account.tls_fingerprint} "
            f"pinned in `tls_fingerprint` of account {account.name!r}, so nothing was sent; if the server's "
            "administrator confirms a new certificate, put its fingerprint there (`syncagent init` shows it).")


def peer_fingerprint(account: Account) -> str | None:
    """The SHA-256 fingerprint of the certificate the server presents (not verified), or None if unreachable."""
    import dataclasses

    unverified = dataclasses.replace(account, tls_verify=False, tls_fingerprint=None)
    try:
        client = _client(unverified, account.timeout)
        try:
            if account.security == "starttls":
                client.starttls(tls_context(unverified))
            der = client.socket().getpeercert(binary_form=True)
        finally:
            close(client)
    except Exception:
        return None
    return fingerprint_of(der) if der else None


def _client(account: Account, greeting_timeout: float):
    from imapclient import IMAPClient, SocketTimeout

    tls = account.security == "tls"
    return IMAPClient(account.host, port=account.port, ssl=tls,
                      ssl_context=tls_context(account) if tls else None,
                      timeout=SocketTimeout(connect=greeting_timeout, read=account.timeout))


def _speaks_tls(account: Account) -> bool:
    """Whether the port completes a TLS handshake (certificate not checked: only a ClientHello is sent)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((account.host, account.port), timeout=min(account.timeout, PROBE_TIMEOUT)) as raw:
            with ctx.wrap_socket(raw, server_hostname=account.host):
                return True
    except (OSError, ssl.SSLError):
        return False


def _plain_greeting(account: Account) -> bytes | None:
    """The server's plaintext IMAP greeting line on a fresh connection, or None when it sends none."""
    try:
        with socket.create_connection((account.host, account.port), timeout=min(account.timeout, PROBE_TIMEOUT)) as raw:
            data = b""
            while b"\n" not in data and len(data) < 4096:
                chunk = raw.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    return data if data.startswith((b"* OK", b"* PREAUTH", b"* BYE")) else None


def _pairing(account: Account) -> str:
    return {993: 'port 993 goes with security = "tls"', 143: 'port 143 goes with security = "starttls"'}.get(
        account.port or 0, 'port 993 usually goes with security = "tls", port 143 with "starttls"')


def _speaks_tls_sentence(account: Account) -> str:
    return (f"{account.host}:{account.port} expects TLS from the first byte (it sent no IMAP greeting but "
            f"answered a TLS handshake), so security = \"{account.security}\" cannot work there; set "
            f"security = \"tls\" for account {account.name!r} ({_pairing(account)}).")


def _speaks_plain(account: Account, greeting: bytes) -> str:
    if b"STARTTLS" in greeting.upper():
        fix = f"set security = \"starttls\" ({_pairing(account)})"
    else:
        fix = ("it offers no STARTTLS, so use the server's TLS port with security = \"tls\", or security = "
               "\"none\" (unencrypted) only on a network you trust")
    return (f"{account.host}:{account.port} speaks plain IMAP, not TLS (it sent an IMAP greeting where a TLS "
            f"handshake was expected); for account {account.name!r} {fix}.")


def login(client, account: Account) -> None:
    """Log in with the password (or an OAuth2 token for ``auth = "oauth2"``).

    Nothing raised here may carry the secret into an error text or a log:
    exceptions are replaced ``from None`` (their chain would quote it) and
    their text is kept only for network failures, which cannot hold it.
    """
    from imapclient.exceptions import IMAPClientAbortError, LoginError

    try:
        if account.auth == "oauth2" and account.provider == "microsoft":
            from syncagent.sources.imap import microsoft

            client.oauth2_login(account.username, microsoft.access_token(account))
        elif account.auth == "oauth2":
            from syncagent.sources.gmail import auth as gmail_auth  # written for Gmail; imported only when used

            client.oauth2_login(account.username, gmail_auth.access_token(account))
        else:
            from syncagent import secrets

            assert account.secret is not None  # config requires a password source for auth = "password"
            password_login(client, account, secrets.resolve(account.secret))
    except LoginError:
        raise AuthError(
            f"The server {account.host} rejected the login for {account.username}; check the username "
            "and password (for Gmail and others, an app password)."
        ) from None
    except SyncagentError:
        raise
    except (OSError, EOFError, IMAPClientAbortError) as exc:
        raise translate(exc, account, "login") from None
    except Exception as exc:
        raise SourceError(
            f"The login to {account.host}:{account.port} for account {account.name!r} failed with "
            f"{exc.__class__.__name__} (its text is withheld because it may quote the password); report it "
            "if it persists."
        ) from None


def password_login(client, account: Account, password: str) -> None:
    """LOGIN for ASCII credentials, AUTHENTICATE PLAIN (RFC 4616, UTF-8) for any others.

    imaplib sends command arguments as ASCII, so LOGIN cannot carry a password
    such as "Grüße"; SASL PLAIN is base64 of UTF-8 and can. The password goes
    as written (no normalisation): servers compare the bytes they stored.
    """
    assert account.username is not None  # required for IMAP accounts by config
    if password.isascii() and account.username.isascii():
        client.login(account.username, password)
        return
    if b"AUTH=PLAIN" not in set(client.capabilities()):
        if password.isascii():
            what, fix = "username", "set `username` to the ASCII form of the login name if the provider has one"
        else:
            what, fix = "password", "use an app password (or change the password) made of ASCII characters only"
        raise AuthError(
            f"The {what} of account {account.name!r} has characters outside ASCII, which {account.host} can "
            f"only receive through AUTHENTICATE PLAIN, and it does not offer it; {fix}."
        )
    client.plain_login(account.username, password)


def close(client) -> None:
    """Log out politely; on a dead connection just drop the socket."""
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception:
            pass


def translate(exc: BaseException, account: Account, stage: str = "sync") -> SyncagentError:
    """Turn a socket, TLS or IMAP exception into one sentence the user can act on."""
    from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, ProtocolError

    where = f"{account.host}:{account.port}"
    name = account.name
    if isinstance(exc, socket.gaierror):
        return TransientSourceError(
            f"The IMAP server {account.host} of account {name!r} cannot be found (the name does not resolve); "
            "check `host` in the config and your network connection."
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "verification failed"
        return CertificateError(
            f"The TLS certificate of {account.host} could not be verified ({reason}); if you trust this server, "
            f"pin its certificate with `tls_fingerprint = \"sha256:...\"` in the [[accounts]] entry named {name!r} "
            "(`syncagent init` shows the fingerprint to compare), or as a last resort set `tls_verify = false` there."
        )
    if isinstance(exc, ssl.SSLError):
        return SourceError(
            f"The TLS handshake with {where} failed ({exc.reason or exc}); check `security` for account {name!r} "
            "(\"tls\" for port 993, \"starttls\" for port 143)."
        )
    if isinstance(exc, ConnectionRefusedError):
        return TransientSourceError(
            f"Nothing accepts connections at {where} for account {name!r}; check `host`, `port` and `security` "
            "(993 with tls, 143 with starttls) and that the server is up."
        )
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TransientSourceError(
            f"{where} did not answer within {account.timeout:g} s; check your network, or raise `timeout` for "
            f"account {name!r}."
        )
    if stage == "connect" and isinstance(exc, (OSError, IMAPClientAbortError, EOFError)):
        return TransientSourceError(
            f"The connection to {where} for account {name!r} failed ({_reason(exc)}); check your network "
            "and that the server is up."
        )
    if isinstance(exc, (OSError, IMAPClientAbortError, EOFError)):
        return TransientSourceError(
            f"The connection to {where} dropped during the {stage} ({_reason(exc)}); what was saved so far is "
            "kept and the next sync continues from there."
        )
    if stage == "connect" and isinstance(exc, IMAPClientError) and "STARTTLS" in str(exc).upper():
        return SourceError(
            f"{where} does not offer STARTTLS; set `security = \"tls\"` (port 993) for account {name!r}."
        )
    if isinstance(exc, (ProtocolError, ValueError)):
        return TransientSourceError(
            f"The IMAP server {account.host} sent an answer that is not valid IMAP during the {stage}; what was "
            "saved so far is kept and the next sync tries again (run with -vv to see the answer)."
        )
    if isinstance(exc, IMAPClientError):
        return SourceError(
            f"The IMAP server {account.host} refused a command during the {stage} ({_reason(exc)}); run again "
            "with -vv for details and report it if it persists."
        )
    return SourceError(
        f"Unexpected {exc.__class__.__name__} talking to {where} during the {stage} ({_reason(exc)}); run "
        "again with -vv for details."
    )


_RESPONSE_CODE = re.compile(r"\[([A-Z][A-Z0-9-]{1,30})[\] ]")  # RFC 5530 codes such as [UNAVAILABLE]


def _reason(exc: BaseException) -> str:
    """What went wrong, in syncagent's words. The exception's own text quotes what the server sent
    (a truncated line holds fragments of mail headers), so that goes to the -vv debug log only."""
    import imaplib

    text = str(exc)
    log.debug("%s from the server: %s", exc.__class__.__name__, text[:2000])
    low = text.lower()
    if isinstance(exc, imaplib.IMAP4.abort):
        if "unterminated line" in low:
            return "the server's answer was cut off in the middle of a line"
        if "eof" in low:
            return "the server closed the connection"
        if "socket error" in low:
            return "a network error"
        if "unexpected" in low:
            return "the server sent an answer that is not valid IMAP"
        return "the server ended the session"
    if isinstance(exc, imaplib.IMAP4.error):
        if "got more than" in low:
            return "the server sent an over-long line"
        status = re.search(r"command error: (NO|BAD)\b", text)
        code = _RESPONSE_CODE.search(text)
        answer = status.group(1) if status else "an error"
        return f"the server answered {answer}" + (f" [{code.group(1)}]" if code else "")
    if isinstance(exc, EOFError):
        return "the server closed the connection"
    if isinstance(exc, OSError):
        return (exc.strerror or exc.__class__.__name__).rstrip(".")  # the system's words, not the server's
    return exc.__class__.__name__
