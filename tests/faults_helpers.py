"""Helpers for the fault, hostile-input and security tests: configs, dumps, misbehaving servers."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
from pathlib import Path

ME = "me@example.test"
PW_ENV = "SYNCAGENT_FAULTS_PW"


def imap_config(tmp_path: Path, port: int, user: str, *, batch_size: int = 500, timeout: float = 10,
                db: Path | None = None, extra: str = "", top: str = "") -> Path:
    """A config file for one IMAP account on 127.0.0.1 (password from $SYNCAGENT_FAULTS_PW)."""
    db = db or tmp_path / "db.sqlite"
    path = tmp_path / "config.toml"
    path.write_text(
        f'{top}[database]\npath = "{db}"\n[digest]\noutput_dir = "{tmp_path / "digests"}"\n\n'
        f'[[accounts]]\nname = "work"\nkind = "imap"\nhost = "127.0.0.1"\nport = {port}\n'
        f'security = "none"\nusername = "{user}"\npassword_env = "{PW_ENV}"\naddresses = ["{ME}"]\n'
        f'timeout = {timeout}\nbatch_size = {batch_size}\n{extra}')
    return path


def maildir_config(tmp_path: Path, maildir: Path, *, db: Path | None = None) -> Path:
    db = db or tmp_path / "db.sqlite"
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\npath = "{db}"\n[digest]\noutput_dir = "{tmp_path / "digests"}"\n\n'
                    f'[[accounts]]\nname = "local"\nkind = "maildir"\npath = "{maildir}"\n'
                    f'addresses = ["{ME}"]\n')
    return path


def dump(path_or_conn) -> tuple:
    """The synced content without ids and timestamps, for comparing two databases."""
    conn = sqlite3.connect(path_or_conn) if isinstance(path_or_conn, (str, Path)) else path_or_conn
    try:
        messages = sorted(conn.execute(
            "SELECT account, message_id, date, date_source, from_address, from_name, subject, direction, automatic,"
            " in_reply_to, refs, list_id, size, has_calendar, gone FROM messages").fetchall(), key=repr)
        addresses = sorted(conn.execute(
            "SELECT m.message_id, a.role, a.address, a.name FROM message_addresses a "
            "JOIN messages m ON m.id = a.message").fetchall(), key=repr)
        folders = sorted(conn.execute(
            "SELECT f.account, f.folder, f.location, f.uid, f.uidvalidity, f.gone, m.message_id "
            "FROM message_folders f JOIN messages m ON m.id = f.message").fetchall(), key=repr)
        return messages, addresses, folders
    finally:
        if conn is not path_or_conn:
            conn.close()


def count(path: Path, sql: str = "SELECT COUNT(*) FROM messages") -> int:
    """A read on its own connection (WAL: never blocked by the writer); 0 while the DB is not there yet."""
    if not Path(path).exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0  # the schema is not created yet


def poll(what: str, check, timeout: float = 20, proc=None, interval: float = 0.002):
    """Poll until check() is truthy (a result to wait for, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            return check()
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


class FakeServer:
    """A TCP server on 127.0.0.1 that misbehaves: ``silent`` (accepts, never answers) or ``garbage``."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.mode == "garbage":
                threading.Thread(target=self._garbage, args=(conn,), daemon=True).start()

    def _garbage(self, conn):
        with contextlib.suppress(OSError):
            conn.sendall(b"\x16\x03\x01 HTTP/1.1 418 I'm a teapot\r\n\xff\xfe\x00garbage\r\n")
            while conn.recv(4096):
                conn.sendall(b")(*&^ NOT IMAP {99999999}\r\n\x00\x01\x02\r\n")

    def close(self):
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.close()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error: ")]
