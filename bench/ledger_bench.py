"""Time ledger_store.recompute on a synthetic mailbox: 100,000 messages, 5,000 contacts.

Run by hand: ``python bench/ledger_bench.py [--messages N] [--contacts N] [--db PATH]``.
Goal (issue "Contacts and the relationship ledger"): the whole recompute under 2 s.
Messages are inserted with plain SQL (not save_batch) so building the fixture is quick;
the rows have the shape the store writes: one From, one To, sometimes a Cc and a Bcc.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syncagent.pipeline import ledger as ledger_store  # noqa: E402
from syncagent.store import db as store
from syncagent.timeutil import iso  # noqa: E402

ME = "me@example.com"


def build(db, messages: int, contacts: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    conn = db.conn
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO contacts (id, name, segment, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        [(i, f"Contact {i}", rnd.choice([None, "alumni", "recruiter", "mentor"]), iso(start), iso(start))
         for i in range(1, contacts + 1)],
    )
    # Half the contacts have a second address.
    emails = [(f"c{i}@corp{i % 97}.example", i, 0) for i in range(1, contacts + 1)]
    emails += [(f"c{i}.alt@mail.example", i, 1) for i in range(1, contacts + 1, 2)]
    conn.executemany("INSERT INTO contact_emails (address, contact_id, position) VALUES (?, ?, ?)", emails)
    # Strangers outnumber contacts, as in a real mailbox.
    strangers = [f"s{i}@elsewhere.example" for i in range(20 * contacts)]
    contact_addrs = [e[0] for e in emails]
    msg_rows, addr_rows = [], []
    for pk in range(1, messages + 1):
        date = iso(start + timedelta(seconds=rnd.randrange(3 * 365 * 86400)))
        other = rnd.choice(contact_addrs) if rnd.random() < 0.3 else rnd.choice(strangers)
        outgoing = rnd.random() < 0.4
        sender, rcpt = (ME, other) if outgoing else (other, ME)
        automatic = 1 if rnd.random() < 0.1 else 0
        msg_rows.append((pk, "acct", f"<{pk}@bench>", date, sender, "Subject", "outgoing" if outgoing else "incoming",
                         automatic, date))
        addr_rows.append((pk, "from", sender))
        addr_rows.append((pk, "to", rcpt))
        if rnd.random() < 0.2:
            addr_rows.append((pk, "cc", rnd.choice(contact_addrs)))
        if outgoing and rnd.random() < 0.05:
            addr_rows.append((pk, "bcc", rnd.choice(contact_addrs)))
    conn.executemany(
        "INSERT INTO messages (id, account, message_id, date, from_address, subject, direction, automatic, "
        "first_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        msg_rows,
    )
    conn.executemany("INSERT OR IGNORE INTO message_addresses (message, role, address) VALUES (?, ?, ?)", addr_rows)
    conn.execute("COMMIT")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    path = args.db or Path(tempfile.mkdtemp()) / "bench.db"
    db = store.open_db(path)
    if not db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]:
        t = time.perf_counter()
        build(db, args.messages, args.contacts)
        print(f"built {args.messages} messages, {args.contacts} contacts in {time.perf_counter() - t:.1f} s")
    now = datetime(2027, 1, 1, tzinfo=timezone.utc)
    with db.conn:
        for table in ("replies", "contact_messages", "contact_ledger"):
            db.execute(f"DELETE FROM {table}")
    print(f"first recompute (empty ledger tables, every row written): {_timed(lambda: ledger_store.recompute(db, now)):.3f} s")
    for label, fn in [("contact_events", lambda: ledger_store.contact_events(db, now)),
                      ("recompute again (events + compute, nothing changed)", lambda: ledger_store.recompute(db, now))]:
        best = min(_timed(fn) for _ in range(3))
        print(f"{label}: best of 3 {best:.3f} s")
    counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
              for t in ("contact_ledger", "replies", "contact_messages")}
    print("rows:", counts)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
