"""Soak test, run by hand: the daemon for a while against Dovecot, mail arriving, Dovecot restarting.

    python bench/soak.py [--minutes 30] [--every 3] [--restart-every 5] [--interval 0.25]

Starts a private Dovecot (tests/dovecot.py) and ``syncagent run`` with a sync
interval of ``--interval`` minutes; appends one message every ``--every``
seconds and restarts Dovecot every ``--restart-every`` minutes. At the end it
waits for the daemon to catch up, stops it with SIGTERM and reports: messages
delivered vs stored (and any doubled), sync passes ok/failed, the daemon's
RSS at start and end (and its peak), its exit code, and any traceback in its log.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def rss_mb(pid: int) -> float:
    """Current resident set size from /proc (no psutil needed)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def query(db: Path, sql: str):
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--every", type=float, default=3, help="seconds between two new messages")
    ap.add_argument("--restart-every", type=float, default=5, help="minutes between two Dovecot restarts")
    ap.add_argument("--interval", type=float, default=0.25, help="the daemon's sync interval in minutes")
    args = ap.parse_args()

    import dovecot as dv

    work = Path(tempfile.mkdtemp(prefix="syncagent-soak-"))
    server = dv.Dovecot()
    server.start()
    box = server.new_user()
    box.append_many("INBOX", [dv.make_message(i) for i in range(50)])  # something to sync at start
    delivered = 50
    db = work / "soak.db"
    cfg = work / "config.toml"
    cfg.write_text(
        f'[database]\npath = "{db}"\n[sync]\ninterval_minutes = {args.interval}\njitter_seconds = 1\n'
        f'[digest]\noutput_dir = "{work}/digests"\n'
        f'[[accounts]]\nname = "soak"\nkind = "imap"\nhost = "127.0.0.1"\nport = {server.port}\n'
        f'security = "none"\nusername = "{box.user}"\npassword_env = "SOAK_PW"\naddresses = ["me@example.test"]\n'
        'timeout = 10\n')
    log_path = work / "daemon.log"
    env = {**os.environ, "SOAK_PW": box.password, "PYTHONPATH": str(REPO)}
    with open(log_path, "w") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "syncagent", "--config", str(cfg), "run"],
                                  stdout=log, stderr=subprocess.STDOUT, env=env)
    restarts = 0
    try:
        deadline = time.monotonic() + 60
        while query(db, "SELECT COUNT(*) FROM messages") != delivered and time.monotonic() < deadline:
            time.sleep(0.5)  # polling for the first sync to land
        rss_start = peak = rss_mb(daemon.pid)
        print(f"first sync done; daemon RSS {rss_start:.1f} MB", file=sys.stderr)
        end = time.monotonic() + args.minutes * 60
        next_restart = time.monotonic() + args.restart_every * 60
        n = 1000
        while time.monotonic() < end:
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited with {daemon.returncode}; see {log_path}")
            try:
                box.append("INBOX", dv.make_message(n, subject=f"Soak {n}"))
                delivered += 1
                n += 1
            except Exception as exc:  # Dovecot restarting: this message was not delivered
                print(f"append failed ({exc.__class__.__name__}); not counted", file=sys.stderr)
            if time.monotonic() >= next_restart:
                server.stop()
                time.sleep(2)  # a short outage, the point of the exercise
                server.start()
                restarts += 1
                next_restart = time.monotonic() + args.restart_every * 60
                print(f"Dovecot restarted ({restarts}); stored {query(db, 'SELECT COUNT(*) FROM messages')} "
                      f"of {delivered}", file=sys.stderr)
            peak = max(peak, rss_mb(daemon.pid))
            time.sleep(args.every)
        catch_up = time.monotonic() + args.interval * 60 * 2 + 60
        while query(db, "SELECT COUNT(*) FROM messages") != delivered and time.monotonic() < catch_up:
            time.sleep(0.5)
        rss_end = rss_mb(daemon.pid)
        peak = max(peak, rss_end)
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        server.close()
    stored = query(db, "SELECT COUNT(*) FROM messages")
    distinct = query(db, "SELECT COUNT(DISTINCT message_id) FROM messages")
    ok = query(db, "SELECT COUNT(*) FROM sync_runs WHERE status = 'ok'")
    failed = query(db, "SELECT COUNT(*) FROM sync_runs WHERE status = 'failed'")
    text = log_path.read_text(errors="replace")
    print(f"minutes {args.minutes:g}, Dovecot restarts {restarts}, delivered {delivered}, stored {stored} "
          f"(distinct Message-IDs {distinct}), sync passes ok {ok} / failed {failed}, "
          f"RSS start {rss_start:.1f} MB, end {rss_end:.1f} MB, peak {peak:.1f} MB, exit code {code}, "
          f"tracebacks in log {text.count('Traceback')}")
    print(f"log: {log_path}")
    if stored != delivered or distinct != stored or code != 0:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
