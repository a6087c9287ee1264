"""What in the user's own outreach earns replies: the buckets, and the figures per bucket.

An *ask* is an outgoing message that started a new ask (none or ACKED -> ASKED);
its outcome is the ledger's: replied (the run it started got a reply) and the
response time of that reply. Each ask is put in one bucket per dimension:
words, questions, personalized, mass, connection, weekday, hour. Pure: the
sync stores the measures, this module says how they are grouped and counted,
and ``stats --by``, the digest and ``draft-check`` all read these functions.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Band = tuple[int, int | None, str]

DIMENSIONS = ("words", "questions", "personalized", "mass", "connection", "weekday", "hour")
MIN_ASKS = 5  # a bucket with fewer asks says nothing yet (the digest leaves it out)

WORD_BANDS: tuple[Band, ...] = ((0, 74, "under 75 words"), (75, 124, "75-124 words"), (125, 199, "125-199 words"),
              (200, None, "200+ words"))
QUESTION_BANDS: tuple[Band, ...] = ((0, 0, "no question"), (1, 2, "1-2 questions"), (3, 5, "3-5 questions"),
                  (6, None, "6+ questions"))
HOUR_BANDS: tuple[Band, ...] = ((5, 8, "early (5-9)"), (9, 11, "morning (9-12)"), (12, 13, "midday (12-14)"),
              (14, 17, "afternoon (14-18)"), (18, 21, "evening (18-22)"))
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class Ask:
    """One ask's measures (as stored in ``outreach``) and its outcome at the instant."""

    words: int
    questions: int
    personalized: bool
    mass: bool
    connection: bool
    weekday: int  # 0 = Monday, local time
    hour: int  # 0-23, local time
    replied: bool
    response_seconds: int | None


def _band(value: int, bands: tuple[Band, ...]) -> str:
    for low, high, label in bands:
        if value >= low and (high is None or value <= high):
            return label
    return "night (22-5)"


def bucket(ask: Ask, dimension: str) -> str:
    if dimension == "words":
        return _band(ask.words, WORD_BANDS)
    if dimension == "questions":
        return _band(ask.questions, QUESTION_BANDS)
    if dimension == "hour":
        return _band(ask.hour, HOUR_BANDS)
    if dimension == "weekday":
        return WEEKDAYS[ask.weekday]
    if dimension in ("personalized", "mass", "connection"):
        yes = bool(getattr(ask, dimension))
        return {"personalized": ("personalized", "not personalized"), "mass": ("mass mail", "one-to-one"),
                "connection": ("names a connection", "no connection named")}[dimension][0 if yes else 1]
    raise ValueError(f"unknown dimension {dimension!r}")


def order(dimension: str) -> list[str]:
    """The buckets of a dimension in reading order."""
    if dimension == "words":
        return [b[2] for b in WORD_BANDS]
    if dimension == "questions":
        return [b[2] for b in QUESTION_BANDS]
    if dimension == "hour":
        return [b[2] for b in HOUR_BANDS] + ["night (22-5)"]
    if dimension == "weekday":
        return list(WEEKDAYS)
    return [bucket(Ask(0, 0, v, v, v, 0, 0, False, None), dimension) for v in (True, False)]


def figures(asks: Iterable[Ask], dimension: str) -> list[dict[str, Any]]:
    """Per bucket: asks, replied, reply_rate, median_first_response_hours (None without replies)."""
    groups: dict[str, list[Ask]] = {}
    for ask in asks:
        groups.setdefault(bucket(ask, dimension), []).append(ask)
    out = []
    for label in order(dimension):
        group = groups.get(label, [])
        if not group:
            continue
        replied = [a for a in group if a.replied]
        seconds = [a.response_seconds for a in replied if a.response_seconds is not None]
        out.append({
            "bucket": label,
            "asks": len(group),
            "replied": len(replied),
            "reply_rate": round(len(replied) / len(group), 4),
            "median_first_response_hours": round(statistics.median(seconds) / 3600, 2) if seconds else None,
        })
    return out
