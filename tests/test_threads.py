"""Threads join only through ids that can name a message (RFC 5322: id-left "@" id-right)."""

import email
import re
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlite_utils

from syncagent import config
from syncagent.parse.headers import parse_message
from syncagent.pipeline import stages, sync
from syncagent.store import db as store
from syncagent.store.migrations import migrations

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
LKML = CORPORA / "notmuch" / "lkml"


def make_config(tmp_path, path):
    return config.parse({"database": {"path": str(tmp_path / "s.db")},
                         "accounts": [{"name": "lkml", "kind": "maildir", "path": str(path),
                                       "addresses": ["nobody@example.org"]}]}, tmp_path / "c.toml")


def corpus_groups(folder: Path) -> dict[str, str]:
    """Message-ID -> a group name, from the corpus's own headers, read with the stdlib.

    Every distinct Message-ID is a message; each is linked to every <id> of its
    In-Reply-To and References that holds an "@" (the only other ids in lkml are
    94 copies of git send-email's "<yes>"); a group is a connected set of links.
    """
    parent: dict[str, str] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    own = set()
    for path in sorted((folder / "cur").iterdir()):
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f)
        mid = re.findall(r"<([^<>\s]+)>", str(msg.get("Message-ID", "")))[0]
        own.add(mid)
        find(mid)
        for header in ("In-Reply-To", "References"):
            for other in re.findall(r"<([^<>\s]+)>", str(msg.get(header, ""))):
                if "@" in other:
                    parent[find(other)] = find(mid)
    return {mid: find(mid) for mid in own}


def partition(pairs) -> set[frozenset]:
    groups: dict[str, set] = {}
    for member, group in pairs:
        groups.setdefault(group, set()).add(member)
    return {frozenset(g) for g in groups.values()}


def test_lkml_patch_series_are_not_merged_through_in_reply_to_yes(tmp_path):
    """The real LKML threads stay 19 apart: git send-email's 'In-Reply-To: <yes>' joins none of them."""
    if not LKML.exists():
        pytest.skip("../shared/corpora is not present")
    expected = corpus_groups(LKML)
    # 210 files, 176 distinct Message-IDs, 19 groups; linking through <yes> too gave 7,
    # one of them 100 messages long.
    assert len(expected) == 176 and len(set(expected.values())) == 19
    cfg = make_config(tmp_path, LKML)
    db = store.open_db(cfg.database)
    assert sync.sync_all(db, cfg)[0].new_messages == 176
    assert db.execute("SELECT count(*) FROM threads").fetchone()[0] == 19
    stored = db.execute("SELECT message_id, thread_id FROM messages").fetchall()
    assert partition(stored) == partition(expected.items()), "each thread is exactly one group of real links"
    links = db.execute("SELECT in_reply_to, refs FROM messages").fetchall()
    assert all("@" in i for irt, refs in links for i in [irt, *(refs or "").split()] if i)


def test_ids_without_at_link_nothing_and_a_message_id_without_at_is_replaced():
    """'<yes>' in In-Reply-To or References is dropped; a Message-ID '<1234>' gets the stable fallback id."""
    m = parse_message(b"Message-ID: <a@x>\r\nIn-Reply-To: <yes>\r\nReferences: <p@x> <yes> <@x> <q@>\r\n\r\n")
    assert m.in_reply_to == "p@x" and m.references == ("p@x",)
    m = parse_message(b"Message-ID: <a@x>\r\nIn-Reply-To: <yes>\r\n\r\n")
    assert m.in_reply_to is None and m.references == ()
    raw = b"From: a@b.com\r\nSubject: hi\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1234>\r\n\r\n"
    one, two = parse_message(raw), parse_message(raw.replace(b"<1234>", b"<1234>   "))
    assert one.message_id == two.message_id
    assert one.message_id.startswith("sha1-") and one.message_id.endswith("@syncagent.invalid")


def test_a_database_stored_before_keeps_its_rows_and_drops_the_false_links(tmp_path):
    """Upgrading a database that linked through '<yes>' splits the threads and renames a Message-ID '<1>'."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    old = sqlite_utils.Database(conn)
    migrations.apply(old, stop_before="0005_ids_name_messages")
    rows = [  # as the parser stored them before: two unrelated patches answering "yes"
        ("a@x", None, None, "2026-11-02T10:00:00Z", "p@x", "one"),
        ("b@x", "yes", "yes", "2026-11-02T11:00:00Z", "p@x", "two"),
        ("c@x", "yes", "a@x yes", "2026-11-02T12:00:00Z", "p@x", "three"),
        ("1", None, None, "2026-11-02T13:00:00Z", "q@x", "four"),
    ]
    for mid, irt, refs, date, sender, subject in rows:
        conn.execute(
            "INSERT INTO messages (account, message_id, thread_id, in_reply_to, refs, date, from_address, subject,"
            " direction, first_seen_at) VALUES ('l', ?, ?, ?, ?, ?, ?, ?, 'incoming', ?)",
            [mid, "tyes" if irt or mid == "a@x" else "tone", irt, refs, date, sender, subject, date])
    conn.execute("INSERT INTO threads (id, account, message_count) VALUES ('tyes', 'l', 3), ('tone', 'l', 1)")
    conn.execute("INSERT INTO pipeline_state (name, value) VALUES ('derived', '{}')")
    conn.close()

    db = store.open_db(path)
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 4
    got = {r[0]: r[1:] for r in db.execute("SELECT subject, in_reply_to, refs FROM messages")}
    assert got["two"] == (None, None) and got["three"] == ("a@x", "a@x")
    four = db.execute("SELECT message_id FROM messages WHERE subject = 'four'").fetchone()[0]
    assert four == parse_message(b"From: q@x\r\nSubject: four\r\nDate: Mon, 2 Nov 2026 13:00:00 +0000\r\n"
                                 b"Message-ID: <1>\r\n\r\n").message_id
    # No new mail, yet the next pass re-derives the threads.
    stages.after_sync(db, make_config(tmp_path, tmp_path), now=datetime(2026, 11, 3, tzinfo=timezone.utc))
    assert sorted(r[0] for r in db.execute("SELECT message_count FROM threads")) == [1, 1, 2]
