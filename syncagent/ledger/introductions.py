"""Introductions: someone writes to the user and a tracked contact together, and it converts.

Pure (DESIGN.md, "Introductions"). An incoming message M, not from the user and
not automatic, whose To or Cc holds one of the user's addresses and a tracked
contact C other than M's sender, where C had no event with the user before M,
introduces C; its sender X is the introducer. The introduction converts at C's
first incoming message after M or the end of the first meeting with C after M,
whichever comes first. When X is tracked, a ``close_loop`` reminder for X is
open from the conversion until the user's next outgoing message to X, due
``close_loop_after_days`` days of 24 hours after the conversion.

M is not an event of C's ledger (an incoming message involves only its sender);
it is an incoming event of X's, like any message from X.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from syncagent.ledger import turns
from syncagent.ledger.obligations import CLOSE_LOOP, Obligation, ago


@dataclass(frozen=True, slots=True)
class Mail:
    """One message with its sender and every To/Cc recipient (the user's own addresses included)."""

    ref: str  # "message:<id>"
    at: datetime
    sender: str | None  # normalized address
    sender_name: str | None
    recipients: tuple[str, ...]  # To and Cc, normalized
    outgoing: bool
    automatic: bool = False


@dataclass(frozen=True)
class Introduction:
    message: str  # ref of the introducing message
    at: datetime
    introducer_address: str
    introducer_name: str | None
    introducer_contact_id: int | None  # None when the introducer is not tracked
    contact_id: int  # the contact introduced
    converted_at: datetime | None = None
    converted_by: str | None = None  # ref of the event that converted it


def find(mails: Iterable[Mail], own: Iterable[str], contact_of: Mapping[str, int],
         events: Mapping[int, Sequence[turns.Event]], now: datetime) -> list[Introduction]:
    """Every introduction as it stood at ``now``, one per (introducer, introduced), earliest first.

    ``own``: the user's addresses; ``contact_of``: tracked address -> contact id;
    ``events``: each contact's turn-ledger events (the conversion and the "no
    event before" test read them).
    """
    now = turns.to_utc(now)
    mine = {a.lower() for a in own}
    # Prepared when first looked up: most contacts are never named in an introducing mail.
    prepared: dict[int, tuple[turns.Event, ...]] = {}
    found: dict[tuple[int | str, int], Introduction] = {}
    for mail in sorted(mails, key=lambda m: (turns.to_utc(m.at), m.ref)):
        at = turns.to_utc(mail.at)
        if at > now or mail.outgoing or mail.automatic or not mail.sender or mail.sender in mine:
            continue
        if not mine.intersection(mail.recipients):
            continue  # the user was only Bcc'd or not addressed: nobody introduced them
        introducer = contact_of.get(mail.sender)
        for address in dict.fromkeys(mail.recipients):
            cid = contact_of.get(address)
            if cid is None or cid == introducer or address == mail.sender:
                continue
            evs = prepared.get(cid)
            if evs is None:
                evs = prepared[cid] = turns.prepare(events.get(cid, ()), now)
            if any(e.at < at for e in evs):
                continue  # they already knew each other: not an introduction
            key = (introducer if introducer is not None else mail.sender, cid)
            if key in found:
                continue  # the same person introducing the same contact again
            conversion = next((e for e in evs if e.at > at and e.kind in (turns.IN, turns.MEETING)), None)
            found[key] = Introduction(
                mail.ref, at, mail.sender, mail.sender_name, introducer, cid,
                conversion.at if conversion else None, conversion.ref if conversion else None)
    return list(found.values())


def close_loop(intro: Introduction, introducer_events: Sequence[turns.Event], days: float,
               now: datetime, *, introducer_name: str = "them", introduced_name: str = "them",
               prepared: bool = False) -> Obligation | None:
    """The ``close_loop`` reminder owed to a tracked introducer at ``now``, or None.

    Open from the conversion until the user's first outgoing message to the
    introducer after it; ``days`` = 0 turns the rule off. ``prepared``: the events
    are already as ``turns.prepare`` gives them at ``now`` (a Ledger's ``events``).
    """
    now = turns.to_utc(now)
    if days <= 0 or intro.introducer_contact_id is None or intro.converted_at is None or intro.converted_at > now:
        return None
    if closed_by(intro, introducer_events, now, prepared=prepared) is not None:
        return None
    due = intro.converted_at + timedelta(days=days)
    reason = (f"{introducer_name} introduced you to {introduced_name}, who answered "
              f"{ago(intro.converted_at, now)}; tell {introducer_name} how it went")
    return Obligation(CLOSE_LOOP, due, anchor(intro), intro.converted_at, reason,
                      about_contact_id=intro.contact_id)


def anchor(intro: Introduction) -> str:
    """The reminder's anchor: the introducing message and who it introduced (one message can introduce two)."""
    return f"{intro.message}+contact:{intro.contact_id}"


def closed_by(intro: Introduction, introducer_events: Sequence[turns.Event], now: datetime, *,
              prepared: bool = False) -> turns.Event | None:
    """The user's first outgoing message to the introducer after the conversion (at ``now``), or None.

    ``prepared``: the events are a Ledger's ``events`` at ``now`` (in time order), so the
    search starts at the conversion instead of re-sorting an introducer's whole history
    once per introduction they made.
    """
    if intro.converted_at is None:
        return None
    if prepared:
        start = bisect_right(introducer_events, intro.converted_at, key=lambda e: e.at)
        return next((e for e in introducer_events[start:] if e.kind == turns.OUT), None)
    for event in turns.prepare(introducer_events, now):
        if event.kind == turns.OUT and event.at > intro.converted_at:
            return event
    return None
