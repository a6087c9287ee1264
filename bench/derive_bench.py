"""Time the derived stages (ledger, reminders, measured asks) full and incremental at 100,000 messages.

Run by hand: ``python bench/derive_bench.py [--messages N] [--contacts N] [--db PATH]``.
Builds the synthetic mailbox of ledger_bench.py (5,000 contacts), then times, in one process:

  full           ``stages.derive(full=True)``: every contact (a settings or own-address change, an upgrade)
  100 new        after 100 new messages (plain SQL inserts, as ledger_bench does)
  1 new          after 1 new message
  nothing new    a pass with nothing to re-derive
  contact edit   after one contact's company changed
  read           ``reminders.stored`` + ``stats.read_report`` + ``contacts list``'s read
  --now read     the reminder list evaluated in memory at an instant (nothing written)

Goals (issue "Speed"): 100 new -> < 0.2 s for these stages, 1 new -> < 0.1 s. Threads and
meetings are not timed here (bench/sync_bench.py times whole syncs).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ledger_bench  # noqa: E402

from syncagent import config as config_mod  # noqa: E402
from syncagent.pipeline import reminders, stages, stats  # noqa: E402
from syncagent.store import db as store  # noqa: E402
from syncagent.timeutil import iso  # noqa: E402

NOW = datetime(2027, 1, 1, tzinfo=timezone.utc)


def add_messages(db, n: int, seed: int) -> None:
    """``n`` new messages with contacts, dated just before NOW, in one transaction."""
    rnd = random.Random(seed)
    conn = db.conn
    addrs = [a for (a,) in conn.execute("SELECT address FROM contact_emails")]
    top = conn.execute("SELECT max(id) FROM messages").fetchone()[0]
    conn.execute("BEGIN")
    for pk in range(top + 1, top + n + 1):
        date = iso(NOW - timedelta(seconds=rnd.randrange(1, 86400)))
        other = rnd.choice(addrs)
        outgoing = rnd.random() < 0.5
        sender, rcpt = (ledger_bench.ME, other) if outgoing else (other, ledger_bench.ME)
        conn.execute("INSERT INTO messages (id, account, message_id, date, from_address, subject, direction, "
                     "automatic, first_seen_at) VALUES (?, 'acct', ?, ?, ?, 'New', ?, 0, ?)",
                     [pk, f"<{pk}@new>", date, sender, "outgoing" if outgoing else "incoming", date])
        conn.execute("INSERT INTO message_addresses (message, role, address) VALUES (?, 'from', ?)", [pk, sender])
        conn.execute("INSERT INTO message_addresses (message, role, address) VALUES (?, 'to', ?)", [pk, rcpt])
    conn.execute("COMMIT")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--db", type=Path, help="a database built by an earlier run (copied, not changed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    path = work / "bench.db"
    if args.db:
        shutil.copy(args.db, path)
    db = store.open_db(path)
    if not db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]:
        ledger_bench.build(db, args.messages, args.contacts)
    config = config_mod.parse({"timezone": "UTC", "accounts": [
        {"name": "acct", "kind": "maildir", "path": str(work), "addresses": [ledger_bench.ME]}]}, None)
    rows = []

    def derive(now):  # as a sync's after_sync does, the fingerprints included
        stages.derive(db, config, now, mail=stages._mail_fingerprint(db), people=stages._people_fingerprint(db, config))

    def timed(label: str, fn) -> None:
        # CPU time too: on a shared machine the wall clock mostly measures the neighbours.
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        rows.append((label, time.perf_counter() - start, time.process_time() - cpu))
        print(f"{label:<28} {rows[-1][1]:7.3f} s wall  {rows[-1][2]:7.3f} s CPU", flush=True)

    timed("full (first)", lambda: stages.derive(db, config, NOW, full=True))
    timed("full (again)", lambda: stages.derive(db, config, NOW, full=True))
    for n, seed in ((100, 1), (1, 2), (100, 3), (1, 4)):
        add_messages(db, n, seed)
        timed(f"{n} new", lambda: derive(NOW))
    timed("nothing new", lambda: derive(NOW))
    with db.conn:
        db.execute("UPDATE contacts SET company = 'Moved Inc', updated_at = ? WHERE id = 7", [iso(NOW)])
    timed("contact edit", lambda: derive(NOW))
    timed("clock +1 day", lambda: derive(NOW + timedelta(days=1)))
    timed("read: reminders", lambda: reminders.stored(db, config, NOW + timedelta(days=1)))
    timed("read: stats", lambda: stats.read_report(db, config))
    timed("--now: reminders", lambda: reminders.listing(db, config, NOW + timedelta(days=1)))


if __name__ == "__main__":
    main()
