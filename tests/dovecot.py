"""A private Dovecot 2.3 IMAP server for tests, on 127.0.0.1.

Why: promise 1 (read-only) and promise 3 (constant cost of a no-change sync)
are only worth something when proven against a real server, so the IMAP
tests talk to a real Dovecot (Debian package ``dovecot-imapd``) instead of a
mock.

What it starts: ``/usr/sbin/dovecot -F -c <tmp>/dovecot.conf`` with its own
base_dir, state_dir and log in a temp dir, IMAP only, plaintext login allowed
(``ssl = no``, ``disable_plaintext_auth = no``), a static passdb (any user name,
one password: a new name is a fresh mailbox) behind a passwd-file for users
given their own password (``new_user(password="pässwörd")``, stored as UTF-8),
maildir storage and a SPECIAL-USE ``Sent`` folder. Dovecot refuses to run mail
processes as root, so when the tests run as root the mailboxes belong to
``nobody``; otherwise everything runs as the current user.

Fixtures (``tests/conftest.py``): ``dovecot_server`` (one per session),
``dovecot`` (that server, running, its command log cleared) and ``mailbox``
(a fresh user on it: any user name logs in with ``PASSWORD``)::

    def test_x(mailbox):                 # a fresh user on the shared server
        mailbox.append("INBOX", raw_bytes, flags=(br"\\Seen",))
        mailbox.server.port              # where syncagent should connect
        mailbox.server.commands          # IMAP commands syncagent issued
        mailbox.flags("INBOX")           # {uid: flags} read back
        mailbox.server.stop(); mailbox.server.start()   # same port, same data

``server.port`` is a small counting proxy in front of Dovecot: every command a
client sends through it is recorded in ``server.commands`` (tag stripped,
e.g. ``"UID FETCH"``), so a test can count round trips and check that no
state-changing command (STORE, EXPUNGE, COPY, MOVE, APPEND) was ever sent;
``server.command_lines`` holds the same commands as whole first lines (tag
stripped, e.g. ``"UID FETCH 1,2 (BODY.PEEK[1]<0.1024>)"``) to check arguments.
The helpers (``append``, ``flags``...) connect to Dovecot directly and are not
counted.

``dovecot_tls`` is a second server made with ``Dovecot(tls=True)``: the same, plus
implicit TLS on ``tls_port`` (Dovecot itself, not proxied) with a self-signed
certificate for 127.0.0.1 (``cert``, ``key``; ``fingerprint(cert)`` gives its
SHA-256), and STARTTLS offered on the plain port.

When Dovecot is not installed the tests skip with a hint to
``apt-get install dovecot-imapd``; where ``CI=true`` they fail instead, so a
CI image without it cannot pass silently.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

DOVECOT = os.environ.get("SYNCAGENT_DOVECOT", "/usr/sbin/dovecot")
PASSWORD = "secret-pw"
INSTALL_HINT = "Dovecot is not installed; run `apt-get install dovecot-imapd` to run the IMAP tests."

FORBIDDEN = {"STORE", "UID STORE", "EXPUNGE", "UID EXPUNGE", "COPY", "UID COPY", "MOVE", "UID MOVE",
             "APPEND", "DELETE", "CREATE", "RENAME", "SELECT", "SUBSCRIBE", "UNSUBSCRIBE"}


def available() -> bool:
    return os.path.exists(DOVECOT) and os.access(DOVECOT, os.X_OK)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests log in with a wrong password on purpose: no delay, and no auth penalty
# (anvil's socket mode 0 disables it) slowing the next login from 127.0.0.1.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
mail_location = maildir:~/Maildir
mail_plugins =
first_valid_uid = 1
last_valid_uid = 0
first_valid_gid = 1
shutdown_clients = yes
{users}
# Users given their own password (UTF-8 bytes, compared as sent); Dovecot rereads the
# file when it changes. Anyone else falls through to the static passdb below.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users.passwd
}}
# Any user name logs in with the one test password: a fresh name is a fresh mailbox.
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
{login_extra}}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
}}
"""


class CountingProxy:
    """A TCP relay that records the IMAP commands clients send through it."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.commands: list[str] = []
        self.lines: list[str] = []  # the same commands, whole first line without the tag
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(32)
        self.port = self._sock.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()  # Dovecot is stopped: the client sees the connection drop
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src, dst, count: bool):
        parser = _CommandParser(self._record) if count else None
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if parser:
                    parser.feed(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    def _record(self, name: str, line: str = ""):
        with self._lock:
            self.commands.append(name)
            self.lines.append(line)

    def drop_connections(self):
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def close(self):
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.close()
        self.drop_connections()


class _CommandParser:
    """Splits a client byte stream into commands, skipping literals ``{n}``."""

    _literal = re.compile(rb"\{(\d+)\+?\}$")

    def __init__(self, record):
        self.record = record
        self.buf = b""
        self.skip = 0  # literal bytes still to pass over
        self.in_command = False  # inside a command continued by literals

    def feed(self, data: bytes):
        self.buf += data
        while True:
            if self.skip:
                n = min(self.skip, len(self.buf))
                self.buf, self.skip = self.buf[n:], self.skip - n
                if self.skip:
                    return
            idx = self.buf.find(b"\r\n")
            if idx < 0:
                return
            line, self.buf = self.buf[:idx], self.buf[idx + 2:]
            if not self.in_command:
                words = line.split(b" ")
                if len(words) >= 2 and words[0] not in (b"DONE", b""):
                    name = words[1].upper()
                    if name == b"UID" and len(words) >= 3:
                        name += b" " + words[2].upper()
                    rest = words[1:] if name != b"LOGIN" else words[1:3] + [b"***"]  # no password kept
                    self.record(name.decode("ascii", "replace"), b" ".join(rest).decode("ascii", "replace"))
            m = self._literal.search(line)
            if m:
                self.skip = int(m.group(1))
                self.in_command = True
            else:
                self.in_command = False


class _PortTaken(RuntimeError):
    """Dovecot could not listen: the port it was given was taken in the meantime."""


class Dovecot:
    """One private Dovecot; ``port`` is the counting proxy, ``direct_port`` Dovecot itself."""

    started = False

    def __init__(self, tls: bool = False):
        self.dir = Path(tempfile.mkdtemp(prefix="syncagent-dovecot-"))
        os.chmod(self.dir, 0o755)  # the mail user (nobody) must traverse to its home
        self.direct_port = free_port()
        # With tls=True Dovecot also listens with implicit TLS (a self-signed certificate for
        # 127.0.0.1) on tls_port and offers STARTTLS on the plain port, as real servers do.
        self.tls_port = free_port() if tls else 0
        self.cert = self.key = None
        ssl_conf = "ssl = no"
        if tls:
            self.cert, self.key = make_certificate(self.dir)
            ssl_conf = f"ssl = yes\nssl_cert = <{self.cert}\nssl_key = <{self.key}"
        self.proxy = CountingProxy(self.direct_port)
        self.port = self.proxy.port
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen | None = None
        self._users = itertools.count(1)
        root = os.geteuid() == 0
        if root:
            nobody = pwd.getpwnam("nobody")
            self.mail_uid, self.mail_gid = nobody.pw_uid, nobody.pw_gid
            users, login_extra = "", ""
        else:
            me = pwd.getpwuid(os.geteuid())
            self.mail_uid, self.mail_gid = me.pw_uid, me.pw_gid
            users = (f"default_internal_user = {me.pw_name}\ndefault_login_user = {me.pw_name}\n"
                     f"default_internal_group = {_group(me.pw_gid)}\n")
            login_extra = "  chroot =\n"
        (self.dir / "home").mkdir()
        (self.dir / "users.passwd").write_text("", encoding="utf-8")
        if root:
            os.chown(self.dir / "home", self.mail_uid, self.mail_gid)  # Dovecot creates homes as nobody
        (self.dir / "dovecot.conf").write_text(
            _CONF.format(d=self.dir, port=self.direct_port, tls_port=self.tls_port, ssl=ssl_conf, users=users, login_extra=login_extra,
                         password=PASSWORD, uid=self.mail_uid, gid=self.mail_gid))

    # --- lifecycle ---------------------------------------------------------
    def start(self):
        """Start (or restart) Dovecot on the same port with the same data."""
        for attempt in range(3):
            try:
                return self._start()
            except _PortTaken:
                if self.started or attempt == 2:
                    raise
                # free_port() only found a port free a moment ago: another process (a
                # parallel test run) took it first. Before the first start, move elsewhere.
                self._move_ports()

    def _move_ports(self):
        conf = self.dir / "dovecot.conf"
        text = conf.read_text()
        new_direct = free_port()
        text = text.replace(f"port = {self.direct_port}\n", f"port = {new_direct}\n")
        self.direct_port = self.proxy.target_port = new_direct
        if self.tls_port:
            new_tls = free_port()
            text = text.replace(f"port = {self.tls_port}\n", f"port = {new_tls}\n")
            self.tls_port = new_tls
        conf.write_text(text)

    def _start(self):
        if self.proc and self.proc.poll() is None:
            return
        log = open(self.dir / "stderr.log", "ab")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                if "Address already in use" in tail:
                    raise _PortTaken(tail)
                raise RuntimeError(f"Dovecot exited at start: {tail}")
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", self.direct_port), timeout=2) as s:
                    if s.recv(100).startswith(b"* OK"):
                        self.started = True
                        return
            time.sleep(0.05)  # polling for readiness, not waiting for a result
        raise RuntimeError(f"Dovecot did not answer within 20 s: {self.log_tail()}")

    def stop(self):
        """Stop Dovecot (its IMAP processes die too) and drop proxied connections."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proxy.drop_connections()

    def close(self):
        self.stop()
        self.proxy.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n: int = 20) -> str:
        text = ""
        for name in ("dovecot.log", "stderr.log"):
            with contextlib.suppress(OSError):
                text += (self.dir / name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-n:])

    # --- users -------------------------------------------------------------
    def new_user(self, password: str | None = None) -> Mailbox:
        """A fresh user with an empty mailbox (the static passdb takes any name).

        With ``password`` the user gets that password instead (any Unicode but ``:``
        and line breaks), written as UTF-8 to the passwd-file passdb.
        """
        user = f"user{next(self._users)}@example.test"
        if password is None:
            return Mailbox(self, user, PASSWORD)
        if ":" in password or "\n" in password:
            raise ValueError("a passwd-file password cannot hold ':' or a line break")
        with open(self.dir / "users.passwd", "a", encoding="utf-8") as f:
            f.write(f"{user}:{password}::::::\n")
        mailbox = Mailbox(self, user, password)
        # Dovecot looks at the file at most once a second: wait until it knows the user.
        deadline = time.monotonic() + 5
        while True:
            try:
                with mailbox.client():
                    return mailbox
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # polling for readiness, not waiting for a result

    # --- command counting ----------------------------------------------------
    @property
    def commands(self) -> list[str]:
        return list(self.proxy.commands)

    @property
    def command_lines(self) -> list[str]:
        return list(self.proxy.lines)

    def reset_commands(self):
        with self.proxy._lock:
            self.proxy.commands.clear()
            self.proxy.lines.clear()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command), as (cert, key) paths."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key


def fingerprint(cert: Path) -> str:
    """The certificate's SHA-256 fingerprint as the config writes it: "sha256:" and lowercase hex."""
    import hashlib
    import ssl

    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _group(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


class Mailbox:
    """One user's mailbox on the test server, with helpers acting as a real client."""

    def __init__(self, server: Dovecot, user: str, password: str):
        self.server, self.user, self.password = server, user, password

    @contextlib.contextmanager
    def client(self):
        """A logged-in imapclient talking to Dovecot directly (not counted)."""
        from imapclient import IMAPClient

        c = IMAPClient(self.server.host, port=self.server.direct_port, ssl=False, timeout=10)
        c.normalise_times = False
        if self.password.isascii():
            c.login(self.user, self.password)
        else:  # imaplib's LOGIN encodes as ASCII; AUTHENTICATE PLAIN sends UTF-8
            c.plain_login(self.user, self.password)
        try:
            yield c
        finally:
            with contextlib.suppress(Exception):
                c.logout()

    def append(self, folder: str, raw: bytes, flags=(), msg_time=None) -> int:
        """APPEND one message (creating the folder if needed); returns its UID."""
        with self.client() as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            resp = c.append(folder, raw, flags=flags, msg_time=msg_time)
        m = re.search(rb"APPENDUID \d+ (\d+)", resp if isinstance(resp, bytes) else str(resp).encode())
        return int(m.group(1)) if m else 0

    def append_many(self, folder: str, raws, flags=()) -> None:
        """APPEND many messages over one connection (fast bulk loading)."""
        with self.client() as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            for raw in raws:
                c.append(folder, raw, flags=flags)

    def flags(self, folder: str) -> dict[int, tuple]:
        """Every message's flags, read with EXAMINE so reading changes nothing."""
        with self.client() as c:
            c.select_folder(folder, readonly=True)
            uids = c.search(["ALL"])
            if not uids:
                return {}
            # \Recent is per-session state, not something a client can change: leave it out.
            return {uid: tuple(sorted(f for f in d[b"FLAGS"] if f != rb"\Recent"))
                    for uid, d in c.fetch(uids, ["FLAGS"]).items()}

    def status(self, folder: str) -> dict:
        with self.client() as c:
            return c.folder_status(folder, ["MESSAGES", "UIDNEXT", "UIDVALIDITY"])

    def delete_folder(self, folder: str) -> None:
        with self.client() as c:
            c.delete_folder(folder)

    def create_folder(self, folder: str) -> None:
        with self.client() as c:
            c.create_folder(folder)

    def expunge(self, folder: str, uids) -> None:
        """Delete messages for good, as another mail client would."""
        with self.client() as c:
            c.select_folder(folder)
            c.delete_messages(list(uids))
            c.expunge()


def make_message(n: int, *, sender="alice@example.org", to="user@example.test", subject=None,
                 message_id=None, date="Mon, 16 Nov 2026 10:00:00 +0000", extra: str = "") -> bytes:
    """A small plain-text message, numbered so each is distinct."""
    mid = message_id or f"<msg{n}@example.org>"
    return (
        f"From: Alice Example <{sender}>\r\nTo: {to}\r\nSubject: {subject or f'Message {n}'}\r\n"
        f"Date: {date}\r\nMessage-ID: {mid}\r\n{extra}MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nBody {n}\r\n"
    ).encode()
