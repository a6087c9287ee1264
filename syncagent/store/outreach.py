"""What the user's asks were and how they fared: ``outreach`` (measured at sync time), ``outreach_asks`` and
``outreach_buckets`` (derived after each sync, read by ``stats --by words`` and friends)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import NamedTuple, TypedDict

from sqlite_utils import Database

from syncagent.store.db import transaction
from syncagent.timeutil import parse_iso


class Measures(NamedTuple):
    """The numbers measured from one sent message's text (the text itself is never kept)."""

    words: int
    questions: int
    connection: int
    personalized: int
    fingerprint: int


class StoredAsk(NamedTuple):
    """One ``outreach_asks`` row: an ask, its outcome, and its bucket in each dimension."""

    message: int
    contact_id: int
    asked_at: str
    replied: int
    response_seconds: int | None
    words: str
    questions: str
    personalized: str
    mass: str
    connection: str
    weekday: str
    hour: str


_ASK_COLUMNS = StoredAsk._fields


class StoredBucket(NamedTuple):
    """One ``outreach_buckets`` row; ``position`` keeps the buckets in their natural order."""

    dimension: str
    bucket: str
    position: int
    asks: int
    replied: int
    reply_rate: float | None
    median_first_response_hours: float | None


class BucketFigures(TypedDict):
    bucket: str
    asks: int
    replied: int
    reply_rate: float | None
    median_first_response_hours: float | None


def load_measures(db: Database) -> dict[int, Measures]:
    """Every measured sent message's numbers, by message id."""
    return {int(row[0]): Measures(*row[1:]) for row in db.execute(
        "SELECT message, words, questions, connection, personalized, fingerprint FROM outreach")}


def save_outreach(db: Database, asks: list[StoredAsk], buckets: list[StoredBucket]) -> None:
    """Replace the derived asks and buckets with these, in one transaction."""
    with transaction(db, "outreach") as conn:
        conn.execute("DELETE FROM outreach_asks")
        # One row per ask the mailbox ever held, rebuilt after each sync: set-wise, as tuples.
        conn.executemany(f"INSERT INTO outreach_asks ({', '.join(_ASK_COLUMNS)}) "
                         f"VALUES ({', '.join('?' for _ in _ASK_COLUMNS)})", asks)
        conn.execute("DELETE FROM outreach_buckets")
        db.table("outreach_buckets").insert_all(b._asdict() for b in buckets)


def load_buckets(db: Database, dimension: str) -> list[BucketFigures]:
    """The stored figures of each bucket of ``dimension``, in order."""
    cur = db.execute("SELECT bucket, asks, replied, reply_rate, median_first_response_hours FROM outreach_buckets "
                     "WHERE dimension = ? ORDER BY position", [dimension])
    return [{"bucket": b, "asks": a, "replied": r, "reply_rate": rate, "median_first_response_hours": hours}
            for b, a, r, rate, hours in cur.fetchall()]


def load_stored_asks(db: Database) -> list[StoredAsk]:
    """The stored asks (as of the last derive), oldest first."""
    cur = db.execute(f"SELECT {', '.join(_ASK_COLUMNS)} FROM outreach_asks ORDER BY asked_at, message")
    return [StoredAsk(*row) for row in cur.fetchall()]


# --- the incremental pass (pipeline.outreach.update), inside its transaction ---------------

def load_measures_of(conn: sqlite3.Connection, messages: Collection[int]) -> dict[int, Measures]:
    """The stored measures of the outgoing messages ``messages`` (those measured)."""
    if not messages:
        return {}
    return {int(row[0]): Measures(*row[1:]) for row in conn.execute(
        "SELECT message, words, questions, connection, personalized, fingerprint FROM outreach "
        "WHERE message IN (SELECT value FROM json_each(?))", [json.dumps(sorted(messages))])}


def load_fingerprints_of(conn: sqlite3.Connection, messages: Collection[int]) -> dict[int, int]:
    """message -> fingerprint of the outgoing messages ``messages`` (those measured)."""
    if not messages:
        return {}
    return dict(conn.execute("SELECT message, fingerprint FROM outreach WHERE message IN (SELECT value FROM json_each(?))",
                             [json.dumps(sorted(messages))]))


def load_shared_fingerprints(conn: sqlite3.Connection, messages: list[int], at_least: int) -> set[int]:
    """The fingerprints of at least ``at_least`` of ``messages``, a message listed twice counted twice."""
    if len(messages) < at_least:
        return set()
    return {fp for (fp,) in conn.execute(
        "SELECT o.fingerprint FROM json_each(?) j JOIN outreach o ON o.message = j.value "
        "GROUP BY o.fingerprint HAVING count(*) >= ?", [json.dumps(messages), at_least])}


def load_asks_by_fingerprint(conn: sqlite3.Connection,
                             fingerprints: Collection[int]) -> list[tuple[int, int, datetime, int, str]]:
    """(message, contact, asked at, fingerprint, mass bucket) of the stored asks with one of ``fingerprints``."""
    if not fingerprints:
        return []
    return [(pk, cid, parse_iso(at), fp, mass) for pk, cid, at, fp, mass in conn.execute(
        "SELECT a.message, a.contact_id, a.asked_at, o.fingerprint, a.mass FROM outreach o "
        "JOIN outreach_asks a ON a.message = o.message WHERE o.fingerprint IN (SELECT value FROM json_each(?))",
        [json.dumps(sorted(fingerprints))])]


def load_asks_of(conn: sqlite3.Connection, keys: Collection[tuple[int, int]]) -> set[tuple[object, ...]]:
    """The stored outreach_asks rows (every column of StoredAsk) of the (message, contact) ``keys``."""
    select = f"SELECT {', '.join(_ASK_COLUMNS)} FROM outreach_asks WHERE message = ? AND contact_id = ?"
    return {row for key in sorted(keys) for row in conn.execute(select, key)}


def save_mass(conn: sqlite3.Connection, rows: Iterable[tuple[str, int, int]]) -> None:
    """Set the mass bucket of asks: (bucket, message, contact)."""
    conn.executemany("UPDATE outreach_asks SET mass = ? WHERE message = ? AND contact_id = ?", list(rows))


def load_bucket_counts(conn: sqlite3.Connection, dimension: str) -> dict[str, tuple[int, int, int]]:
    """Per bucket of ``dimension``: (asks, replied, replied with a response time) of every stored ask."""
    column = _column(dimension)
    return {label: (int(n), int(r), int(k)) for label, n, r, k in conn.execute(
        f"SELECT {column}, count(*), total(replied), count(CASE WHEN replied = 1 THEN response_seconds END) "
        f"FROM outreach_asks GROUP BY {column}")}


def load_median_seconds(conn: sqlite3.Connection, dimension: str, bucket: str, timed: int) -> list[int]:
    """The middle response time (two, for an even count) of the ``timed`` replied asks in ``bucket``."""
    column = _column(dimension)
    return [int(s) for (s,) in conn.execute(
        f"SELECT response_seconds FROM outreach_asks WHERE {column} = ? AND replied = 1 "
        "AND response_seconds IS NOT NULL ORDER BY response_seconds LIMIT ? OFFSET ?",
        [bucket, 2 - timed % 2, (timed - 1) // 2])]


def _column(dimension: str) -> str:
    if dimension not in StoredAsk._fields[5:]:  # a column name, never a value from outside
        raise ValueError(f"unknown dimension {dimension!r}")
    return dimension


def save_buckets(conn: sqlite3.Connection, rows: Iterable[tuple[object, ...]]) -> None:
    """Make outreach_buckets hold ``rows`` (dimension, bucket, position, asks, replied, rate, median hours)."""
    rows = list(rows)
    if set(rows) == set(conn.execute("SELECT dimension, bucket, position, asks, replied, reply_rate, "
                                     "median_first_response_hours FROM outreach_buckets")):
        return
    conn.execute("DELETE FROM outreach_buckets")
    conn.executemany("INSERT INTO outreach_buckets (dimension, bucket, position, asks, replied, reply_rate, "
                     "median_first_response_hours) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
