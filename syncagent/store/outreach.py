"""What the user's asks were and how they fared: ``outreach`` (measured at sync time), ``outreach_asks`` and
``outreach_buckets`` (derived after each sync, read by ``stats --by words`` and friends)."""

from __future__ import annotations

from typing import NamedTuple, TypedDict

from sqlite_utils import Database

from syncagent.store.db import transaction


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
