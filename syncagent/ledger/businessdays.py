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
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo

SATURDAY = 5  # date.weekday(): Monday is 0


def is_business_day(d) -> bool:
    return d.weekday() < SATURDAY


def add_business_days(dt: datetime, n: int, tz: tzinfo) -> datetime:
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
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        if is_business_day(day):
            counted += 1
    wall = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=tz)  # fold=0
    return wall.astimezone(timezone.utc)
