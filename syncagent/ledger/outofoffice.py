"""Out of office: an auto-reply that names a return date moves the follow-up past it.

Pure: the return date D was read from the auto-reply's text at sync time
(``syncagent.parse.returndate``) and is all that is kept. An auto-reply from the
contact, arriving during the current unanswered run, whose D lies within
``WINDOW_DAYS`` after the auto-reply's own date, pushes that run's follow-up to
the later of its usual due and one business day after D, at the local time of
day of the last outgoing message (DESIGN.md, "Out of office"). An auto-reply
never counts as a reply: it is not an event of the turn ledger at all.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from syncagent.ledger import turns
from syncagent.ledger.businessdays import add_business_days

WINDOW_DAYS = 60  # a return date further out is more likely a misread than a sabbatical


@dataclass(frozen=True)
class AwayNotice:
    """An automatic auto-reply (not a bounce) from a contact that stated a return date."""

    at: datetime  # the auto-reply's date, aware UTC
    until: date  # D, the return date its text states
    ref: str  # "message:<id>"


def in_window(at: datetime, until: date, tz: tzinfo) -> bool:
    """Is ``until`` after the auto-reply's local date and no more than WINDOW_DAYS after it?"""
    sent = turns.to_utc(at).astimezone(tz).date()
    return sent < until <= sent + timedelta(days=WINDOW_DAYS)


def pushing_notice(ledger: turns.Ledger, notices: Iterable[AwayNotice], tz: tzinfo,
                   now: datetime) -> AwayNotice | None:
    """The auto-reply of the current unanswered run with the latest return date, or None.

    Only a contact still ASKED has a run; auto-replies from before the run began
    (an old holiday) or after ``now`` do not count.
    """
    if ledger.state != turns.ASKED or ledger.run_start is None:
        return None
    start, now = ledger.run_start.at, turns.to_utc(now)
    best: AwayNotice | None = None
    for notice in notices:
        at = turns.to_utc(notice.at)
        if not (start <= at <= now) or not in_window(at, notice.until, tz):
            continue
        if best is None or notice.until > best.until:
            best = notice
    return best


def pushed_due(last_outgoing_at: datetime, until: date, tz: tzinfo,
               holidays: Container[date] | str | None = None) -> datetime:
    """One business day after ``until``, at the local time of day the last message was sent."""
    local = turns.to_utc(last_outgoing_at).astimezone(tz)
    wall = datetime.combine(until, local.timetz().replace(tzinfo=None), tzinfo=tz)
    return add_business_days(wall, 1, tz, holidays)
