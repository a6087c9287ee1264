"""Reply rate and response times over the contacts reached, overall and per segment.

A contact is *reached* once at least one outgoing message involved them; they
*replied* when the ledger recorded at least one reply to an ask (an incoming
message that answered an unanswered run). Response times are each contact's
first reply, in hours. "Last 90 days" keeps the contacts whose first outreach
falls in the 90 days (of 24 hours) before the instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from syncagent.ledger.turns import Ledger
from syncagent.timeutil import iso, parse_iso

RECENT_DAYS = 90
NO_SEGMENT = "(none)"
PERIODS = (("all_time", "all time"), ("last_90_days", f"last {RECENT_DAYS} days"))


@dataclass(frozen=True)
class Reached:
    """What stats needs of one contact reached by at least one outgoing message."""

    segment: str
    first_outreach_at: datetime
    first_response_seconds: int | None  # None: never replied


def from_tables(db) -> list[Reached]:
    """The reached contacts as the stored ledger tables (last recompute) have them."""
    rows = db.execute(
        "SELECT c.segment, l.first_outreach_at, "
        " (SELECT r.response_seconds FROM replies r WHERE r.contact_id = c.id "
        "  ORDER BY r.replied_at, r.message LIMIT 1) "
        "FROM contacts c JOIN contact_ledger l ON l.contact_id = c.id "
        "WHERE l.messages_sent > 0 AND l.first_outreach_at IS NOT NULL"
    ).fetchall()
    return [Reached(_segment(seg), parse_iso(first), seconds) for seg, first, seconds in rows]


def from_ledgers(db, ledgers: dict[int, Ledger]) -> list[Reached]:
    """The reached contacts from ledgers computed in memory (``stats --now``)."""
    segments = dict(db.execute("SELECT id, segment FROM contacts").fetchall())
    return [
        Reached(_segment(segments.get(cid)), led.first_outreach_at, led.replies[0].seconds if led.replies else None)
        for cid, led in ledgers.items()
        if led.messages_sent > 0 and led.first_outreach_at is not None
    ]


def summarize(reached: list[Reached], now: datetime, by: str | None = None) -> dict:
    """The stable report object printed by ``stats --json``.

    ``{"now", "by", "overall": {"all_time": G, "last_90_days": G}, "groups": [{"segment", "all_time",
    "last_90_days"}]}`` where G is ``{"reached", "replied", "reply_rate", "median_first_response_hours",
    "p90_first_response_hours"}``; ``groups`` is empty unless ``by == "segment"``.
    """
    report: dict = {"now": iso(now), "by": by, "overall": _periods(reached, now), "groups": []}
    if by == "segment":
        # Named segments alphabetically, "(none)" last.
        names = sorted({r.segment for r in reached}, key=lambda s: (s == NO_SEGMENT, s.lower(), s))
        report["groups"] = [
            {"segment": name, **_periods([r for r in reached if r.segment == name], now)} for name in names
        ]
    elif by is not None:
        raise ValueError(f"unknown grouping {by!r}")
    return report


def render(report: dict) -> str:
    """A small aligned table of the report for people (segment names made safe for a terminal)."""
    from syncagent.safe_text import for_terminal

    header = ["segment", "period", "reached", "replied", "rate", "median h", "p90 h"]
    rows = [["(all)", label, *_cells(report["overall"][key])] for key, label in PERIODS]
    for group in report["groups"]:
        rows += [[for_terminal(group["segment"]), label, *_cells(group[key])] for key, label in PERIODS]
    if not report["groups"]:
        header, rows = header[1:], [r[1:] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    text_cols = 2 if report["groups"] else 1  # left-aligned labels, right-aligned figures

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < text_cols else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([f"Replies to outreach as of {report['now']}", line(header), *map(line, rows)])


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def _periods(reached: list[Reached], now: datetime) -> dict:
    since = now - timedelta(days=RECENT_DAYS)
    recent = [r for r in reached if since <= r.first_outreach_at <= now]
    return {"all_time": _group(reached), "last_90_days": _group(recent)}


def _group(reached: list[Reached]) -> dict:
    hours = [r.first_response_seconds / 3600 for r in reached if r.first_response_seconds is not None]
    return {
        "reached": len(reached),
        "replied": len(hours),
        "reply_rate": round(len(hours) / len(reached), 4) if reached else None,
        "median_first_response_hours": _round(percentile(hours, 0.5)),
        "p90_first_response_hours": _round(percentile(hours, 0.9)),
    }


def _cells(group: dict) -> list[str]:
    rate = group["reply_rate"]
    return [
        str(group["reached"]),
        str(group["replied"]),
        "-" if rate is None else f"{rate:.0%}",
        _fmt(group["median_first_response_hours"]),
        _fmt(group["p90_first_response_hours"]),
    ]


def _fmt(hours: float | None) -> str:
    return "-" if hours is None else f"{hours:.1f}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _segment(value: str | None) -> str:
    value = (value or "").strip()
    return value or NO_SEGMENT
