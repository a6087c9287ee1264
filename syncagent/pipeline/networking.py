"""The rules beyond the turn ledger over the database: introductions, out of office,
responsiveness and 3B7 per company.

The rules are pure (``syncagent.ledger``); this module feeds them from
``messages``/``message_addresses`` and the contacts, and ``store`` writes what
they derive (the ``introductions`` table, ``contact_ledger.responsiveness``) in
one transaction at the real clock. ``derive`` evaluates at any instant without
writing, so ``--now`` reads the same figures the stored tables hold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from syncagent.config import Config
from syncagent.ledger import companies, introductions, responsiveness
from syncagent.ledger import turns as ledger_mod
from syncagent.ledger.introductions import Introduction, Mail
from syncagent.ledger.obligations import Obligation
from syncagent.ledger.outofoffice import AwayNotice
from syncagent.store import contacts as contacts_store
from syncagent.store import derived as derived_store
from syncagent.store import summary as summary_store
from syncagent.timeutil import iso

log = logging.getLogger(__name__)

_NO_LIMIT = "9999-12-31T23:59:59Z"

@dataclass(frozen=True)
class Person:
    id: int
    name: str
    company: str | None


@dataclass
class Derived:
    """What the rules beyond the turn ledger give at one instant."""

    introductions: list[Introduction] = field(default_factory=list)
    away: dict[int, list[AwayNotice]] = field(default_factory=dict)  # contact id -> auto-replies with a date
    responsiveness: dict[int, str | None] = field(default_factory=dict)
    reminders: list[tuple[int, Obligation]] = field(default_factory=list)  # (contact id, close_loop/next_contact)


def own_addresses(config: Config) -> set[str]:
    return {a for acct in config.accounts for a in acct.addresses}


def people(db) -> list[Person]:
    return [Person(*row) for row in contacts_store.load_people(db.conn)]


def mails(db, until: str, introduced: Collection[int] | None = None,
          keep: Callable[[datetime, str | None, tuple[str, ...]], bool] | None = None) -> list[Mail]:
    """The messages that can introduce someone; with ``introduced``, those addressed to one of these contacts;
    with ``keep``, only those it keeps (given the time, the sender and the recipients)."""
    # The rows come by message id, a message's recipients together: each message is made as soon
    # as its rows end, so a full pass never holds every recipient row at once.
    seen_ids: set[str] | None = set() if derived_store.several_accounts(db.conn) else None
    out: list[Mail] = []
    last_pk: int | None = None
    head: tuple[str, str | None, str | None] | None = None
    to: list[str] = []
    # The same few thousand addresses and names recur in every message: one string each.
    names: dict[str, str] = {}

    def flush() -> None:
        if head is not None:
            at = _parse(head[0])
            recipients = tuple(to)
            if at is not None and (keep is None or keep(at, head[1], recipients)):
                out.append(Mail(f"message:{last_pk}", at, head[1], head[2], recipients, outgoing=False))

    for pk, message_id, when, sender, name, address in derived_store.load_intro_recipients(db.conn, until, introduced):
        if pk != last_pk:
            flush()
            last_pk, to = pk, []
            head = (when, sender and names.setdefault(sender, sender), name and names.setdefault(name, name))
            if seen_ids is not None:
                if message_id in seen_ids:  # another account's copy of the same message: the lowest id counts
                    head = None
                else:
                    seen_ids.add(message_id)
        if head is not None:
            to.append(names.setdefault(address, address))
    flush()
    return out


def away_notices(db, until: str, ids: Collection[int] | None = None) -> dict[int, list[AwayNotice]]:
    """contact id -> the auto-replies with a return date from that contact (``ids``: only those contacts)."""
    out: dict[int, list[AwayNotice]] = {}
    for contact_id, pk, when, until_text in derived_store.load_away_replies(db.conn, until, ids):
        at = _parse(when)
        try:
            back = date.fromisoformat(until_text)
        except (TypeError, ValueError):
            continue
        if at is not None:
            out.setdefault(contact_id, []).append(AwayNotice(at, back, f"message:{pk}"))
    return out


def contact_of(db) -> dict[str, int]:
    return contacts_store.load_address_owners(db.conn)


def derive(db, config: Config, now: datetime, ledgers: Mapping[int, ledger_mod.Ledger],
           persons: list[Person] | None = None) -> Derived:
    """Introductions, out-of-office notices, responsiveness and the close_loop and
    next_contact reminders owed at ``now``; ``ledgers`` are every contact's at ``now``."""
    now = ledger_mod.to_utc(now)
    until = iso(now)
    settings, tz = config.reminders, config.tz
    persons = persons if persons is not None else people(db)
    names = {p.id: p.name for p in persons}
    empty = ledger_mod.compute((), now)
    events = {cid: led.events for cid, led in ledgers.items()}
    out = Derived()
    out.away = away_notices(db, until)
    out.introductions = introductions.find(mails(db, until), own_addresses(config), contact_of(db), events, now)
    for p in persons:
        out.responsiveness[p.id] = responsiveness.classify(
            ledgers.get(p.id, empty), settings.follow_up_after_business_days, tz, now, settings.holidays)
    for intro in out.introductions:
        x = intro.introducer_contact_id
        if x is None:
            continue
        ob = introductions.close_loop(intro, ledgers.get(x, empty).events, settings.close_loop_after_days, now,
                                      prepared=True,
                                      introducer_name=names.get(x, intro.introducer_name or intro.introducer_address),
                                      introduced_name=names.get(intro.contact_id, "them"))
        if ob is not None:
            out.reminders.append((x, ob))
    members = [companies.Member(p.id, p.name, p.company, ledgers.get(p.id, empty)) for p in persons]
    for group in companies.groups(members).values():
        found = companies.next_contact(group, settings.next_contact_after_business_days, tz, now, settings.holidays)
        if found is not None:
            member, ob = found
            out.reminders.append((member.contact_id, ob))
    return out


def settled_by(kind: str, anchor: str, contact_id: int, company: str | None, about: int | None,
               now: datetime, ledgers: Mapping[int, ledger_mod.Ledger], derived: Derived,
               persons: list[Person]) -> ledger_mod.Event | None:
    """The event that settled a stored close_loop or next_contact row no longer owed, or None."""
    if kind == "close_loop":
        intro = next((i for i in derived.introductions
                      if i.introducer_contact_id == contact_id and i.contact_id == about
                      and introductions.anchor(i) == anchor), None)
        led = ledgers.get(contact_id)
        if intro is None or led is None:
            return None
        return introductions.closed_by(intro, led.events, now, prepared=True)
    if kind == "next_contact":
        empty = ledger_mod.compute((), now)
        members = [companies.Member(p.id, p.name, p.company, ledgers.get(p.id, empty)) for p in persons]
        group = companies.groups(members).get(company or "")
        if not group:
            return None
        ask = next((a for m in group for a in m.ledger.asks if a.ref == anchor), None)
        if ask is None:
            return None
        asked = {m.contact_id for m in group if any(a.ref == anchor for a in m.ledger.asks)}
        return companies.settled_by(group, ask, asked)
    return None


def _parse(text: str | None) -> datetime | None:
    try:
        return ledger_mod.to_utc(datetime.fromisoformat(text))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


# --- what the surfaces read ---------------------------------------------------------

def states_at(db, config: Config, now: datetime) -> dict[int, tuple[str | None, str | None]]:
    """contact id -> (state, responsiveness) at ``now``, computed in memory (``--now``: nothing written)."""
    from syncagent.pipeline.ledger import ledgers as compute_ledgers

    ledgers = compute_ledgers(db, now)
    derived = derive(db, config, now, ledgers)
    return {cid: (led.state, derived.responsiveness.get(cid)) for cid, led in ledgers.items()}


def company_rows(db, config: Config, now: datetime | None = None) -> list[dict]:
    """One dict per target company: the stored ``companies`` view, or at ``now`` computed in memory.

    Both count the same way (ledger/companies.py): tracked contacts, those written to,
    those who replied, replied / reached, and the open reminders due now for people there.
    """
    if now is None:
        return summary_store.load_companies(db)
    from syncagent.pipeline import reminders
    from syncagent.pipeline.ledger import ledgers as compute_ledgers

    ledgers = compute_ledgers(db, now)
    empty = ledger_mod.compute((), now)
    members = [companies.Member(p.id, p.name, p.company, ledgers.get(p.id, empty)) for p in people(db)]
    groups = companies.groups(members)
    owed: dict[str, list[str]] = {}
    where = {m.contact_id: key for key, group in groups.items() for m in group}
    for item in reminders.listing(db, config, now, due_only=True):
        key = where.get(item["contact_id"])
        if key is not None:
            owed.setdefault(key, []).append(item["kind"])
    out = []
    for key, group in groups.items():
        fig = companies.figures(group)
        kinds = owed.get(key, [])
        out.append({"company": fig.company, "company_key": key, "tracked": fig.tracked, "reached": fig.reached,
                    "replied": fig.replied, "reply_rate": fig.reply_rate, "owed": len(kinds),
                    "owed_kinds": ", ".join(kinds) or None})
    out.sort(key=lambda r: str(r["company"]))  # always a str: the group's display name
    return out
