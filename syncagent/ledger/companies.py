"""Companies: the 3B7 rule and the per-company figures (who was reached, who replied).

Pure (DESIGN.md, "3B7 per company"). Companies are the contacts' ``company``,
trimmed and compared case-insensitively. For a company K, A is the latest
outgoing message that started a new ask with a contact of K. When nobody at K
has written since A, ``next_contact_after_business_days`` business days have
passed, and some contact of K has no event at all, the first such contact
(lowest id) is suggested: a ``next_contact`` reminder due at A plus those
business days. It is settled by the user's first outgoing message after A to a
contact of K other than the one(s) asked at A, or by any message from K after A.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from syncagent.ledger import turns
from syncagent.ledger.businessdays import add_business_days
from syncagent.ledger.obligations import NEXT_CONTACT, Obligation, day_text


def key(company: str | None) -> str | None:
    """The company as compared: trimmed, case-folded; None when blank."""
    if company is None:
        return None
    return company.strip().casefold() or None


@dataclass(frozen=True)
class Member:
    """One tracked contact and their turn ledger at the instant evaluated."""

    contact_id: int
    name: str
    company: str | None
    ledger: turns.Ledger


def groups(members: Iterable[Member]) -> dict[str, list[Member]]:
    """Contacts by company key, each list by contact id; contacts without a company are left out."""
    out: dict[str, list[Member]] = {}
    for m in sorted(members, key=lambda m: m.contact_id):
        k = key(m.company)
        if k is not None:
            out.setdefault(k, []).append(m)
    return out


def display_name(people: Sequence[Member]) -> str:
    """How the company is written by its lowest-id contact (trimmed)."""
    return (people[0].company or "").strip()


def latest_ask(people: Sequence[Member]) -> tuple[turns.Event, set[int]] | None:
    """A, the latest message that started a new ask at the company, and the contacts it asked."""
    latest: turns.Event | None = None
    for m in people:
        for ask in m.ledger.asks:
            if latest is None or (ask.at, ask.ref) > (latest.at, latest.ref):
                latest = ask
    if latest is None:
        return None
    asked = {m.contact_id for m in people if any(a.ref == latest.ref for a in m.ledger.asks)}
    return latest, asked


def settled_by(people: Sequence[Member], ask: turns.Event, asked: set[int]) -> turns.Event | None:
    """The first event after A that ends the suggestion: a message from K, or one to someone else at K."""
    first: turns.Event | None = None
    for m in people:
        for e in m.ledger.events:
            if e.at <= ask.at or e.ref == ask.ref:
                continue
            if e.kind == turns.IN or (e.kind == turns.OUT and m.contact_id not in asked):
                if first is None or (e.at, e.ref) < (first.at, first.ref):
                    first = e
                break  # events are in time order: the first that counts is enough per contact
    return first


def next_contact(people: Sequence[Member], business_days: int, tz: tzinfo, now: datetime,
                 holidays: Container[date] | str | None = None) -> tuple[Member, Obligation] | None:
    """The 3B7 suggestion for one company at ``now`` (its contacts' ledgers at ``now``), or None.

    Never upcoming: it exists only once it is due.
    """
    if business_days <= 0 or len(people) < 2:
        return None
    found = latest_ask(people)
    if found is None:
        return None
    ask, asked = found
    if settled_by(people, ask, asked) is not None:
        return None
    due = add_business_days(ask.at, business_days, tz, holidays)
    if turns.to_utc(now) < due:
        return None
    fresh = next((m for m in people if not m.ledger.events), None)
    if fresh is None:
        return None
    who = ", ".join(m.name for m in people if m.contact_id in asked)
    company = display_name(people)
    reason = (f"Nobody at {company} answered since you wrote to {who} on {day_text(ask.at.astimezone(tz).date(), tz, now)}; "
              f"try {fresh.name}")
    return fresh, Obligation(NEXT_CONTACT, due, ask.ref, ask.at, reason, ask.subject, company=key(company))


@dataclass(frozen=True)
class CompanyFigures:
    company: str  # as written by its lowest-id contact
    key: str
    tracked: int  # contacts with this company
    reached: int  # contacts the user wrote to
    replied: int  # contacts who replied to the user
    reply_rate: float | None  # replied / reached, None when nobody was reached


def figures(people: Sequence[Member]) -> CompanyFigures:
    """Tracked, reached and replied counts for one company (``people`` from ``groups``).

    Reached, replied and the rate are those of ``syncagent.ledger.figures``, as in ``stats``.
    """
    from syncagent.ledger import figures as definitions

    counted = (definitions.outreach(None, definitions.of_contact(m.ledger)) for m in people)
    group = definitions.group(o for o in counted if o is not None)
    return CompanyFigures(display_name(people), key(people[0].company) or "", len(people), group["reached"],
                          group["replied"], group["reply_rate"])
