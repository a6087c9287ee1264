"""How long do the threads and meetings stages take after a sync that brought k new messages?

Run by hand (never in the test suite), under ``nice`` on a quiet machine:

    python bench/threads_bench.py --dir /tmp/tb --n 100000 build     # once: a database of N messages
    python bench/threads_bench.py --dir /tmp/tb --n 100000 measure   # k = 100 and k = 1

``build`` stores bench/generate.py's first N messages with ``store.db.save_batch``
(no source, no IMAP: this measures the derived stages, not fetching) and derives
threads and meetings once. ``measure`` copies that database, stores the next k
generated messages (replies into existing threads, new threads, invitations,
as generate.py makes them) and times the two stages as ``pipeline.stages`` runs
them: ``threads.update``/``meetings.update`` where the tree has them (the
incremental path), else ``rebuild`` (the full pass). ``full`` times the full
rebuild on the same database, for comparison. Run it with ``PYTHONPATH`` set to
an older tree to get the figures before a change.

Peak memory at a million messages (generating them takes long, so copy them):

    python bench/threads_bench.py --dir /tmp/tb --n 1000000 grow     # base.db's messages x (N / its count)
    python bench/threads_bench.py --dir /tmp/tb --n 1000000 peak     # each full stage in its own process

``grow`` writes ``base-N.db``: base.db's rows copied by SQL with every Message-ID
(and the ids References, In-Reply-To and invitations name) given a per-copy
suffix, so each copy threads like the original, unthreaded. ``peak`` copies it
and runs ``threads.rebuild``, ``meetings.rebuild``, the ledger's full
``stages.derive`` and then the whole ``stages.after_sync(force=True)`` each in a
fresh subprocess, printing wall and CPU seconds and peak RSS (ru_maxrss).
"""

from __future__ import annotations

import argparse
import email
import json
import shutil
import sys
import time
from email import policy
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402


def _parsed(n_total: int, start: int, stop: int):
    from syncagent.model import Seen
    from syncagent.parse.headers import parse_message

    for i, (folder, raw, _mtime) in enumerate(generate.messages(n_total)):
        if i < start:
            continue
        if i >= stop:
            break
        msg = parse_message(raw, size=len(raw))
        if b"text/calendar" in raw:
            for part in email.message_from_bytes(raw, policy=policy.default).walk():
                if part.get_content_type() == "text/calendar":
                    from dataclasses import replace

                    msg = replace(msg, calendar=part.get_content(), has_calendar=True)
                    break
        yield msg, Seen(folder=folder, location=str(i))


def _save(db, items) -> None:
    from syncagent.model import Batch
    from syncagent.store.db import save_batch

    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == 500:
            save_batch(db, "bench", [generate.ME], Batch(items=batch, folder="INBOX"))
            batch = []
    if batch:
        save_batch(db, "bench", [generate.ME], Batch(items=batch, folder="INBOX"))


def _stage(module, db, *args, full: bool = False) -> float:
    fn = module.rebuild if full or not hasattr(module, "update") else module.update
    t = time.perf_counter()
    fn(db, *args)
    return round(time.perf_counter() - t, 4)


def build(folder: Path, n: int) -> None:
    from syncagent.pipeline import meetings, threads
    from syncagent.store.db import open_db

    folder.mkdir(parents=True, exist_ok=True)
    base = folder / "base.db"
    base.unlink(missing_ok=True)
    db = open_db(base)
    t = time.perf_counter()
    _save(db, _parsed(n + 1000, 0, n))
    print(f"stored {n} messages in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    print(json.dumps({"threads_full": _stage(threads, db, full=True),
                      "meetings_full": _stage(meetings, db, "UTC", full=True)}))
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()


def measure(folder: Path, n: int, repeat: int) -> None:
    from syncagent.pipeline import meetings, threads
    from syncagent.store.db import open_db

    base = folder / "base.db"
    if hasattr(threads, "update"):
        # The incremental stages keep state: derive it once (the first pass after an upgrade does the same).
        base = folder / "base-incremental.db"
        if not base.exists():
            shutil.copy(folder / "base.db", base)
            db = open_db(base)
            print(json.dumps({"first_pass_threads": _stage(threads, db), "first_pass_meetings": _stage(meetings, db, "UTC")}))
            db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.conn.close()
    rows = []
    for k in (100, 1):
        for _ in range(repeat):
            work = folder / "work.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{work}{suffix}").unlink(missing_ok=True)
            shutil.copy(base, work)
            db = open_db(work)
            _save(db, _parsed(n + 1000, n, n + k))
            row = {"k": k, "threads": _stage(threads, db), "meetings": _stage(meetings, db, "UTC")}
            row["both"] = round(row["threads"] + row["meetings"], 4)
            row["threads_full"] = _stage(threads, db, full=True)
            row["meetings_full"] = _stage(meetings, db, "UTC", full=True)
            db.conn.close()
            rows.append(row)
            print(json.dumps(row))


def grow(folder: Path, n: int) -> Path:
    from syncagent.store.db import open_db

    target = folder / f"base-{n}.db"
    shutil.copy(folder / "base.db", target)
    db = open_db(target)
    c = db.conn
    have = int(c.execute("SELECT max(id) FROM messages").fetchone()[0])
    cols = [r[1] for r in c.execute("PRAGMA table_info(messages)")]
    renamed = {"message_id", "in_reply_to", "refs"}
    with c:
        for k in range(1, -(-n // have)):
            suffix = f".copy{k}@"

            def moved(col: str, k: int = k, suffix: str = suffix) -> str:
                if col == "id":
                    return f"id + {k * have}"
                if col == "thread_id":
                    return "NULL"
                return f"replace({col}, '@', '{suffix}')" if col in renamed else col

            upto = min(have, n - k * have)
            c.execute(f"INSERT INTO messages ({', '.join(cols)}) SELECT {', '.join(map(moved, cols))} "
                      f"FROM messages WHERE id <= {upto}")
            c.execute(f"INSERT INTO message_addresses SELECT message + {k * have}, role, address, name "
                      f"FROM message_addresses WHERE message <= {upto}")
            c.execute(f"INSERT INTO message_folders SELECT account, folder, location || '.{k}', uidvalidity, uid, "
                      f"message + {k * have}, labels, gone, seen_at FROM message_folders WHERE message <= {upto}")
            c.execute(f"INSERT INTO calendar_parts SELECT message + {k * have}, replace(ics, '@', '{suffix}') "
                      f"FROM calendar_parts WHERE message <= {upto}")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    return target


_STAGE = """
import json, resource, sys, time
from datetime import datetime, timezone
from syncagent import config
from syncagent.pipeline import meetings, stages, threads
from syncagent.store.db import open_db
db = open_db(sys.argv[1])
cfg = config.parse({"timezone": "UTC", "accounts": [
    {"name": "bench", "kind": "maildir", "path": "/nonexistent", "addresses": [sys.argv[3]]}]}, None)
now = datetime(2027, 1, 1, tzinfo=timezone.utc)
run = {"threads": lambda: threads.rebuild(db), "meetings": lambda: meetings.rebuild(db, "UTC"),
       "ledger": lambda: stages.derive(db, cfg, now, full=True),
       "after_sync": lambda: stages.after_sync(db, cfg, now=now, force=True)}[sys.argv[2]]
t, cpu = time.perf_counter(), time.process_time()
run()
print(json.dumps({"stage": sys.argv[2], "wall_s": round(time.perf_counter() - t, 2),
                  "cpu_s": round(time.process_time() - cpu, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}), flush=True)
"""


def peak(folder: Path, n: int) -> None:
    import subprocess

    source = folder / (f"base-{n}.db" if (folder / f"base-{n}.db").exists() else "base.db")
    work = folder / "peak.db"
    for stage in ("threads", "meetings", "ledger", "after_sync"):
        if stage in ("threads", "after_sync"):  # each starts from mail never threaded by this tree
            for suffix in ("", "-wal", "-shm"):
                Path(f"{work}{suffix}").unlink(missing_ok=True)
            shutil.copy(source, work)
        subprocess.run([sys.executable, "-c", _STAGE, str(work), stage, generate.ME], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["build", "measure", "grow", "peak"])
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.what == "build":
        build(args.dir, args.n)
    elif args.what == "grow":
        print(grow(args.dir, args.n))
    elif args.what == "peak":
        peak(args.dir, args.n)
    else:
        measure(args.dir, args.n, args.repeat)


if __name__ == "__main__":
    main()
