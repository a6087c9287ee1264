"""The stored reply figures (``overall_stats``, ``segment_stats``, ``weekly_stats``) and the
``contact_ledger`` columns they are counted from.

``pipeline.stats`` computes the figures (``ledger.figures`` defines them); these are its reads and
writes. The writes run inside the caller's transaction: the ledger stage stores the figures with
the rows they were counted from.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlite_utils import Database

# The column order of overall_stats and segment_stats after their key columns.
FIGURES = ("reached", "replied", "reply_rate", "median_first_response_hours", "p90_first_response_hours")

FigureRow = tuple[Any, ...]  # the key column(s), then FIGURES, in order
WeekRow = tuple[str, str, str, str, int, int, int, float | None, int, float | None, int, str]
StoredWeek = tuple[str, str, str, int, int, int, int, int]


def load_reached(db: Database) -> list[tuple[str | None, str, int | None]]:
    """(segment, first outreach, first response seconds) of each reached contact, by contact id."""
    return db.execute(
        "SELECT c.segment, l.first_outreach_at, l.first_response_seconds "
        "FROM contacts c JOIN contact_ledger l ON l.contact_id = c.id "
        "WHERE l.reached = 1 AND l.first_outreach_at IS NOT NULL ORDER BY c.id"
    ).fetchall()


def load_reached_recent(db: Database, since: str, now: str) -> Iterator[tuple[str | None, int, int | None]]:
    """(segment, reached in [``since``, ``now``] as 0/1, first response seconds) of each reached contact, by id."""
    return db.execute(
        "SELECT c.segment, l.first_outreach_at >= :since AND l.first_outreach_at <= :now, l.first_response_seconds "
        "FROM contacts c JOIN contact_ledger l ON l.contact_id = c.id "
        "WHERE l.reached = 1 AND l.first_outreach_at IS NOT NULL ORDER BY c.id", {"since": since, "now": now})


def load_reached_by_class(db: Database) -> list[tuple[str | None, str, int | None]]:
    """(responsiveness class, first outreach, first response seconds) of each reached contact, by id."""
    return db.execute(
        "SELECT responsiveness, first_outreach_at, first_response_seconds FROM contact_ledger "
        "WHERE reached = 1 AND first_outreach_at IS NOT NULL ORDER BY contact_id").fetchall()


def load_segments(db: Database) -> dict[int, str | None]:
    """contact id -> its segment."""
    return dict(db.execute("SELECT id, segment FROM contacts").fetchall())


def save_figures(conn: sqlite3.Connection, overall: Iterable[FigureRow], segments: Iterable[FigureRow]) -> None:
    """Replace overall_stats with ``overall`` (period, FIGURES, computed_at) and segment_stats with
    ``segments`` (segment, period, FIGURES, computed_at)."""
    conn.execute("DELETE FROM overall_stats")
    conn.executemany(
        "INSERT INTO overall_stats (period, reached, replied, reply_rate, median_first_response_hours, "
        "p90_first_response_hours, computed_at) VALUES (?, ?, ?, ?, ?, ?, ?)", overall)
    conn.execute("DELETE FROM segment_stats")
    conn.executemany(
        "INSERT INTO segment_stats (segment, period, reached, replied, reply_rate, median_first_response_hours, "
        "p90_first_response_hours, computed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", segments)


def save_all_weeks(conn: sqlite3.Connection, rows: Iterable[WeekRow]) -> None:
    """Replace weekly_stats with ``rows`` (week, start, end, timezone, messages_sent, asks, answered,
    reply_rate, replies, median_response_hours, meetings, computed_at)."""
    conn.execute("DELETE FROM weekly_stats")
    conn.executemany(
        "INSERT INTO weekly_stats (week, start_at, end_at, timezone, messages_sent, asks, answered, reply_rate, "
        "replies, median_response_hours, meetings, computed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def count_figures(db: Database) -> bool:
    """Are reply figures stored at all?"""
    return bool(db.execute("SELECT EXISTS (SELECT 1 FROM overall_stats)").fetchone()[0] == 1)


def load_overall(db: Database) -> list[FigureRow]:
    """(period, FIGURES, computed_at) of each stored overall figure."""
    return db.execute("SELECT period, reached, replied, reply_rate, median_first_response_hours, "
                      "p90_first_response_hours, computed_at FROM overall_stats").fetchall()


def load_segment_figures(db: Database) -> list[FigureRow]:
    """(segment, period, FIGURES) of each stored segment figure."""
    return db.execute("SELECT segment, period, reached, replied, reply_rate, "
                      "median_first_response_hours, p90_first_response_hours FROM segment_stats").fetchall()


def load_week_zones(db: Database) -> set[str]:
    """The time zones the stored weeks were cut in."""
    return {z for (z,) in db.execute("SELECT DISTINCT timezone FROM weekly_stats")}


def load_stored_week_rows(db: Database) -> list[StoredWeek]:
    """(week, start, end, messages_sent, asks, answered, replies, meetings) of each active week."""
    return db.execute(
        "SELECT week, start_at, end_at, messages_sent, asks, answered, replies, meetings FROM weekly_stats"
    ).fetchall()


def load_reply_times(db: Database, start: str, end: str) -> Sequence[int]:
    """The response times of the replies received in [``start``, ``end``), shortest first."""
    return tuple(s for (s,) in db.execute(
        "SELECT response_seconds FROM replies WHERE replied_at >= ? AND replied_at < ? ORDER BY response_seconds",
        [start, end],
    ))
