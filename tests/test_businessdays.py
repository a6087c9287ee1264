"""Business days counted in the user's time zone, keeping the local time of day."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from syncagent.ledger.businessdays import add_business_days

NY = ZoneInfo("America/New_York")
CAIRO = ZoneInfo("Africa/Cairo")  # changes clocks on weekdays: gaps and repeats on business days


def utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("start, n, tz, expected, why", [
    ("2026-11-16T14:00:00", 7, NY, "2026-11-25T14:00:00", "Mon 09:00 EST + 7 -> Wed next week 09:00"),
    ("2026-11-20T21:00:00", 1, NY, "2026-11-23T21:00:00", "Fri 16:00 + 1 skips the weekend"),
    ("2026-11-21T17:00:00", 1, NY, "2026-11-23T17:00:00", "Sat noon + 1 is Monday noon"),
    ("2026-11-22T17:00:00", 5, NY, "2026-11-27T17:00:00", "Sun + 5 is Friday"),
    ("2026-11-24T03:30:00", 1, NY, "2026-11-25T03:30:00", "Mon 22:30 local (Tue in UTC) + 1 is Tue 22:30 local"),
    ("2026-10-30T14:00:00", 1, NY, "2026-11-02T15:00:00", "Fri 10:00 EDT + 1 is Mon 10:00 EST (fall back)"),
    ("2026-03-06T15:00:00", 1, NY, "2026-03-09T14:00:00", "Fri 10:00 EST + 1 is Mon 10:00 EDT (spring forward)"),
    ("2026-11-20T21:00:00", 0, NY, "2026-11-20T21:00:00", "zero days is the same instant"),
    ("2026-04-22T22:30:00", 1, CAIRO, "2026-04-23T22:30:00",
     "Thu 00:30 + 1 is Fri 00:30, which does not exist: read at the old offset, i.e. 01:30 EEST"),
    ("2026-10-28T20:30:00", 1, CAIRO, "2026-10-29T20:30:00",
     "Wed 23:30 + 1 is Thu 23:30, which happens twice: the first one"),
])
def test_add_business_days(start, n, tz, expected, why):
    """Each case: weekends skipped, wall time kept across DST, gaps and repeats resolved by fold=0."""
    assert add_business_days(utc(start), n, tz) == utc(expected), why


def test_result_keeps_local_wall_time_across_dst():
    """A follow-up due over the November DST change stays at the same local hour."""
    sent = datetime(2026, 10, 27, 9, 15, tzinfo=NY)
    due = add_business_days(sent, 7, NY).astimezone(NY)
    assert (due.year, due.month, due.day, due.hour, due.minute) == (2026, 11, 5, 9, 15)
    assert due.utcoffset().total_seconds() == -5 * 3600


def test_naive_is_utc_and_negative_refused():
    """A naive datetime is taken as UTC (the database's convention); negative counts are refused."""
    assert add_business_days(datetime(2026, 11, 20, 21, 0), 1, NY) == utc("2026-11-23T21:00:00")
    with pytest.raises(ValueError):
        add_business_days(utc("2026-11-20T21:00:00"), -1, NY)
