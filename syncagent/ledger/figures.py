"""Every figure syncagent shows, defined once: pure functions of the contacts' ledgers.

The stored tables (contact_ledger, overall_stats, segment_stats, weekly_stats),
``stats``, the digest, Datasette's queries and the demo all read what these
functions return, so a figure can never mean two things. The definitions, in the
words of the README ("Ledger and stats"):

- **reached**: at least one message from you to the contact counted by the ledger
  (non-automatic, the contact in To, Cc or Bcc), at or before the instant;
- **replied**: the ledger recorded at least one reply to an ask (an incoming
  message from the contact while they were ASKED);
- **reply rate**: replied / reached, over the same contacts;
- **response time** of a reply: its date minus the first outgoing message of the
  unanswered run it answers; a contact's **first response time** is that of
  their first reply; **median** and **p90 first response** are taken over the
  first response times of the contacts who replied;
- **last 90 days**: the contacts whose first outreach falls in the 90 days (of 24
  hours) up to the instant;
- per ISO week (Monday to Sunday in the user's zone): **messages sent** (a mail
  to three contacts counts once), **asks** (outgoing messages that started an
  unanswered run), of them **answered** by the instant, **replies** received,
  their response times, and **meetings** ended.

No I/O here: the callers read the ledgers and write the results.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from syncagent.ledger.turns import MEETING, OUT, Ledger

RECENT_DAYS = 90
NO_SEGMENT = "(none)"  # the one label for a contact without a segment (missing or blank)
PERIODS = ("all_time", "last_90_days")


def segment_label(value: str | None) -> str:
    """The segment a contact is counted under: their segment trimmed, or NO_SEGMENT."""
    value = (value or "").strip()
    return value or NO_SEGMENT


def segment_order(name: str) -> tuple[bool, str, str]:
    """Named segments alphabetically (case-insensitively), NO_SEGMENT last."""
    return (name == NO_SEGMENT, name.lower(), name)


def hours(seconds: float) -> float:
    """Seconds as hours, to two decimals (36 s): every stored and shown figure in hours uses it."""
    return round(seconds / 3600, 2)


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


# --- per contact -------------------------------------------------------------

@dataclass(frozen=True)
class ContactFigures:
    """One contact's figures at an instant: what contact_ledger stores and contact_summary shows."""

    state: str | None
    reached: bool
    replied: bool
    first_outreach_at: datetime | None
    first_reply_at: datetime | None
    first_response_seconds: int | None
    first_response_hours: float | None
    median_response_hours: float | None  # over all their replies
    messages_sent: int
    messages_received: int
    last_interaction_at: datetime | None
    unanswered: int


def of_contact(led: Ledger) -> ContactFigures:
    seconds = [r.seconds for r in led.replies]
    first = seconds[0] if seconds else None
    return ContactFigures(
        state=led.state,
        reached=led.messages_sent > 0,
        replied=bool(seconds),
        first_outreach_at=led.first_outreach_at,
        first_reply_at=led.first_reply_at,
        first_response_seconds=first,
        first_response_hours=hours(first) if first is not None else None,
        median_response_hours=hours(statistics.median(seconds)) if seconds else None,
        messages_sent=led.messages_sent,
        messages_received=led.messages_received,
        last_interaction_at=led.last_interaction_at,
        unanswered=led.unanswered,
    )


# --- reply rate over a group of contacts -------------------------------------

@dataclass(frozen=True)
class Outreach:
    """What the reply figures need of one reached contact."""

    segment: str  # already segment_label()'d
    first_outreach_at: datetime
    first_response_seconds: int | None  # None: no reply to an ask


def outreach(segment: str | None, fig: ContactFigures) -> Outreach | None:
    """The contact as counted by the reply figures, or None when not reached."""
    if not fig.reached or fig.first_outreach_at is None:
        return None
    return Outreach(segment_label(segment), fig.first_outreach_at, fig.first_response_seconds)


def group(contacts: Iterable[Outreach]) -> dict[str, Any]:
    """``{"reached", "replied", "reply_rate", "median_first_response_hours", "p90_first_response_hours"}``."""
    return _group([c.first_response_seconds for c in contacts])


def _group(seconds: list[int | None]) -> dict[str, Any]:
    """``group`` of contacts given by their first response seconds (None: no reply)."""
    firsts = [s / 3600 for s in seconds if s is not None]
    return {
        "reached": len(seconds),
        "replied": len(firsts),
        "reply_rate": round(len(firsts) / len(seconds), 4) if seconds else None,
        "median_first_response_hours": _round(percentile(firsts, 0.5)),
        "p90_first_response_hours": _round(percentile(firsts, 0.9)),
    }


def periods(contacts: Iterable[Outreach], now: datetime) -> dict[str, dict[str, Any]]:
    """``{"all_time": group, "last_90_days": group}`` at ``now``."""
    contacts = list(contacts)
    since = now - timedelta(days=RECENT_DAYS)
    recent = [c for c in contacts if since <= c.first_outreach_at <= now]
    return {"all_time": group(contacts), "last_90_days": group(recent)}


@dataclass(frozen=True)
class ReplyFigures:
    """The reply figures at ``now``: overall and per segment (segments in segment_order)."""

    now: datetime
    overall: dict[str, dict[str, Any]]  # periods()
    segments: tuple[tuple[str, dict[str, dict[str, Any]]], ...]  # (segment, periods())


def reply_figures(contacts: Iterable[Outreach], now: datetime) -> ReplyFigures:
    since = now - timedelta(days=RECENT_DAYS)
    return tally(((c.segment, since <= c.first_outreach_at <= now, c.first_response_seconds) for c in contacts), now)


def tally(contacts: Iterable[tuple[str, bool, int | None]], now: datetime) -> ReplyFigures:
    """``reply_figures`` of reached contacts given as (segment, first reached in the last 90 days at
    ``now``, first response seconds or None): what the stored rows hold, so no date is parsed."""
    rows = list(contacts)
    by_segment: dict[str, list[tuple[str, bool, int | None]]] = {}
    for row in rows:
        by_segment.setdefault(row[0], []).append(row)

    def both(group_rows: list[tuple[str, bool, int | None]]) -> dict[str, dict[str, Any]]:
        return {"all_time": _group([r[2] for r in group_rows]), "last_90_days": _group([r[2] for r in group_rows if r[1]])}

    names = sorted(by_segment, key=segment_order)
    return ReplyFigures(now=now, overall=both(rows), segments=tuple((name, both(by_segment[name])) for name in names))


# --- per week ----------------------------------------------------------------

@dataclass
class WeekFigures:
    """One ISO week's activity with tracked contacts, as it stood at the instant."""

    week: str
    start: datetime  # UTC instant of Monday 00:00 local
    end: datetime  # UTC instant of the next Monday 00:00 local
    messages_sent: int = 0  # outgoing messages to contacts (one mail to three contacts is one)
    asks: int = 0  # new asks started this week
    answered: int = 0  # ... of which answered by the instant
    replies: int = 0  # replies received (answers to an ask)
    response_seconds: tuple[int, ...] = ()  # of those replies, shortest first
    meetings: int = 0  # meetings with contacts that ended this week

    @property
    def reply_rate(self) -> float | None:
        return pooled_reply_rate([self])

    @property
    def median_response_hours(self) -> float | None:
        return pooled_median_hours([self])


def pooled_reply_rate(weeks: Iterable[WeekFigures]) -> float | None:
    """Asks answered / asks started, over several weeks together."""
    weeks = list(weeks)
    asks = sum(w.asks for w in weeks)
    return round(sum(w.answered for w in weeks) / asks, 4) if asks else None


def pooled_median_hours(weeks: Iterable[WeekFigures]) -> float | None:
    """The median response time of every reply received in the weeks, in hours."""
    pooled = [s for w in weeks for s in w.response_seconds]
    return hours(statistics.median(pooled)) if pooled else None


def week_label(year: int, week: int) -> str:
    return f"{year}-W{week:02d}"


def week_of(instant: datetime, tz: tzinfo) -> tuple[int, int]:
    y, w, _ = instant.astimezone(tz).isocalendar()
    return y, w


def week_bounds(year: int, week: int, tz: tzinfo) -> tuple[datetime, datetime]:
    """UTC instants of local Monday 00:00 and the next Monday 00:00."""
    monday = date.fromisocalendar(year, week, 1)
    start = datetime.combine(monday, time(0), tzinfo=tz)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def shift_week(year: int, week: int, delta: int) -> tuple[int, int]:
    y, w, _ = (date.fromisocalendar(year, week, 1) + timedelta(weeks=delta)).isocalendar()
    return y, w


def empty_week(year: int, week: int, tz: tzinfo) -> WeekFigures:
    return WeekFigures(week_label(year, week), *week_bounds(year, week, tz))


def weeks(ledgers: Iterable[Ledger], tz: tzinfo) -> dict[str, WeekFigures]:
    """Every week holding at least one event of a ledger, keyed by its label (other weeks are all zero).

    Messages and meetings are counted once however many contacts they involve.
    """
    out: dict[str, WeekFigures] = {}

    def at(instant: datetime) -> WeekFigures:
        y, w = week_of(instant, tz)
        label = week_label(y, w)
        found = out.get(label)
        if found is None:
            found = out[label] = empty_week(y, w, tz)
        return found

    sent: set[str] = set()
    met: set[str] = set()
    for led in ledgers:
        for event in led.events:
            if event.kind == OUT and event.ref not in sent:
                sent.add(event.ref)
                at(event.at).messages_sent += 1
            elif event.kind == MEETING and event.ref not in met:
                met.add(event.ref)
                at(event.at).meetings += 1
        for r in led.replies:
            week = at(r.replied_at)
            week.replies += 1
            week.response_seconds += (r.seconds,)
        answered = {r.asked_at for r in led.replies}
        for ask in led.asks:
            week = at(ask.at)
            week.asks += 1
            week.answered += ask.at in answered
    for week in out.values():
        week.response_seconds = tuple(sorted(week.response_seconds))  # a bag: one order whatever the source
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
