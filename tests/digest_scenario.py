"""A small networking history with known answers, shared by the digest and Datasette tests.

The clock is NOW (Wednesday 25 Nov 2026, week 2026-W48 in America/New_York).

    Alice   alumni     asked Fri 20 Nov, replied Mon 23 Nov (72 h)  -> thank-you overdue
    Bob     recruiter  asked 10 Nov, only an auto-reply              -> follow-up overdue
    Carol   alumni     asked, replied in 2 h, thanked, all on 23 Nov -> nothing owed
    Dan     mentor     last exchange 22 Aug                          -> check-in overdue
    Erin    recruiter  asked Fri 20 Nov                              -> follow-up due Tue 1 Dec
    Frank   mentor     replied in June, then 3 unanswered mails      -> going quiet (silent)
    Gina    (none)     last exchange 12 Sep                          -> going quiet (check-in soon)
    Hank    alumni     never written to
    Ivy     alumni     replied 17 Nov, met 24 Nov 15:00-16:00        -> thank-you due 16:00 today
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc)
ME = "me@example.com"

CONTACTS = [
    # name, company, segment, address
    ("Alice Able", "Acme", "alumni", "alice@acme.example"),
    ("Bob Brown", "Globex", "recruiter", "bob@globex.example"),
    ("Carol Chen", "Initech", "alumni", "carol@initech.example"),
    ("Dan Diaz", "Hooli", "mentor", "dan@hooli.example"),
    ("Erin Evans", "Acme", "recruiter", "erin@acme.example"),
    ("Frank Fox", "Globex", "mentor", "frank@globex.example"),
    ("Gina Gold", "Umbrella", None, "gina@umbrella.example"),
    ("Hank Hill", "Acme", "alumni", "hank@acme.example"),
    ("Ivy Ito", "Initech", "alumni", "ivy@initech.example"),
]

# (date, direction, other party, subject, automatic)
MESSAGES = [
    ("2026-11-20T14:00:00Z", "outgoing", "alice@acme.example", "Coffee chat?", 0),
    ("2026-11-23T14:00:00Z", "incoming", "alice@acme.example", "Re: Coffee chat?", 0),
    ("2026-11-10T15:00:00Z", "outgoing", "bob@globex.example", "Open roles on your team", 0),
    ("2026-11-10T15:01:00Z", "incoming", "bob@globex.example", "Out of office", 1),
    ("2026-11-23T14:00:00Z", "outgoing", "carol@initech.example", "Quick question", 0),
    ("2026-11-23T16:00:00Z", "incoming", "carol@initech.example", "Re: Quick question", 0),
    ("2026-11-23T17:00:00Z", "outgoing", "carol@initech.example", "Thank you!", 0),
    ("2026-08-20T14:00:00Z", "outgoing", "dan@hooli.example", "Mentoring", 0),
    ("2026-08-21T14:00:00Z", "incoming", "dan@hooli.example", "Re: Mentoring", 0),
    ("2026-08-22T14:00:00Z", "outgoing", "dan@hooli.example", "Re: Mentoring", 0),
    ("2026-11-20T16:00:00Z", "outgoing", "erin@acme.example", "Referral?", 0),
    ("2026-06-01T14:00:00Z", "outgoing", "frank@globex.example", "Hello from an alum", 0),
    ("2026-06-02T14:00:00Z", "incoming", "frank@globex.example", "Re: Hello from an alum", 0),
    ("2026-06-03T14:00:00Z", "outgoing", "frank@globex.example", "Re: Hello from an alum", 0),
    ("2026-08-01T14:00:00Z", "outgoing", "frank@globex.example", "Catching up", 0),
    ("2026-08-12T14:00:00Z", "outgoing", "frank@globex.example", "Re: Catching up", 0),
    ("2026-08-25T14:00:00Z", "outgoing", "frank@globex.example", "Re: Catching up", 0),
    ("2026-09-10T14:00:00Z", "outgoing", "gina@umbrella.example", "Your talk", 0),
    ("2026-09-11T14:00:00Z", "incoming", "gina@umbrella.example", "Re: Your talk", 0),
    ("2026-09-12T14:00:00Z", "outgoing", "gina@umbrella.example", "Re: Your talk", 0),
    ("2026-11-16T14:00:00Z", "outgoing", "ivy@initech.example", "Intro", 0),
    ("2026-11-17T14:00:00Z", "incoming", "ivy@initech.example", "Re: Intro", 0),
]

MEETING = ("ivy@initech.example", "2026-11-24T15:00:00Z", "2026-11-24T16:00:00Z", "Coffee with Ivy")


def make_config(tmp_path: Path, **digest):
    from syncagent import config

    data = {
        "timezone": "America/New_York",
        "database": {"path": str(tmp_path / "syncagent.db")},
        "digest": {"output_dir": str(tmp_path / "digests"), **digest},
    }
    return config.parse(data, tmp_path / "config.toml")


def build(db, *, now: datetime = NOW, config=None) -> None:
    """Insert the scenario and run the ledger and reminder stages at ``now``."""
    stamp = "2026-01-01T00:00:00Z"
    ids = {}
    for name, company, segment, address in CONTACTS:
        cur = db.execute(
            "INSERT INTO contacts (name, company, segment, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            [name, company, segment, stamp, stamp],
        )
        ids[address] = cur.lastrowid
        db.execute("INSERT INTO contact_emails (address, contact_id, position) VALUES (?, ?, 0)", [address, cur.lastrowid])
    for i, (date, direction, other, subject, automatic) in enumerate(MESSAGES):
        sender, recipient = (ME, other) if direction == "outgoing" else (other, ME)
        cur = db.execute(
            "INSERT INTO messages (account, message_id, date, from_address, subject, direction, automatic, "
            "snippet, first_seen_at) VALUES ('personal', ?, ?, ?, ?, ?, ?, ?, ?)",
            [f"<m{i}@scenario>", date, sender, subject, direction, automatic, f"snippet of {subject.lower()}", stamp],
        )
        db.execute("INSERT INTO message_addresses (message, role, address) VALUES (?, 'from', ?)", [cur.lastrowid, sender])
        db.execute("INSERT INTO message_addresses (message, role, address) VALUES (?, 'to', ?)", [cur.lastrowid, recipient])
    address, start, end, summary = MEETING
    cur = db.execute(
        "INSERT INTO meetings (uid, status, summary, start_at, end_at) VALUES ('ivy-1', 'confirmed', ?, ?, ?)",
        [summary, start, end],
    )
    db.execute("INSERT INTO meeting_contacts (meeting, contact_id) VALUES (?, ?)", [cur.lastrowid, ids[address]])
    from syncagent.pipeline import ledger as ledger_store
    from syncagent.pipeline import reminders
    from syncagent.store import search

    search.catch_up(db)  # rows inserted by hand are indexed as the store indexes its batches
    # As a sync derives them: weeks cut in the config's zone, responsiveness classed.
    ledger_store.recompute(db, now, config.timezone if config is not None else "UTC", config=config)
    if config is not None:
        reminders.reconcile(db, config, now)


def datasette_get(ds, path: str):
    """One request to an in-process Datasette, after its startup hooks ran."""
    import asyncio

    async def go():
        await ds.invoke_startup()
        return await ds.client.get(path)

    return asyncio.run(go())
