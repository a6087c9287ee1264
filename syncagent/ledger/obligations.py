"""The reminder rules: which thank-you, follow-up or check-in one contact is owed at an instant.

Pure (no I/O), so the rules are tested with a table of cases: ``obligation``
takes one contact's ledger and returns the single reminder owed (or None), its
due time and its anchor, the event it is counted from (DESIGN.md, "Open
reminder"). Keeping the ``reminders`` table is ``syncagent.pipeline.reminders``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from syncagent.config import Reminders
from syncagent.ledger import turns as ledger_mod
from syncagent.ledger.businessdays import add_business_days
from syncagent.ledger.outofoffice import AwayNotice, pushed_due, pushing_notice

THANK_YOU, FOLLOW_UP, CHECK_IN = "thank_you", "follow_up", "check_in"
CLOSE_LOOP, NEXT_CONTACT = "close_loop", "next_contact"
TURN_KINDS = (THANK_YOU, FOLLOW_UP, CHECK_IN)  # at most one of these per contact
# The order overdue reminders are listed in: owed gratitude first, suggestions last.
KINDS = (THANK_YOU, CLOSE_LOOP, FOLLOW_UP, CHECK_IN, NEXT_CONTACT)
ACTIVE = ("open", "snoozed")


@dataclass(frozen=True)
class Obligation:
    """One owed reminder at an instant, with the facts its reason line is made of."""

    kind: str  # thank_you | follow_up | check_in
    due_at: datetime  # aware UTC
    anchor: str  # ref of the event it is counted from ("message:12", "meeting:3")
    anchor_at: datetime
    reason: str  # one line, e.g. "Priya Shah replied 3 days ago; no thank-you sent"
    subject: str | None = None  # subject of the anchor event
    unanswered: int = 0  # follow_up: messages sent without an answer so far
    max_unanswered: int = 0
    back_on: date | None = None  # follow_up: the return date an out-of-office reply stated
    about_contact_id: int | None = None  # close_loop: the contact who was introduced
    company: str | None = None  # next_contact: the company key (trimmed, case-folded)


def obligation(ledger: ledger_mod.Ledger, settings: Reminders, tz: tzinfo | str, now: datetime,
               cadence_days: float | None = None, *, name: str = "They",
               away: Iterable[AwayNotice] = ()) -> Obligation | None:
    """The reminder owed to one contact at ``now`` (at most one), or None.

    ASKED -> follow_up at the last outgoing message + N business days, unless
    ``max_unanswered`` messages already went unanswered; REPLIED/MET -> thank_you
    at the first reply (or the meeting's end) + ``thank_you_within_hours``;
    ACKED -> check_in at the last message either way + the contact's
    ``cadence_days`` (else ``check_in_after_days``) days of 24 hours.
    ``away``: the contact's out-of-office replies with a return date; one during
    the current run moves its follow-up past that date (``outofoffice``).
    Business days skip the holidays of ``settings.holidays``.
    """
    tz = ZoneInfo(tz) if isinstance(tz, str) else tz
    state = ledger.state
    if state == ledger_mod.ASKED:
        last = ledger.last_outgoing
        if last is None or ledger.unanswered >= settings.max_unanswered:
            return None  # the first message and its follow-ups went unanswered: stop asking
        due = add_business_days(last.at, settings.follow_up_after_business_days, tz, settings.holidays)
        what = f"'{last.subject}'" if last.subject else "your message"
        reason = (f"No reply to {what} sent {_day(last.at, tz, now)} "
                  f"({ledger.unanswered} of {settings.max_unanswered})")
        back_on = None
        notice = pushing_notice(ledger, away, tz, now)
        if notice is not None:
            later = pushed_due(last.at, notice.until, tz, settings.holidays)
            if later > due:
                due, back_on = later, notice.until
                reason += f"; out of office, back on {day_text(notice.until, tz, now)}"
        return Obligation(FOLLOW_UP, due, last.ref, last.at, reason, last.subject,
                          ledger.unanswered, settings.max_unanswered, back_on=back_on)
    if state in (ledger_mod.REPLIED, ledger_mod.MET):
        owed = ledger.owed_since
        if owed is None:
            return None
        due = owed.at + timedelta(hours=settings.thank_you_within_hours)
        if owed.kind == ledger_mod.MEETING:
            what = f" ('{owed.subject}')" if owed.subject else ""
            reason = f"Met {name} {_ago(owed.at, now)}{what}; no thank-you sent"
        else:
            reason = f"{name} replied {_ago(owed.at, now)}; no thank-you sent"
        return Obligation(THANK_YOU, due, owed.ref, owed.at, reason, owed.subject)
    if state == ledger_mod.ACKED:
        last = ledger.last_message
        if last is None:
            return None
        days = cadence_days if cadence_days and cadence_days > 0 else settings.check_in_after_days
        due = last.at + timedelta(days=days)
        return Obligation(CHECK_IN, due, last.ref, last.at, f"Last talked {_ago(last.at, now)}", last.subject)
    return None  # INBOUND or no history: nothing owed


def _ago(then: datetime, now: datetime) -> str:
    seconds = int((now - then).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return _plural(seconds // 60, "minute") + " ago"
    if seconds < 2 * 86400:
        return _plural(seconds // 3600, "hour") + " ago"
    return _plural(seconds // 86400, "day") + " ago"


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _day(at: datetime, tz: tzinfo, now: datetime) -> str:
    """'Mon 2 Nov' in the user's zone; the year is added when it is not the current one."""
    return day_text(at.astimezone(tz).date(), tz, now)


def day_text(day: date, tz: tzinfo, now: datetime) -> str:
    """'Mon 7 Dec'; the year is added when it is not the current one (in the user's zone)."""
    text = f"{day:%a} {day.day} {day:%b}"
    return text if day.year == now.astimezone(tz).year else f"{text} {day.year}"


def ago(then: datetime, now: datetime) -> str:
    """'3 days ago', for reason lines."""
    return _ago(then, now)


def ago_changes_at(then: datetime, now: datetime) -> datetime:
    """The first instant after ``now`` at which ``ago(then, ...)`` reads differently."""
    seconds = int((now - then).total_seconds())
    if seconds < 60:
        return then + timedelta(seconds=60)
    if seconds < 3600:
        return then + timedelta(seconds=(seconds // 60 + 1) * 60)
    if seconds < 2 * 86400:
        return then + timedelta(seconds=(seconds // 3600 + 1) * 3600)
    return then + timedelta(days=seconds // 86400 + 1)


def next_year(now: datetime, tz: tzinfo) -> datetime:
    """New Year in the user's zone after ``now``, when every day_text drops or gains its year."""
    year = now.astimezone(tz).year + 1
    return datetime(year, 1, 1, tzinfo=tz).astimezone(now.tzinfo)


def changes_at(ob: Obligation, now: datetime, tz: tzinfo) -> datetime:
    """When the obligation's reason line, evaluated with nothing else changed, next reads differently.

    Thank-yous, check-ins and close-loops say "N days ago" of their anchor; every reason
    that names a day names its year when it is not the current one.
    """
    year = next_year(now, tz)
    if ob.kind in (THANK_YOU, CHECK_IN, CLOSE_LOOP):
        return min(ago_changes_at(ob.anchor_at, now), year)
    return year
