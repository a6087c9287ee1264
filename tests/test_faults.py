"""Promise 2 and 4 under injected faults: killed syncs, a server that dies, hangs or talks
garbage, a full disk, a foreign write lock, and readers during writes."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from dovecot import make_message
from faults_helpers import PW_ENV, FakeServer, count, dump, error_lines, imap_config, maildir_config, poll

from syncagent.cli import main
from syncagent.sources.imap import connect as imap_connect

ROOT = Path(__file__).resolve().parent.parent
N_INBOX, N_SENT = 150, 30
TOTAL = N_INBOX + N_SENT


def _messages():
    inbox = [make_message(i, sender=f"p{i % 40}@corp.example", subject=f"Thread {i % 25}",
                          extra=(f"In-Reply-To: <msg{i - 1}@example.org>\r\nCc: x{i}@corp.example\r\n"
                                 if i % 3 else "")) for i in range(N_INBOX)]
    sent = [make_message(1000 + i, sender="me@example.test", to=f"p{i}@corp.example") for i in range(N_SENT)]
    return inbox, sent


def _cli(config: Path, *args: str, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "syncagent", "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture(scope="module")
def loaded(dovecot_server, tmp_path_factory):
    """One mailbox of 180 messages and the dump of one uninterrupted CLI sync of it."""
    dovecot_server.start()
    box = dovecot_server.new_user()
    inbox, sent = _messages()
    box.append_many("INBOX", inbox)
    box.append_many("Sent", sent)
    tmp = tmp_path_factory.mktemp("clean")
    env = {**os.environ, PW_ENV: box.password}
    proc = _cli(imap_config(tmp, dovecot_server.direct_port, box.user, batch_size=2), "sync", env=env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    clean = dump(tmp / "db.sqlite")
    assert len(clean[0]) == TOTAL
    return box, env, clean


@pytest.fixture(autouse=True)
def _no_retry(monkeypatch):
    monkeypatch.setattr(imap_connect, "CONNECT_ATTEMPTS", 1)


@pytest.mark.dovecot
def test_sigkill_at_twenty_points_then_restart_equals_a_clean_sync(loaded, dovecot, tmp_path):
    """`syncagent sync` SIGKILLed at >= 20 points of an initial sync, restarted each time, ends identical to one clean sync."""
    box, env, clean = loaded
    cfg = imap_config(tmp_path, dovecot.direct_port, box.user, batch_size=2)
    db = tmp_path / "db.sqlite"
    # Kill points: while starting (before the DB exists), once the file exists (migrations),
    # then after k committed rows, spread over the whole initial sync.
    targets = [None, "file"] + [round(TOTAL * k / 20) for k in range(1, 20)]
    killed_at = []
    for target in targets:
        proc = _cli(cfg, "sync", env=env)
        if target == "file":
            poll("the database file", lambda proc=proc: db.exists() or proc.poll() is not None, proc=proc)
        elif target is not None:
            poll(f"{target} rows", lambda proc=proc, target=target: count(db) >= target or proc.poll() is not None, proc=proc)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_at.append(count(db))
        proc.communicate(timeout=30)
        # Between any two kills nothing is doubled and every stored row has its folder row.
        assert count(db, "SELECT COUNT(*) - COUNT(DISTINCT message_id) FROM messages") == 0
        assert count(db, "SELECT COUNT(*) FROM messages m WHERE NOT EXISTS "
                         "(SELECT 1 FROM message_folders f WHERE f.message = m.id)") == 0
    last = _cli(cfg, "sync", env=env)
    out, err = last.communicate(timeout=60)
    assert last.returncode == 0, err
    assert len(killed_at) >= 20, killed_at
    assert len({k for k in killed_at if 0 < k < TOTAL}) >= 10, f"kills not spread over the sync: {killed_at}"
    assert dump(db) == clean
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.dovecot
def test_dovecot_stopped_mid_sync_then_restarted(loaded, dovecot, tmp_path):
    """Dovecot dying mid-sync gives exit 1 and one sentence; after it restarts a sync completes identically."""
    box, env, clean = loaded
    # Through the proxy, which Dovecot's stop() also cuts, so the stop lands mid-sync.
    cfg = imap_config(tmp_path, dovecot.port, box.user, batch_size=1)
    db = tmp_path / "db.sqlite"
    proc = _cli(cfg, "sync", env=env)
    poll("a few batches", lambda: count(db) >= 3, proc=proc)
    dovecot.proxy.drop_connections()  # at once: Dovecot's own shutdown takes longer than this sync
    dovecot.stop()
    out, err = proc.communicate(timeout=60)
    dovecot.start()
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1 and "continues from there" in lines[0], err
    kept = count(db)
    assert 3 <= kept < TOTAL
    again = _cli(cfg, "sync", env=env)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert dump(db) == clean


@pytest.mark.dovecot
def test_second_sync_refused_while_the_first_holds_the_lock(loaded, dovecot, tmp_path):
    """A second `syncagent sync` while one is mid-way is refused with one sentence; the first finishes intact."""
    box, env, clean = loaded
    cfg = imap_config(tmp_path, dovecot.direct_port, box.user, batch_size=2)
    db = tmp_path / "db.sqlite"
    first = _cli(cfg, "sync", env=env)
    try:
        poll("the first batches", lambda: count(db) >= 4, proc=first)
        first.send_signal(signal.SIGSTOP)  # frozen mid-sync, still holding the lock
        second = _cli(cfg, "sync", env=env)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 1
        assert error_lines(err) == [
            f"Error: Another syncagent process (pid {first.pid}) is writing to {db}; wait for it to finish "
            "or stop it (`systemctl --user stop syncagent`)."], err
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert dump(db) == clean


def _run_main(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.mark.parametrize("mode", ["silent", "garbage"])
def test_server_that_hangs_or_talks_garbage(mode, tmp_path, capsys, monkeypatch):
    """A server that never answers times out, one answering garbage is refused: exit 1, one sentence, no traceback."""
    server = FakeServer(mode)
    monkeypatch.setenv(PW_ENV, "pw")
    try:
        cfg = imap_config(tmp_path, server.port, "u@example.test", timeout=0.5)
        code, out, err = _run_main(capsys, "--config", str(cfg), "sync")
    finally:
        server.close()
    assert code == 1
    assert "Traceback" not in err + out
    lines = error_lines(err)
    assert len(lines) == 1, err
    line = lines[0]
    assert line.endswith("."), line
    if mode == "silent":
        assert "did not answer within 0.5 s" in line, line
    assert count(tmp_path / "db.sqlite", "SELECT COUNT(*) FROM sync_runs WHERE status = 'failed'") == 1


def test_daemon_goes_on_after_a_server_that_never_answers(tmp_path):
    """`syncagent run` against a silent server records the timeout and starts the next pass instead of dying."""
    server = FakeServer("silent")
    cfg = imap_config(tmp_path, server.port, "u@example.test", timeout=0.3, top="[sync]\ninterval_minutes = 0.005\n")
    db = tmp_path / "db.sqlite"
    proc = _cli(cfg, "run", env={**os.environ, PW_ENV: "pw"})
    try:
        poll("a failed pass", lambda: count(db, "SELECT COUNT(*) FROM sync_runs WHERE status = 'failed'") >= 1,
             timeout=30, proc=proc)
        poll("the next pass", lambda: count(db, "SELECT COUNT(*) FROM sync_runs") >= 2, timeout=30, proc=proc)
        assert proc.poll() is None, proc.communicate()
        error = sqlite3.connect(db).execute("SELECT error FROM sync_runs WHERE status = 'failed'").fetchone()[0]
        assert "did not answer within 0.3 s" in error
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        server.close()


@pytest.mark.dovecot
def test_disk_full_mid_sync_keeps_committed_batches_and_says_so(loaded, dovecot, tmp_path):
    """When the disk fills after some batches, the failing batch leaves no trace, the reason is given,
    and with space again the next sync ends identical to a clean one."""
    from syncagent import config as config_mod
    from syncagent.pipeline.sync import sync_all
    from syncagent.store.db import open_db

    box, env, clean = loaded
    os.environ[PW_ENV] = box.password
    try:
        cfg = config_mod.load(imap_config(tmp_path, dovecot.direct_port, box.user, batch_size=5))
        db = open_db(cfg.database)
        batches = []

        def progress(account, folder, done, total):
            batches.append(done)
            if len(batches) == 3:  # the disk fills up now: no page may be added any more
                pages = db.execute("PRAGMA page_count").fetchone()[0]
                db.execute(f"PRAGMA max_page_count = {pages}")

        results = sync_all(db, cfg, progress=progress)
        assert not results[0].ok
        assert "the disk is full" in results[0].error and "nothing from this batch was saved" in results[0].error
        db.conn.close()
        stored = dump(cfg.database)
        # The rows match the committed cursor exactly: no half batch, nothing past it.
        conn = sqlite3.connect(cfg.database)
        last_uid = dict(conn.execute("SELECT folder, last_uid FROM folder_state").fetchall())
        uids = {folder: sorted(int(loc) for f, loc, *_ in (row[1:] for row in stored[2]) if f == folder)
                for folder in last_uid}
        for folder, uid in last_uid.items():
            assert uids[folder] == list(range(1, (uid or 0) + 1)), (folder, uid)
        assert 15 <= len(stored[0]) < TOTAL
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db = open_db(cfg.database)  # a new connection: the space is back
        assert sync_all(db, cfg)[0].ok
        assert dump(cfg.database) == clean
    finally:
        os.environ.pop(PW_ENV, None)


def _hold_write_lock(database: Path) -> subprocess.Popen:
    """Another program (not syncagent) holding SQLite's write lock until it reads a line."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
         "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); sys.stdin.readline(); c.execute('COMMIT')",
         str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def _local_config(tmp_path: Path, n: int = 30):
    from syncagent import config as config_mod
    from syncagent.store.db import open_db

    cfg = config_mod.load(maildir_config(tmp_path, _small_maildir(tmp_path / "Maildir", n)))
    open_db(cfg.database).conn.close()
    return cfg


def test_foreign_write_lock_is_waited_out(tmp_path):
    """Another program holding SQLite's write lock briefly: the sync waits for it and loses nothing."""
    from syncagent.pipeline.sync import sync_all
    from syncagent.store.db import open_db

    cfg = _local_config(tmp_path)
    holder = _hold_write_lock(cfg.database)
    try:
        db = open_db(cfg.database)
        threading.Timer(0.3, lambda: (holder.stdin.write("go\n"), holder.stdin.flush())).start()
        results = sync_all(db, cfg)
        assert all(r.ok for r in results), results
        assert count(cfg.database) == 30
    finally:
        holder.kill()
        holder.wait()


def test_foreign_write_lock_never_released_is_one_sentence(tmp_path):
    """A write lock that is never released ends the sync with the store's sentence, not a raw sqlite3 error."""
    from syncagent.pipeline.sync import sync_all
    from syncagent.store.db import open_db

    cfg = _local_config(tmp_path)
    holder = _hold_write_lock(cfg.database)
    try:
        db = open_db(cfg.database)
        db.execute("PRAGMA busy_timeout = 300")  # the real 30 s, shortened for the test
        results = sync_all(db, cfg)
        failed = [r.error for r in results if not r.ok]
        assert failed and "database is locked" in failed[0] and "close the other program" in failed[0]
    finally:
        holder.kill()
        holder.wait()


def _small_maildir(root: Path, n: int) -> Path:
    sys.path.insert(0, str(ROOT / "bench"))
    from generate import write_maildir

    write_maildir(root, n)
    return root


def test_datasette_reads_while_a_sync_writes(tmp_path):
    """With WAL, Datasette answers every query while `syncagent sync` is writing, and sees the count grow."""
    from datasette.app import Datasette

    from syncagent.store.db import open_db

    n = 3000
    maildir = _small_maildir(tmp_path / "Maildir", n)
    cfg = maildir_config(tmp_path, maildir)
    db = tmp_path / "db.sqlite"
    open_db(db).conn.close()  # the schema first, so Datasette is up before the writer starts
    ds = Datasette(files=[str(db)])
    seen, statuses = [], []

    async def read_until_done():
        await ds.invoke_startup()
        proc = _cli(cfg, "sync")
        while proc.poll() is None:
            r = await ds.client.get("/db.json?sql=select+count(*)+as+n+from+messages&_shape=array")
            statuses.append(r.status_code)
            if r.status_code == 200:
                seen.append(r.json()[0]["n"])
        return proc

    proc = asyncio.run(read_until_done())
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert statuses and set(statuses) == {200}
    assert any(0 < s < n for s in seen), f"no read landed mid-sync: {seen[:3]}...{seen[-3:]}"
    assert seen == sorted(seen)  # committed batches only, never a row taken back
    assert count(db) == n
