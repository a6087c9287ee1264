"""The derived stages re-derive only what changed, and that is never different from re-deriving
everything: after any sequence of mail, contact edits, config changes, clock moves and reminder
decisions, a full pass over a copy of the database finds nothing to change."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from syncagent import config as config_mod
from syncagent.ledger import what_works
from syncagent.pipeline import outreach, reminders, stages
from syncagent.store.db import open_db
from syncagent.timeutil import iso

ME, ALIAS = "me@example.com", "me.alias@example.com"
START = datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc)  # a Monday
PEOPLE = [f"p{i}@example.org" for i in range(7)]  # contacts and strangers are drawn from these
COMPANIES = [None, "Acme", "acme ", "Globex"]

# Every derived table, without the column that says when a row was last written.
TABLES = {
    "contact_ledger": "SELECT * FROM contact_ledger ORDER BY contact_id",
    "replies": "SELECT * FROM replies ORDER BY contact_id, message",
    "contact_messages": "SELECT * FROM contact_messages ORDER BY contact_id, message",
    "reminders": "SELECT * FROM reminders ORDER BY id",
    "introductions": "SELECT message, contact_id, introducer_address, introducer_name, introducer_contact_id, at, "
                     "converted_at, converted_by FROM introductions ORDER BY message, contact_id",
    "overall_stats": "SELECT * FROM overall_stats ORDER BY period",
    "segment_stats": "SELECT * FROM segment_stats ORDER BY segment, period",
    "weekly_stats": "SELECT * FROM weekly_stats ORDER BY week",
    "outreach_asks": "SELECT * FROM outreach_asks ORDER BY message, contact_id",
    "outreach_buckets": "SELECT * FROM outreach_buckets ORDER BY dimension, bucket",
    "derived_rechecks": "SELECT * FROM derived_rechecks ORDER BY holder",
    "derived_inputs": "SELECT * FROM derived_inputs ORDER BY contact_id",
}
UNTIMED = {"contact_ledger", "weekly_stats"}  # their computed_at says when the row was last written


def snapshot(conn: sqlite3.Connection) -> dict[str, list]:
    out = {}
    for table, sql in TABLES.items():
        cur = conn.execute(sql)
        cols = [d[0] for d in cur.description]
        keep = [i for i, c in enumerate(cols) if not (table in UNTIMED and c == "computed_at")]
        out[table] = [tuple(row[i] for i in keep) for row in cur.fetchall()]
    return out


class World:
    """A database, the config and the clock, changed one step at a time."""

    def __init__(self, path):
        self.db = open_db(path)
        self.path = path
        self.now = START
        self.alias = False
        self.follow_up_days = 3
        self.check_in_days = 20.0
        self.messages = 0

    def config(self):
        addresses = [ME, ALIAS] if self.alias else [ME]
        return config_mod.parse({
            "timezone": "America/New_York",
            "accounts": [{"name": "test", "kind": "maildir", "path": str(self.path.parent), "addresses": addresses},
                         {"name": "other", "kind": "maildir", "path": str(self.path.parent), "addresses": addresses}],
            "reminders": {"follow_up_after_business_days": self.follow_up_days, "check_in_after_days": self.check_in_days,
                          "close_loop_after_days": 2, "next_contact_after_business_days": 2, "max_unanswered": 2},
        }, None)

    def contacts(self) -> list[int]:
        return [cid for (cid,) in self.db.conn.execute("SELECT id FROM contacts ORDER BY id")]

    def message(self, sender: str, to: list[str], cc: list[str], hours: float, *, automatic: int = 0,
                ooo: str | None = None, ics: str | None = None, measured: int | None = None) -> None:
        conn = self.db.conn
        self.messages += 1
        when = iso(self.now - timedelta(hours=hours))
        direction = "outgoing" if sender in self.own() else "incoming"
        mid = conn.execute(
            "INSERT INTO messages (account, message_id, date, from_address, subject, direction, automatic, "
            "first_seen_at, ooo_until) VALUES ('test', ?, ?, ?, ?, ?, ?, ?, ?)",
            [f"<m{self.messages}@test>", when, sender, f"Subject {self.messages % 3}", direction, automatic, when,
             ooo]).lastrowid
        rows = {("from", sender)} | {("to", a) for a in to} | {("cc", a) for a in cc}
        conn.executemany("INSERT INTO message_addresses (message, role, address) VALUES (?, ?, ?)",
                         [(mid, role, a) for role, a in sorted(rows)])
        if ics:
            conn.execute("INSERT INTO calendar_parts (message, ics) VALUES (?, ?)", [mid, ics])
        if measured is not None and direction == "outgoing":
            conn.execute("INSERT INTO outreach (message, words, questions, subject_words, connection, personalized, "
                         "fingerprint) VALUES (?, ?, ?, 3, ?, ?, ?)",
                         [mid, 40 + 50 * measured, measured, measured % 2, measured % 2, measured])
        conn.commit()

    def own(self) -> set[str]:
        return {ME, ALIAS} if self.alias else {ME}

    def apply(self, step) -> None:
        kind, *args = step
        conn = self.db.conn
        if kind == "mail":
            who, outgoing, hours, cc, measured = args
            if outgoing:
                self.message(ALIAS if hours % 3 == 0 else ME, [PEOPLE[who]], [PEOPLE[c] for c in cc], hours,
                             measured=measured)
            else:
                self.message(PEOPLE[who], [ME], [PEOPLE[c] for c in cc], hours)
        elif kind == "auto":
            who, hours, back_days = args
            back = (self.now - timedelta(hours=hours) + timedelta(days=back_days)).date().isoformat()
            self.message(PEOPLE[who], [ME], [], hours, automatic=1, ooo=back)
        elif kind == "meeting":
            who, hours, cancelled = args
            end = self.now - timedelta(hours=hours)
            start = end - timedelta(hours=1)
            fmt = "%Y%m%dT%H%M%SZ"
            ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
                   f"UID:meet{self.messages}@test\r\nSEQUENCE:0\r\nDTSTAMP:20261101T000000Z\r\n"
                   f"DTSTART:{start:{fmt}}\r\nDTEND:{end:{fmt}}\r\nORGANIZER:mailto:{ME}\r\n"
                   f"ATTENDEE;CN=Someone:mailto:{PEOPLE[who]}\r\nSUMMARY:Coffee\r\n"
                   f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
            self.message(ME, [PEOPLE[who]], [], hours + 48, ics=ics)
        elif kind == "add":
            address, name, company = args
            if conn.execute("SELECT 1 FROM contact_emails WHERE address = ?", [PEOPLE[address]]).fetchone():
                return
            cid = conn.execute("INSERT INTO contacts (name, company, created_at, updated_at) VALUES (?, ?, ?, ?)",
                               [name, COMPANIES[company], iso(self.now), iso(self.now)]).lastrowid
            conn.execute("INSERT INTO contact_emails (address, contact_id, position) VALUES (?, ?, 0)",
                         [PEOPLE[address], cid])
        elif kind == "edit":
            pick, company, cadence = args
            ids = self.contacts()
            if ids:
                conn.execute("UPDATE contacts SET company = ?, cadence_days = ?, updated_at = ? WHERE id = ?",
                             [COMPANIES[company], cadence, iso(self.now), ids[pick % len(ids)]])
        elif kind == "delete":
            ids = self.contacts()
            if ids:
                conn.execute("DELETE FROM contacts WHERE id = ?", [ids[args[0] % len(ids)]])
        elif kind == "move":
            address, pick = args
            ids = self.contacts()
            if ids:
                conn.execute("UPDATE contact_emails SET contact_id = ? WHERE address = ?",
                             [ids[pick % len(ids)], PEOPLE[address]])
        elif kind == "copy":
            # The same message held by a second account, dated apart where its Date was missing
            # and each account's arrival time stood in: the copy with the lowest id counts.
            pick, shift = args
            rows = conn.execute("SELECT id FROM messages WHERE account = 'test' ORDER BY id").fetchall()
            if rows:
                source = rows[pick % len(rows)][0]
                when = conn.execute("SELECT date FROM messages WHERE id = ?", [source]).fetchone()[0]
                moved = iso(datetime.fromisoformat(when) + timedelta(hours=shift))
                cur = conn.execute(
                    "INSERT INTO messages (account, message_id, date, from_address, subject, direction, automatic, "
                    "first_seen_at) SELECT 'other', message_id, ?, from_address, subject, direction, automatic, ? "
                    "FROM messages WHERE id = ? AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.account = 'other' "
                    "AND o.message_id = messages.message_id)", [moved, iso(self.now), source])
                if cur.rowcount == 1:
                    conn.execute("INSERT INTO message_addresses (message, role, address, name) "
                                 "SELECT ?, role, address, name FROM message_addresses WHERE message = ?",
                                 [cur.lastrowid, source])
        elif kind == "forget":
            # An address row of a stored message taken out (as an upgrade that merges two
            # spellings of one address does), or one added to it (a second copy that names a Bcc).
            pick, widen = args
            rows = conn.execute("SELECT id FROM messages ORDER BY id").fetchall()
            if rows:
                pk = rows[pick % len(rows)][0]
                if widen is None:
                    conn.execute("DELETE FROM message_addresses WHERE rowid = (SELECT max(rowid) FROM "
                                 "message_addresses WHERE message = ? AND role != 'from')", [pk])
                else:
                    conn.execute("INSERT OR IGNORE INTO message_addresses (message, role, address) VALUES (?, 'cc', ?)",
                                 [pk, PEOPLE[widen]])
        elif kind == "alias":
            self.alias = not self.alias
        elif kind == "settings":
            self.follow_up_days, self.check_in_days = args
        elif kind == "clock":
            self.now += timedelta(hours=args[0])
        elif kind == "decide":
            action, pick = args
            items = reminders.stored(self.db, self.config(), self.now)
            if items:
                item = items[pick % len(items)]
                reminders.mark(self.db, item["id"], action, now=self.now,
                               until=self.now + timedelta(hours=30) if action == "snooze" else None)
        conn.commit()


people = st.integers(0, len(PEOPLE) - 1)
hours = st.integers(-30, 24 * 20)  # negative: dated in the future, reached later by the clock
steps = st.one_of(
    st.tuples(st.just("mail"), people, st.booleans(), hours, st.lists(people, max_size=2),
              st.one_of(st.none(), st.integers(0, 2))),
    st.tuples(st.just("auto"), people, st.integers(0, 48), st.integers(1, 20)),
    st.tuples(st.just("meeting"), people, st.integers(-30, 24 * 5), st.booleans()),
    st.tuples(st.just("add"), people, st.sampled_from(["Ann", "Bo", "Cy"]), st.integers(0, len(COMPANIES) - 1)),
    st.tuples(st.just("edit"), st.integers(0, 9), st.integers(0, len(COMPANIES) - 1),
              st.one_of(st.none(), st.sampled_from([5.0, 30.0]))),
    st.tuples(st.just("delete"), st.integers(0, 9)),
    st.tuples(st.just("move"), people, st.integers(0, 9)),
    st.tuples(st.just("copy"), st.integers(0, 20), st.sampled_from([0, -5, 3, 30])),
    st.tuples(st.just("forget"), st.integers(0, 20), st.one_of(st.none(), people)),
    st.tuples(st.just("alias")),
    st.tuples(st.just("settings"), st.integers(1, 5), st.sampled_from([10.0, 20.0])),
    st.tuples(st.just("clock"), st.sampled_from([1, 5, 30, 24 * 3, 24 * 12, 24 * 40])),
    st.tuples(st.just("decide"), st.sampled_from(["done", "dismiss", "snooze"]), st.integers(0, 9)),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.lists(st.tuples(st.just("add"), people, st.sampled_from(["Ann", "Bo"]),
                          st.integers(0, len(COMPANIES) - 1)), min_size=2, max_size=4),
       st.lists(steps, min_size=1, max_size=14))
# Always tried: mail dated ahead that the clock reaches, and copies in a second account dated
# before and after the original (the lowest id counts, once its date is reached).
@example([("add", 0, "Ann", 0), ("add", 1, "Bo", 1)],
         [("mail", 0, True, 50, [], None), ("mail", 0, False, -3, [1], None), ("copy", 0, -5), ("copy", 1, 30),
          ("mail", 1, True, 20, [], 1), ("copy", 2, 0), ("clock", 5), ("clock", 30)])
# And address rows of stored messages taken out and added.
@example([("add", 0, "Ann", 0), ("add", 1, "Bo", 1)],
         [("mail", 0, True, 50, [], None), ("mail", 0, False, 40, [1], None), ("meeting", 1, 10, False),
          ("forget", 1, 1), ("forget", 1, None), ("forget", 1, None), ("mail", 1, True, 20, [], 1)])
# And an earlier reply to a measured ask coming after the one that answered it: the ask stays
# answered, but its outreach row's response time moves.
@example([("add", 0, "Ann", 0), ("add", 1, "Bo", 1)],
         [("mail", 0, True, 50, [], 1), ("mail", 0, False, 10, [], None), ("mail", 0, False, 30, [], None)])
def test_incremental_passes_equal_a_full_rederivation(tmp_path_factory, contacts, sequence):
    """After every step, the rows an incremental pass left are exactly those a full pass derives at
    the same instant: no contact, company, introduction, week or reminder is ever left stale."""
    path = tmp_path_factory.mktemp("inc") / "w.db"
    world = World(path)
    for step in contacts:
        world.apply(step)
    stages.after_sync(world.db, world.config(), now=world.now, force=True)
    for step in sequence:
        world.apply(step)
        stages.after_sync(world.db, world.config(), now=world.now)
        incremental = snapshot(world.db.conn)
        # What every pass reads to know that mail came or went: kept by triggers, never counted.
        assert world.db.conn.execute("SELECT messages, addresses, calendar_parts FROM mail_counts").fetchone() == \
            tuple(world.db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("messages", "message_addresses", "calendar_parts")), step
        copy = sqlite3.connect(":memory:")
        world.db.conn.backup(copy)
        full_db = open_db(path.parent / "full.db")
        copy.backup(full_db.conn)
        stages.after_sync(full_db, world.config(), now=world.now, force=True)
        full = snapshot(full_db.conn)
        full_db.conn.close()
        (path.parent / "full.db").unlink()
        for table in TABLES:
            assert incremental[table] == full[table], (table, step)


def test_stored_what_works_figures_are_those_computed_at_the_instant(tmp_path):
    """`stats --by words` reads the stored buckets; they give the reply rate and median that
    evaluating the asks at that instant gives, for an odd and an even number of replies."""
    world = World(tmp_path / "w.db")
    for who in range(5):
        world.apply(("add", who, "Ann", 0))
    for who in range(5):
        world.apply(("mail", who, True, 200, [], 0))  # one measured ask each, under 75 words
    for who, after in ((0, 10), (1, 20), (2, 40)):
        world.apply(("mail", who, False, 200 - after, [], None))
    stages.after_sync(world.db, world.config(), now=world.now)

    def words():
        stored = outreach.buckets(world.db, world.config(), "words")
        assert stored == what_works.figures(outreach.load_asks(world.db, world.config(), world.now), "words")
        return [(b["bucket"], b["asks"], b["replied"], b["median_first_response_hours"]) for b in stored]

    assert words() == [("under 75 words", 5, 3, 20.0)]
    world.apply(("mail", 3, False, 200 - 80, [], None))
    stages.after_sync(world.db, world.config(), now=world.now)
    assert words() == [("under 75 words", 5, 4, 30.0)]  # the middle two, 20 h and 40 h


def test_an_introduction_held_by_two_accounts_names_its_first_copy(tmp_path):
    """The same introducing message synced from two accounts is one introduction, and the row
    names the copy stored first (id 9, though "message:10" sorts before "message:9")."""
    world = World(tmp_path / "w.db")
    for who in (0, 1):
        world.apply(("add", who, "Ann", 0))
    for n in range(8):  # eight messages from strangers, so the introduction gets id 9
        world.message(PEOPLE[6], [ME], [], 300 - n)
    world.message(PEOPLE[0], [ME], [PEOPLE[1]], 100)
    world.apply(("copy", 8, 0))
    world.apply(("mail", 1, False, 50, [], None))  # the introduced contact writes: converted
    ids = [i for (i,) in world.db.conn.execute("SELECT id FROM messages WHERE message_id = '<m9@test>' ORDER BY id")]
    assert ids == [9, 10]
    stages.after_sync(world.db, world.config(), now=world.now)
    rows = world.db.conn.execute("SELECT message, introducer_address FROM introductions").fetchall()
    assert rows == [(9, PEOPLE[0])]


def test_a_full_pass_in_groups_judges_mass_mail_across_them(tmp_path, monkeypatch):
    """A full pass writes the asks a few contacts at a time; a template sent to three contacts
    in a week is mass mail even when each contact's rows are written in a group of its own."""
    rows = {}
    for chunk in (outreach._ASKS_CHUNK, 1):
        monkeypatch.setattr(outreach, "_ASKS_CHUNK", chunk)
        world = World(tmp_path / f"w{chunk}.db")
        for who in range(4):
            world.apply(("add", who, "Ann", 0))
        for who, hours in ((0, 100), (1, 91), (2, 80)):
            world.apply(("mail", who, True, hours, [], 7))  # one text to three people within a week
        world.apply(("mail", 3, True, 70, [], 8))  # another text, to one
        world.apply(("mail", 1, False, 60, [], None))
        stages.after_sync(world.db, world.config(), now=world.now, force=True)
        rows[chunk] = world.db.conn.execute(
            "SELECT contact_id, mass, replied FROM outreach_asks ORDER BY contact_id").fetchall()
    assert rows[1] == rows[outreach._ASKS_CHUNK]
    assert [(cid, mass) for cid, mass, _ in rows[1]] == [(1, "mass mail"), (2, "mass mail"), (3, "mass mail"),
                                                          (4, "one-to-one")]


def test_a_full_pass_counts_one_message_to_three_contacts_as_mass_mail(tmp_path):
    """One message to three contacts (To and Cc) is one stored text but three asks: mass mail,
    in a full pass as in an incremental one."""
    world = World(tmp_path / "w.db")
    for who in range(4):
        world.apply(("add", who, "Ann", 0))
    world.apply(("mail", 0, True, 100, [1, 2], 7))
    world.apply(("mail", 3, True, 89, [], 7))  # the same text a day later, to one more
    world.apply(("mail", 0, True, 80, [], 8))  # a follow-up in the same run: not an ask
    query = "SELECT contact_id, mass FROM outreach_asks ORDER BY contact_id"
    stages.after_sync(world.db, world.config(), now=world.now)
    incremental = world.db.conn.execute(query).fetchall()
    stages.after_sync(world.db, world.config(), now=world.now, force=True)
    assert world.db.conn.execute(query).fetchall() == incremental == [
        (1, "mass mail"), (2, "mass mail"), (3, "mass mail"), (4, "mass mail")]


def test_an_introduction_counts_beside_a_message_of_the_same_second(tmp_path):
    """Introduced means no event before the introducing message: one at the same instant does
    not make them already acquainted, so the introduction stands (and converts on the reply)."""
    world = World(tmp_path / "w.db")
    for who in (0, 1):
        world.apply(("add", who, "Ann", 0))
    world.message(PEOPLE[0], [ME], [PEOPLE[1]], 100)  # p0 introduces p1
    world.message(PEOPLE[1], [ME], [], 100)  # p1 writes the same second
    world.message(PEOPLE[1], [ME], [], 50)  # and again later
    stages.after_sync(world.db, world.config(), now=world.now)
    rows = world.db.conn.execute(
        "SELECT i.introducer_address, e.address, i.converted_by FROM introductions i "
        "JOIN contact_emails e ON e.contact_id = i.contact_id").fetchall()
    assert rows == [(PEOPLE[0], PEOPLE[1], "message:3")]


def test_new_mail_is_derived_when_the_mail_counts_row_was_deleted_by_hand(tmp_path):
    """The counts a pass compares are kept in mail_counts' one row; with that row gone, the mail
    is counted instead: a reply that came is still in the ledger."""
    world = World(tmp_path / "w.db")
    world.apply(("add", 0, "Ann", 0))
    world.apply(("mail", 0, True, 100, [], None))
    stages.after_sync(world.db, world.config(), now=world.now)
    world.db.conn.execute("DELETE FROM mail_counts")
    world.apply(("mail", 0, False, 50, [], None))
    stages.after_sync(world.db, world.config(), now=world.now)
    assert world.db.conn.execute("SELECT state, messages_received FROM contact_ledger").fetchone() == ("REPLIED", 1)
