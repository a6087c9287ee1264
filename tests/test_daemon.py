"""`syncagent run`: syncs on its own, survives the server going away, talks to systemd, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dovecot import make_message

from syncagent import config as config_mod
from syncagent.daemon.service import BACKOFF_FIRST, Daemon

ME = "me@example.test"
DEADLINE = 60.0  # generous: a slow CI box; the loops end as soon as the condition holds


def test_backoff_capped_at_interval_and_jitter_bounded():
    """Failed passes retry sooner, doubling, never later than the interval; jitter stays within a quarter."""
    cfg = config_mod.parse({"sync": {"interval_minutes": 10, "jitter_seconds": 600}}, None)
    d = Daemon(cfg)
    delays = []
    for failures in range(1, 10):
        d.failures = failures
        delays.append(d.next_delay(ok=False))
    assert delays[:3] == [BACKOFF_FIRST, BACKOFF_FIRST * 2, BACKOFF_FIRST * 4]
    assert max(delays) == 600 and delays == sorted(delays)
    assert all(450 <= d.next_delay(ok=True) <= 750 for _ in range(200))
    fast = Daemon(config_mod.parse({"sync": {"interval_minutes": 0.02}}, None))
    fast.failures = 1
    assert fast.next_delay(ok=False) == pytest.approx(1.2)


def wait_for(what, check, timeout=DEADLINE, proc=None, tick=None, log=None):
    """Poll ``check`` until it returns a truthy value, or fail naming ``what`` (with the log's tail)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if tick:
            tick()
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the daemon exited ({proc.returncode}) while waiting for {what}{_tail(log)}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}{_tail(log)}")


def _tail(log) -> str:
    return f"; daemon log:\n{log.read_text()[-4000:]}" if log is not None and log.exists() else ""


def query(db_path: Path, sql: str, args=()):
    if not db_path.exists():
        return []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # not migrated yet
        return []
    finally:
        conn.close()


class NotifySocket:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET, collecting what the daemon sends."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.lines: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.lines.extend(self.sock.recv(4096).decode().split("\n"))
            except BlockingIOError:
                return self.lines

    def close(self):
        self.sock.close()


def write_config(tmp_path, mailbox, interval=0.02) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'timezone = "America/New_York"\n'
        f'[database]\npath = "{tmp_path / "s.db"}"\n'
        f'[sync]\ninterval_minutes = {interval}\njitter_seconds = 0\n'
        f'[[accounts]]\nname = "test"\nkind = "imap"\nhost = "127.0.0.1"\nport = {mailbox.server.port}\n'
        f'security = "none"\nusername = "{mailbox.user}"\npassword_env = "SYNCAGENT_TEST_IMAP_PW"\n'
        f'addresses = ["{ME}"]\ntimeout = 5\n'
    )
    return path


@pytest.mark.dovecot
@pytest.mark.slow
def test_run_syncs_survives_outage_and_stops_on_sigterm(mailbox, tmp_path):
    """The daemon syncs at start and on schedule, refuses a second writer, rides out a Dovecot outage
    (logs it, loses nothing), reports to systemd, and exits 0 within 5 s of SIGTERM."""
    mailbox.append_many("INBOX", [make_message(i) for i in range(2)])
    cfg = write_config(tmp_path, mailbox)
    db = tmp_path / "s.db"
    notify = NotifySocket(tmp_path / "notify.sock")
    env = dict(os.environ, SYNCAGENT_TEST_IMAP_PW=mailbox.password, NOTIFY_SOCKET=notify.path,
               WATCHDOG_USEC="3000000", PYTHONUNBUFFERED="1")
    env.pop("WATCHDOG_PID", None)
    log_path = tmp_path / "daemon.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "syncagent", "--config", str(cfg), "run"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        count = "SELECT COUNT(*) FROM messages"
        wait_for("the first sync", lambda: query(db, count) == [(2,)], proc=proc, tick=notify.drain, log=log_path)
        wait_for("READY=1", lambda: "READY=1" in notify.drain(), log=log_path)

        # A second writer is refused while the daemon holds the lock.
        second = subprocess.run([sys.executable, "-m", "syncagent", "--config", str(cfg), "sync"],
                                capture_output=True, text=True, env=env, timeout=60)
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"Error: Another syncagent process (pid {proc.pid}) is writing to {db}; wait for it to finish "
            "or stop it (`systemctl --user stop syncagent`).")

        # New mail is picked up on the next scheduled pass.
        mailbox.append("INBOX", make_message(2))
        wait_for("the appended message", lambda: query(db, count) == [(3,)], proc=proc, tick=notify.drain, log=log_path)

        # The server goes away: passes fail, are recorded, and the daemon keeps going.
        failed = "SELECT COUNT(*) FROM sync_runs WHERE status = 'failed'"
        mailbox.server.stop()
        wait_for("a failed sync recorded", lambda: query(db, failed)[0][0] >= 2, proc=proc, tick=notify.drain, log=log_path)
        mailbox.server.start()
        mailbox.append("INBOX", make_message(3))
        wait_for("recovery after the outage", lambda: query(db, count) == [(4,)], proc=proc, tick=notify.drain, log=log_path)
        assert query(db, "SELECT COUNT(DISTINCT message_id) FROM messages") == [(4,)]  # nothing doubled
        assert query(db, "SELECT status FROM sync_runs ORDER BY id DESC LIMIT 1") != [("failed",)]
        wait_for("a watchdog ping", lambda: "WATCHDOG=1" in notify.drain(), log=log_path)
        assert any(line.startswith("STATUS=") for line in notify.drain())

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 5
        assert "STOPPING=1" in notify.drain()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
    text = log_path.read_text()
    assert "test: failed after" in text, text[-2000:]  # the outage is logged with its reason
    assert "retrying in" in text
    assert "Traceback" not in text


def test_sigterm_before_any_account_answers_exits_zero(tmp_path):
    """A daemon whose only server is unreachable still stops cleanly (exit 0) on SIGTERM."""
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    free = port.getsockname()[1]
    port.close()
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[database]\npath = "{tmp_path / "s.db"}"\n[sync]\ninterval_minutes = 0.02\n'
        f'[[accounts]]\nname = "gone"\nkind = "imap"\nhost = "127.0.0.1"\nport = {free}\nsecurity = "none"\n'
        f'username = "u"\npassword_env = "NOPE"\ntimeout = 2\n')
    proc = subprocess.Popen([sys.executable, "-m", "syncagent", "--config", str(cfg), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        db = tmp_path / "s.db"
        wait_for("a failed pass", lambda: query(db, "SELECT COUNT(*) FROM sync_runs WHERE status = 'failed'")
                 and query(db, "SELECT COUNT(*) FROM sync_runs WHERE status = 'failed'")[0][0] >= 1, proc=proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.dovecot
@pytest.mark.slow
def test_idle_triggers_an_early_sync(mailbox, tmp_path):
    """With a 10-minute interval, mail appended to INBOX is synced within seconds: IDLE woke the daemon."""
    mailbox.append("INBOX", make_message(0))
    cfg = write_config(tmp_path, mailbox, interval=10)
    db = tmp_path / "s.db"
    env = dict(os.environ, SYNCAGENT_TEST_IMAP_PW=mailbox.password)
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen([sys.executable, "-m", "syncagent", "--config", str(cfg), "run"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        count = "SELECT COUNT(*) FROM messages"
        wait_for("the first sync", lambda: query(db, count) == [(1,)], proc=proc)
        # IDLE is up once the watcher has issued it through the counting proxy.
        wait_for("IDLE issued", lambda: "IDLE" in mailbox.server.commands, proc=proc)
        mailbox.append("INBOX", make_message(1))
        wait_for("the IDLE-triggered sync", lambda: query(db, count) == [(2,)], timeout=30, proc=proc)
        assert "EXAMINE" in mailbox.server.commands and "SELECT" not in mailbox.server.commands
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_during_a_hung_connection_exits_zero_within_5_s(tmp_path):
    """A pass stuck waiting on a server that never answers is abandoned on SIGTERM: exit 0 within 5 s."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # connections complete in the backlog but no greeting ever comes
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[database]\npath = "{tmp_path / "s.db"}"\n'
        f'[[accounts]]\nname = "silent"\nkind = "imap"\nhost = "127.0.0.1"\nport = {silent.getsockname()[1]}\n'
        f'security = "none"\nusername = "u"\npassword_env = "NOPE"\ntimeout = 120\n')
    proc = subprocess.Popen([sys.executable, "-m", "syncagent", "--config", str(cfg), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        db = tmp_path / "s.db"
        wait_for("the pass to start", lambda: query(db, "SELECT status FROM sync_runs") == [("running",)], proc=proc)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 5
        assert "did not stop within" in proc.stdout.read()
        assert query(db, "SELECT status FROM sync_runs") == [("interrupted",)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        silent.close()


def test_digest_trigger_is_weekday_and_local_time():
    """The digest fires on [digest] weekday at its local time, across a DST change too."""
    from datetime import datetime, timezone

    from syncagent.daemon.service import digest_trigger

    cfg = config_mod.parse({"timezone": "America/New_York", "digest": {"weekday": "monday", "time": "08:00"}}, None)
    trigger = digest_trigger(cfg)
    first = trigger.get_next_fire_time(None, datetime(2026, 10, 28, 12, 0, tzinfo=timezone.utc))
    assert first.astimezone(timezone.utc) == datetime(2026, 11, 2, 13, 0, tzinfo=timezone.utc)  # 08:00 EST
    before = trigger.get_next_fire_time(None, datetime(2026, 10, 20, 12, 0, tzinfo=timezone.utc))
    assert before.astimezone(timezone.utc) == datetime(2026, 10, 26, 12, 0, tzinfo=timezone.utc)  # 08:00 EDT


def test_digest_job_writes_the_digest(tmp_path):
    """The daemon's digest job writes the last completed week's files and never raises."""
    cfg = config_mod.parse({"timezone": "America/New_York", "database": {"path": str(tmp_path / "s.db")},
                            "digest": {"output_dir": str(tmp_path / "digests")}}, None)
    from syncagent.store.db import open_db

    open_db(cfg.database).conn.close()
    Daemon(cfg).digest_job()
    written = sorted(p.suffix for p in (tmp_path / "digests").iterdir())
    assert written == [".html", ".md"]


def _invitation(n: int) -> bytes:
    """Ada's calendar invitation for a coffee in March 2020 (the past on any clock that runs this)."""
    ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
           "UID:coffee-2020@example.org\r\nDTSTART:20200310T150000Z\r\nDTEND:20200310T153000Z\r\n"
           "ORGANIZER:mailto:ada@example.org\r\nATTENDEE:mailto:me@example.test\r\nSUMMARY:Coffee\r\n"
           "SEQUENCE:0\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    return (f"From: Ada <ada@example.org>\r\nTo: {ME}\r\nSubject: Invitation: Coffee\r\n"
            f"Date: Mon, 02 Mar 2020 10:00:00 +0000\r\nMessage-ID: <invite{n}@example.org>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nCoffee?\r\n'
            f'--b\r\nContent-Type: text/calendar; method=REQUEST; charset="utf-8"\r\n\r\n{ics}--b--\r\n').encode()


def _reminders(db_path: Path) -> list:
    return sorted(query(db_path, "SELECT c.name, r.kind, r.due_at, r.status, r.reason FROM reminders r "
                                 "JOIN contacts c ON c.id = r.contact_id"))


@pytest.mark.dovecot
def test_sigterm_in_the_first_pass_derives_nothing_from_a_partial_mailbox(mailbox, tmp_path):
    """SIGTERM while the first pass has stored only part of INBOX: after the next sync the reminders
    are exactly those of one uninterrupted sync (no thank-you made and settled from half the mail)."""
    from syncagent.cli import main

    outreach = make_message(1, sender=ME, to="ada@example.org", subject="Coffee?",
                            message_id="<out1@example.test>", date="Sun, 01 Mar 2020 09:00:00 +0000")
    reply = make_message(2, sender="ada@example.org", to=ME, subject="Re: Coffee?", message_id="<re1@example.org>",
                         date="Sun, 01 Mar 2020 12:00:00 +0000", extra="In-Reply-To: <out1@example.test>\r\n")
    thanks = make_message(3, sender=ME, to="ada@example.org", subject="Thank you", message_id="<thx@example.test>",
                          date="Wed, 11 Mar 2020 09:00:00 +0000")
    mailbox.append_many("INBOX", [reply, _invitation(1)])
    mailbox.append_many("INBOX", [make_message(100 + i, sender=f"list{i}@example.net", subject=f"News {i}",
                                               date="Sun, 01 Mar 2020 08:00:00 +0000") for i in range(400)])
    mailbox.append_many("Sent", [outreach, thanks])
    env = dict(os.environ, SYNCAGENT_TEST_IMAP_PW=mailbox.password, PYTHONUNBUFFERED="1")
    env.pop("NOTIFY_SOCKET", None)

    def setup(name: str) -> Path:
        cfg = write_config(tmp_path, mailbox, interval=60)
        text = cfg.read_text().replace(str(tmp_path / "s.db"), str(tmp_path / name)) + "batch_size = 4\n"
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        with pytest.raises(SystemExit):
            main(["--config", str(path), "contacts", "add", "Ada Lovelace", "ada@example.org"])
        return path

    stopped_cfg, clean_cfg = setup("stopped.db"), setup("clean.db")
    log_path = tmp_path / "daemon.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "syncagent", "--config", str(stopped_cfg), "run"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for("the first batch", lambda: query(tmp_path / "stopped.db", "SELECT count(*) FROM messages")
                 not in ([], [(0,)]), proc=proc, log=log_path)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert query(tmp_path / "stopped.db", "SELECT status FROM sync_runs") == [("interrupted",)]
    assert _reminders(tmp_path / "stopped.db") == []  # nothing derived from the partial mailbox
    for cfg in (stopped_cfg, clean_cfg):
        done = subprocess.run([sys.executable, "-m", "syncagent", "--config", str(cfg), "sync"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
    clean = _reminders(tmp_path / "clean.db")
    assert clean, "the scenario owes Ada something"
    assert _reminders(tmp_path / "stopped.db") == clean
