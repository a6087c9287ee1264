"""The reminders table and its commands are one truth: at most one open row per contact, enforced by
the schema (and repaired on upgrade), `--now` replays that change nothing, and the table read by
Datasette agrees with `reminders --json` at the real clock."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncagent import config as config_mod
from syncagent import timeutil
from syncagent.cli import cli
from syncagent.store.db import migrate_db, open_db
from syncagent.store.migrations import migrations
from syncagent.timeutil import iso

ME = "me@example.com"
START = datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc)  # Monday 2 Nov 2026, 09:00 in New York


def add_contact(db, name, address, cadence=None):
    cur = db.conn.execute(
        "INSERT INTO contacts (name, cadence_days, created_at, updated_at) VALUES (?, ?, ?, ?)",
        [name, cadence, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"])
    db.conn.execute("INSERT INTO contact_emails (address, contact_id, position) VALUES (?, ?, 0)",
                    [address, cur.lastrowid])
    return cur.lastrowid


def add_message(db, when: datetime, direction: str, other: str, subject: str = "Hello") -> int:
    sender, to = (ME, other) if direction == "outgoing" else (other, ME)
    n = db.conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    cur = db.conn.execute(
        "INSERT INTO messages (account, message_id, date, from_address, subject, direction, first_seen_at) "
        "VALUES ('test', ?, ?, ?, ?, ?, ?)",
        [f"<m{n}@test>", iso(when), sender, subject, direction, iso(when)])
    mid = cur.lastrowid
    db.conn.execute("INSERT INTO message_addresses (message, role, address) VALUES (?, 'from', ?)", [mid, sender])
    db.conn.execute("INSERT INTO message_addresses (message, role, address) VALUES (?, 'to', ?)", [mid, to])
    return mid


def insert_reminder(conn, contact_id, kind, anchor, status="open", created="2026-11-10T00:00:00Z"):
    return conn.execute(
        "INSERT INTO reminders (contact_id, kind, anchor, due_at, status, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [contact_id, kind, anchor, "2026-11-11T14:00:00Z", status, created]).lastrowid


def open_rows_per_contact(conn) -> int:
    """The most open-or-snoozed turn-ledger rows any one contact has."""
    return conn.execute(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM reminders WHERE status IN ('open', 'snoozed') "
        "AND kind IN ('follow_up', 'thank_you', 'check_in') GROUP BY contact_id)").fetchone()[0]


# --- the schema ------------------------------------------------------------------------

def test_schema_refuses_a_second_open_reminder_for_a_contact(tmp_path):
    """A second open (or snoozed) turn reminder for one contact is refused by the database itself;
    settled rows stay as history beside the open one."""
    db = open_db(tmp_path / "s.db")
    cid = add_contact(db, "Priya Shah", "priya@example.org")
    insert_reminder(db.conn, cid, "follow_up", "message:1", "done")
    insert_reminder(db.conn, cid, "follow_up", "message:2", "dismissed")
    insert_reminder(db.conn, cid, "thank_you", "message:3", "snoozed")
    for kind, anchor, status in (("check_in", "message:4", "open"), ("follow_up", "message:5", "snoozed")):
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            insert_reminder(db.conn, cid, kind, anchor, status)
    other = add_contact(db, "Sam Lee", "sam@example.net")
    insert_reminder(db.conn, other, "check_in", "message:6")  # another contact is independent
    assert open_rows_per_contact(db.conn) == 1


def test_upgrade_repairs_duplicates_keeping_the_latest_obligation(tmp_path):
    """A database where replays left several open rows per contact is repaired by the upgrade: the row
    counted from the latest event stays open, the older ones are settled by the event after them."""
    db = open_db(tmp_path / "s.db", migrate=False)
    migrations.apply(db, stop_before="0011_one_open_reminder")
    priya = add_contact(db, "Priya Shah", "priya@example.org")
    sam = add_contact(db, "Sam Lee", "sam@example.net")
    ask = add_message(db, START, "outgoing", "priya@example.org")
    reply = add_message(db, START + timedelta(days=2), "incoming", "priya@example.org")
    sam_ask = add_message(db, START, "outgoing", "sam@example.net")
    # The sync raised the thank-you; later replays of earlier instants added the older follow-up and a
    # check-in whose anchor message is gone, both with higher ids.
    kept = insert_reminder(db.conn, priya, "thank_you", f"message:{reply}")
    replayed = insert_reminder(db.conn, priya, "follow_up", f"message:{ask}", "snoozed")
    orphan = insert_reminder(db.conn, priya, "check_in", "message:999")
    single = insert_reminder(db.conn, sam, "follow_up", f"message:{sam_ask}")
    timeutil.set_clock(lambda: START + timedelta(days=30))
    try:
        migrate_db(db)
    finally:
        timeutil.set_clock(None)
    rows = {r[0]: r[1:] for r in db.conn.execute(
        "SELECT id, status, resolved_at, resolved_by, snoozed_until FROM reminders")}
    assert rows == {
        kept: ("open", None, None, None),
        replayed: ("done", iso(START + timedelta(days=2)), reply, None),
        orphan: ("done", iso(START + timedelta(days=30)), None, None),  # no anchor time: the upgrade's clock
        single: ("open", None, None, None),
    }
    with pytest.raises(sqlite3.IntegrityError):
        insert_reminder(db.conn, priya, "check_in", "message:1000")


# --- one truth, whatever happens in between -----------------------------------------------

CONTACTS = [("Priya Shah", "priya@example.org"), ("Sam Lee", "sam@example.net"), ("Lee Park", "lee@example.com")]
STRANGER = ("Xena Stray", "xena@example.io")  # mail with her counts once she is added as a contact
THANK_YOUS_OWED = next(q["sql"] for db in json.loads(
    (Path(__file__).resolve().parent.parent / "syncagent/serve/metadata.json").read_text())["databases"].values()
    for name, q in db.get("queries", {}).items() if name == "thank_yous_owed")

people = st.sampled_from([a for _, a in CONTACTS] + [STRANGER[1]])
steps = st.one_of(
    # a message dated up to 40 days before the clock, or (mis-dated) up to 2 days after it
    st.tuples(st.just("mail"), people, st.sampled_from(["outgoing", "incoming"]), st.integers(-48, 24 * 40)),
    st.tuples(st.just("tick"), st.integers(1, 24 * 45)),  # the real clock moves on
    st.tuples(st.just("sync")),  # the derived stages run at the real clock, as after a sync
    st.tuples(st.just("replay"), st.integers(-24 * 200, 24 * 200), st.booleans()),  # --now, maybe --due
    st.tuples(st.just("cadence"), st.sampled_from([a for _, a in CONTACTS]), st.sampled_from([None, 1, 20, 45])),
    st.tuples(st.just("add_stranger")),
    st.tuples(st.just("act"), st.sampled_from(["done", "dismiss", "snooze"]), st.integers(0, 5)),
    st.tuples(st.just("check")),  # `reminders --json` at the real clock against the table
)


class World:
    def __init__(self, directory: Path):
        self.config_path = directory / "config.toml"
        self.config_path.write_text(f'timezone = "America/New_York"\n[database]\npath = "{directory / "s.db"}"\n')
        self.config = config_mod.load(self.config_path)
        self.db = open_db(self.config.database)
        for name, address in CONTACTS:
            add_contact(self.db, name, address)
        self.clock = START
        self.observer = sqlite3.connect(directory / "s.db")
        self.runner = CliRunner()

    def cli(self, *args) -> str:
        result = self.runner.invoke(cli, ["--config", str(self.config_path), *args], catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
        return result.output

    def snapshot(self) -> tuple:
        version = self.observer.execute("PRAGMA data_version").fetchone()[0]
        return version, list(self.observer.iterdump())

    def check(self) -> None:
        listed = json.loads(self.cli("reminders", "--json"))
        assert all(isinstance(r["id"], int) for r in listed)
        open_ids = {r[0] for r in self.observer.execute("SELECT id FROM reminders WHERE status = 'open'")}
        # A snooze that ran out since the last pass is owed again at the clock, though the
        # table says snoozed until the next pass wakes it.
        woken = {r[0] for r in self.observer.execute(
            "SELECT id FROM reminders WHERE status = 'snoozed' AND snoozed_until <= ?", [iso(self.clock)])}
        assert {r["id"] for r in listed} == open_ids | woken
        owed = {r[0] for r in self.observer.execute(THANK_YOUS_OWED, {"today": ""})}
        assert owed == {r["id"] for r in listed if r["kind"] == "thank_you" and r["id"] in open_ids}
        assert len({r["contact_id"] for r in listed}) == len(listed)

    def step(self, op: tuple) -> None:
        kind = op[0]
        if kind == "mail":
            _, address, direction, hours = op
            add_message(self.db, self.clock - timedelta(hours=hours), direction, address)
        elif kind == "tick":
            self.clock += timedelta(hours=op[1])
        elif kind == "sync":
            from syncagent.pipeline import stages

            stages.after_sync(self.db, self.config)
        elif kind == "replay":
            before = self.snapshot()
            args = ["reminders", "--json", "--now", iso(self.clock + timedelta(hours=op[1]))]
            listed = json.loads(self.cli(*args, *(["--due"] if op[2] else [])))
            assert len({r["contact_id"] for r in listed}) == len(listed)
            assert self.snapshot() == before, f"{args} wrote to the database"
        elif kind == "cadence":
            name = next(n for n, a in CONTACTS if a == op[1])
            cadence = ["--cadence-days", str(op[2])] if op[2] else []
            self.cli("contacts", "add", name, op[1], *cadence)
        elif kind == "add_stranger":
            self.cli("contacts", "add", *STRANGER)
        elif kind == "act":
            _, action, pick = op
            active = [r[0] for r in self.db.conn.execute(
                "SELECT id FROM reminders WHERE status IN ('open', 'snoozed') ORDER BY id")]
            if not active:
                return
            until = ["--until", iso(self.clock + timedelta(days=pick + 1))] if action == "snooze" else []
            self.cli("reminders", action, str(active[pick % len(active)]), *until)
        elif kind == "check":
            self.check()
        assert open_rows_per_contact(self.observer) <= 1, op


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(steps, st.integers(-24 * 60, 24 * 60)), min_size=3, max_size=16))
def test_table_and_commands_stay_one_truth(ops):
    """Any interleaving of new mail, clock ticks, syncs, --now replays, contact changes and done/dismiss/
    snooze keeps at most one open reminder per contact; replays never change the database; and the
    table's open rows (Datasette's "who I owe a thank-you" included) are what `reminders --json` lists."""
    with tempfile.TemporaryDirectory() as directory:
        world = World(Path(directory))
        timeutil.set_clock(lambda: world.clock)
        try:
            for op, replay_at in ops:
                world.step(op)
                world.step(("replay", replay_at, False))  # a replay between any two things
            world.check()
        finally:
            timeutil.set_clock(None)
            world.observer.close()
            world.db.conn.close()
