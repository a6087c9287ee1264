"""Responsiveness: how a contact the user wrote to first answered that first outreach.

Pure (DESIGN.md, "Responsiveness"). Only contacts whose first event is an
outgoing message have a class, counted from that first outreach F:

* ``booster``: the first reply came within ``BOOSTER_BUSINESS_DAYS`` business days of F;
* ``obligate``: the first reply came later;
* ``curmudgeon``: no reply, and ``follow_up_after_business_days`` business days have passed since F;
* None otherwise: still pending, or the contact wrote first (or never was written to).

A meeting is not a reply: a contact met without ever answering by mail is not
called a curmudgeon either (None), since they plainly did respond.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import date, datetime, tzinfo

from syncagent.ledger import turns
from syncagent.ledger.businessdays import add_business_days

BOOSTER, OBLIGATE, CURMUDGEON = "booster", "obligate", "curmudgeon"
CLASSES = (BOOSTER, OBLIGATE, CURMUDGEON)
BOOSTER_BUSINESS_DAYS = 3


def classify(ledger: turns.Ledger, follow_up_after_business_days: int, tz: tzinfo, now: datetime,
             holidays: Container[date] | str | None = None) -> str | None:
    """The contact's class at ``now`` (``ledger`` computed at the same instant)."""
    if not ledger.events or ledger.events[0].kind != turns.OUT:
        return None
    first = ledger.events[0].at
    if ledger.first_reply_at is not None:
        fast = add_business_days(first, BOOSTER_BUSINESS_DAYS, tz, holidays)
        return BOOSTER if ledger.first_reply_at <= fast else OBLIGATE
    if any(e.kind == turns.MEETING for e in ledger.events):
        return None
    if turns.to_utc(now) >= add_business_days(first, follow_up_after_business_days, tz, holidays):
        return CURMUDGEON
    return None
