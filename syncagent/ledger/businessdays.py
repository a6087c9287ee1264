"""Business-day arithmetic in the user's time zone (the follow-up clock).

``add_business_days(dt, n, tz)`` steps forward one calendar day at a time in
``tz``, counting Monday to Friday, and keeps the local wall-clock time of day.
A message sent Friday 16:00 plus one business day is due Monday 16:00 local
time, whatever the UTC offsets on either side.

Daylight-saving edges follow PEP 495's ``fold=0`` rule, which is what a person
reading a calendar expects:

* a wall time that does not exist on the target day (the spring-forward gap,
  02:30 in New York) is read with the offset in force before the gap, so it
  lands the length of the gap later (03:30 EDT);
* a wall time that happens twice (the fall-back hour, 01:30) is the first of
  the two (01:30 EDT, not EST).

With a holiday region (``[reminders] holidays = "US"``, ``"US-NY"``, ``"DE-BY"``)
the public holidays of that region, as the ``holidays`` library knows them, are
skipped like weekends: a follow-up due on Thanksgiving is due the Friday after.
Dates are the user's local dates, so a holiday is the local calendar day.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

SATURDAY = 5  # date.weekday(): Monday is 0


def region_problem(code: str) -> str | None:
    """Why ``code`` ("US", "US-NY") is not a holiday region the library knows, or None when it is."""
    import holidays

    country, _, subdiv = code.strip().upper().partition("-")
    supported = holidays.list_supported_countries()
    if country not in supported:
        return "not a country the holidays library knows"
    if subdiv and subdiv not in {s.upper() for s in supported[country]}:
        known = ", ".join(f"{country}-{s}" for s in supported[country][:8])
        return f"{country} has no subdivision {subdiv!r}" + (f" (some that exist: {known})" if known else "")
    return None


@lru_cache(maxsize=16)
def calendar(code: str | None) -> Container[date]:
    """The public holidays of a region (empty when ``code`` is None); years are filled in as asked."""
    if not code:
        return frozenset()
    import holidays

    country, _, subdiv = code.strip().upper().partition("-")
    return holidays.country_holidays(country, subdiv=subdiv or None)


def is_business_day(d: date, holidays: Container[date] | str | None = None) -> bool:
    """Monday to Friday, and not a public holiday of ``holidays`` (a region code or a set of dates)."""
    if d.weekday() >= SATURDAY:
        return False
    if isinstance(holidays, str):
        holidays = calendar(holidays)
    return holidays is None or d not in holidays


def next_holiday(code: str | None, after: date) -> tuple[date, str] | None:
    """The first public holiday of the region on or after ``after`` (within a year), with its name."""
    if not code:
        return None
    cal = calendar(code)
    day = after
    for _ in range(370):
        if day in cal:
            return day, cal.get(day)  # type: ignore[attr-defined]
        day += timedelta(days=1)
    return None


def add_business_days(dt: datetime, n: int, tz: tzinfo, holidays: Container[date] | str | None = None) -> datetime:
    """``dt`` plus ``n`` business days counted in ``tz``; returned as aware UTC.

    A naive ``dt`` is taken as UTC (the database's convention). ``n = 0`` returns
    ``dt`` itself; a start on a weekend counts its first business day as the next
    Monday (Saturday + 1 business day is Monday, same time of day).
    """
    if n < 0:
        raise ValueError("n must be zero or positive")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    if n == 0:
        return dt.astimezone(timezone.utc)
    local = dt.astimezone(tz)
    day = local.date()
    cal = calendar(holidays) if isinstance(holidays, str) else holidays
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        if is_business_day(day, cal):
            counted += 1
    wall = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=tz)  # fold=0
    return wall.astimezone(timezone.utc)
