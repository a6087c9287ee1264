"""The ledger's database side: contacts' events into ledgers, ledgers into the derived tables.

``contact_events`` applies the matching rules of DESIGN.md ("The ledger rules"):
an outgoing message involves the contacts in To, Cc and Bcc; an incoming one only
the contact in From (a contact Cc'd on someone else's mail has not replied);
automatic mail never counts; mail that is gone from the server still does (it is
history). The SQL is ``syncagent.store.derived``.

``derive`` writes what a pass re-derives, for a *scope* of contacts or for all:

* **Per contact** (a function of that contact's events, auto-replies, fields and the
  settings): its contact_ledger row (responsiveness included), its replies and
  contact_messages rows, its turn-ledger reminder (``pipeline.reminders``).
* **Across contacts**, re-derived over the small groups they span: the
  introductions of a contact (its mail, its events, who the senders are), the
  close_loop owed to an introducer (the introduction and the introducer's events),
  the next_contact suggestion of a company (all its contacts' ledgers).

The scope a pass is given (``changed``: contacts whose mail, meetings or fields
changed, or whose recheck instant passed; see ``pipeline.stages``) is closed over
those rules: the contacts introduced by someone whose addresses changed join the
introductions re-derived; the introducers of every introduction re-derived, or
whose introduction went, join the scope (their close_loop and recheck instant
move); the companies of the scope, as they are and as they were, are re-derived
with every member's ledger (read, not written).

**The clock.** Rows derived at ``now`` stay right until an event dated after
``now`` is reached (``pipeline.stages`` asks for the contacts of the messages and
meetings the clock crossed) or a rule's threshold passes: an obligation's reason
line ("3 days ago"), a curmudgeon's follow-up delay, a close_loop's reason, a
company's 3B7 due time. ``derive`` stores the first such instant per holder
(``derived_rechecks``: "contact:<id>", "company:<key>"); a pass re-derives the
holders whose instant has passed. The reply figures (overall_stats,
segment_stats: a 90-day window) are recomputed every pass from the stored
contact_ledger rows, and the weekly figures only for the weeks the scope's
messages fall in, recounted over every contact's stored rows, so no pass reads
all the mail unless it is a full one.

**Reading back.** After a pass every contact's contact_messages rows are its message
events at that pass's clock (with each message's time and subject), so an incremental
pass reads a contact not edited since from those rows, adding the messages stored
since or dated after that clock (``store.load_resumed_events``); joining all of a
contact's mail again by address cost twice as much. Its history before the earliest
of those is the one its rows were derived from, so only its replies and rows from
there on are built and compared with the stored ones (and the rows of the earlier
asks whose reply went or came): a long history costs its events, not its rows.
The store never rewrites a message's date, subject, direction or
automatic flag once saved but through a full pass (own addresses) or a migration,
and a migration that does must drop the pass watermark, as 0019 does.

**Incremental equals full.** ``changed=None`` is the full path (``sync --full``,
a settings or own-address change, the first pass): every contact is in scope and
every table is written as a set difference. A property test
(tests/test_incremental.py) checks that after any sequence of changes a full pass
over a copy finds nothing to change. ``computed_at`` on a row says when it was
last derived.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from operator import attrgetter
from zoneinfo import ZoneInfo

from syncagent.ledger import companies, figures, introductions, responsiveness
from syncagent.ledger.businessdays import add_business_days
from syncagent.ledger.introductions import Introduction
from syncagent.ledger.obligations import Obligation, changes_at, next_year
from syncagent.ledger.outofoffice import AwayNotice
from syncagent.ledger.turns import MEETING, OUT, Event, Ledger, compute, message_pk, to_utc
from syncagent.store import derived as store
from syncagent.store.db import transaction
from syncagent.timeutil import iso, parse_iso, utcnow

log = logging.getLogger(__name__)

_NO_LIMIT = store.NO_LIMIT


def contact_events(db, now: datetime | None = None, ids: Collection[int] | None = None) -> dict[int, list[Event]]:
    """Every contact's events (messages and ended meetings), keyed by contact id; ``ids``: only those.

    Every contact gets an entry, an empty list when nothing involves them. With ``now``,
    events after it are left out here already (``ledger.compute`` would drop them too).
    The same Message-ID held by several accounts counts once per contact: the row
    with the lowest id stands for it.
    """
    until = iso(to_utc(now)) if now is not None else _NO_LIMIT
    return store.load_events(db.conn, until, ids)


def ledgers(db, now: datetime | None = None) -> dict[int, Ledger]:
    """Every contact's ledger at ``now`` (default: the current time), computed without writing."""
    now = to_utc(now or utcnow())
    return {cid: compute(evs, now) for cid, evs in contact_events(db, now).items()}


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    company: str | None
    cadence_days: float | None


@dataclass
class Pass:
    """What one pass derived, for the stages that follow (reminders, outreach)."""

    now: datetime
    full: bool
    scope: set[int]  # contacts whose own rows were re-derived
    ledgers: dict[int, Ledger]  # of the scope and of every contact the cross-contact rules read
    persons: dict[int, Person]  # every contact
    away: dict[int, list[AwayNotice]] = field(default_factory=dict)  # of the scope
    introduced: set[int] = field(default_factory=set)  # contacts whose introductions were re-derived
    introductions: list[Introduction] = field(default_factory=list)  # every introduction whose close_loop was
    companies: set[str] = field(default_factory=set)  # company keys re-derived
    close_loops: list[tuple[int, Obligation]] = field(default_factory=list)
    next_contacts: list[tuple[int, Obligation]] = field(default_factory=list)
    networking: bool = True  # False: derived without a config (no rules beyond the turn ledger)
    gone: set[int] = field(default_factory=set)  # contacts deleted since they were last derived
    weeks: set[str] = field(default_factory=set)  # weeks whose stored rows changed
    # An ask's outreach row is its message's measures, when it was sent and the reply to its
    # run: it can only differ where its contact_messages row or its run's reply went or came.
    asks_moved: dict[int, set[int]] = field(default_factory=dict)  # contact -> ask messages whose row moved
    asked_moved: dict[int, set[str]] = field(default_factory=dict)  # contact -> asked_at of replies that moved
    # contact -> the messages of its stored contact_messages rows, where the pass read its events from them
    read_back: dict[int, set[int]] = field(default_factory=dict)
    # of those: the earliest instant of an event the last pass did not have, and how many
    # message events are not from their rows (``store.Resumed``)
    tails: dict[int, datetime] = field(default_factory=dict)
    added: dict[int, int] = field(default_factory=dict)


def recompute(db, now: datetime | None = None, timezone: str = "UTC", *, config=None) -> dict[int, Ledger]:
    """The full path: re-derive every contact at ``now`` in one transaction; return every ledger.

    With ``config``, the rules beyond the turn ledger are derived too (responsiveness,
    introductions); without it, only the turn ledger and the figures (weeks in ``timezone``).
    """
    now = to_utc(now or utcnow())
    with transaction(db, "ledger"):
        result = derive(db, config, now, None, timezone=timezone)
    return result.ledgers


def derive(db, config, now: datetime, changed: Collection[int] | None, *,
           edited: Mapping[int, tuple[store.ContactInput | None, store.ContactInput | None]] | None = None,
           timezone: str | None = None, resume: tuple[int, str] | None = None) -> Pass:
    """Re-derive the contacts ``changed`` (None: all) and what the rules link to them, at ``now``.

    Runs inside the caller's transaction. ``edited``: for each contact whose own inputs
    (fields, addresses, meetings) changed, its inputs as last derived and as they are now
    (None: it did not exist); they name the companies and addresses it had and has.
    ``resume``: the last pass's message watermark and clock, when every stored row is what
    that pass derived; then a contact not edited since is read from its stored rows and the
    messages new or dated after that clock, not from all of its mail again.
    """
    conn = db.conn
    now = to_utc(now)
    until = iso(now)
    tz_name = config.timezone if config is not None else (timezone or "UTC")
    tz = ZoneInfo(tz_name)
    full = changed is None
    result = Pass(now, full, set(), {}, {}, networking=config is not None)

    def need(ids: Collection[int] | None) -> set[int]:
        """Load the contacts ``ids`` not loaded yet; return those of them that exist."""
        wanted = None if ids is None else [cid for cid in ids if cid not in result.persons]
        if wanted is None or wanted:
            for cid, name, company, cadence in store.load_persons(conn, wanted):
                result.persons[cid] = Person(cid, name, company, cadence)
        return set(result.persons) if ids is None else {cid for cid in ids if cid in result.persons}

    def ledgers_of(ids: Collection[int]) -> None:
        missing = [cid for cid in need(ids) if cid not in result.ledgers]
        if not missing:
            return
        if resume is not None and not full:
            edits = edited or {}
            resumed = store.load_resumed_events(conn, until, [c for c in missing if c not in edits], *resume)
            events = resumed.events
            result.read_back.update(resumed.read_back)
            result.tails.update(resumed.tails)
            result.added.update(resumed.added)
            whole = resumed.whole | {c for c in missing if c in edits}
            if whole:
                events.update(store.load_events(conn, until, whole))
        else:
            events = store.load_events(conn, until, None if full and len(missing) == len(result.persons) else missing)
        for cid in missing:  # each list let go once its ledger holds the events (a full pass holds a million)
            result.ledgers[cid] = compute(events.pop(cid, ()), now)

    if full:
        result.scope = need(None)
        changed_set = set(result.persons)
        edited = {}
    else:
        changed_set = set(changed)  # type: ignore[arg-type]
        edited = edited or {}
        result.scope = need(changed_set)
        result.gone = changed_set - result.scope
    if config is not None:
        _close_scope(db, config, result, edited, need, ledgers_of)
    ledgers_of(result.scope)
    _write_contacts(db, config, result, tz)
    if config is not None:
        _write_networking(db, config, result, tz)
        if full:
            store.save_inputs(conn, store.load_contact_inputs(conn), None)
        else:
            store.save_inputs(conn, {cid: new for cid, (_old, new) in edited.items() if new is not None}, edited)
    _write_figures(db, result, tz, tz_name)
    log.debug("ledger derived for %d contacts%s", len(result.scope), " (all)" if full else "")
    return result


def _close_scope(db, config, result: Pass, edited, need, ledgers_of) -> None:
    """Widen the scope over the rules that span contacts, and derive the introductions of it."""
    from syncagent.pipeline import networking

    conn = db.conn
    scope, now = result.scope, result.now
    until = iso(now)
    addresses = {a for pair in edited.values() for i in pair if i is not None for a in i.addresses}
    if result.full:
        introduced = set(scope)
        old_pairs: list = []
    else:
        old_pairs = store.load_intro_rows(conn, introduced=scope, introducer_addresses=addresses)
        introduced = need({int(r[1]) for r in old_pairs} | scope)  # type: ignore[call-overload]
    ledgers_of(introduced)
    owners = networking.contact_of(db)

    def may_introduce(at: datetime, sender: str | None, recipients: tuple[str, ...]) -> bool:
        """False when ``introductions.find`` would pass over every recipient of a message: each
        tracked one in scope already has an event before it. Such a message (most of them) can
        change no introduction, so it is not kept (a full pass held 57,000 at a million messages)."""
        at = to_utc(at)
        introducer = owners.get(sender) if sender else None
        for address in recipients:
            cid = owners.get(address)
            if cid is None or cid == introducer or address == sender or cid not in introduced:
                continue
            events = result.ledgers[cid].events
            if not events or events[0].at >= at:
                return True
        return False

    mails = networking.mails(db, until, None if result.full else introduced, keep=may_introduce)
    found = introductions.find(mails, networking.own_addresses(config), owners,
                               {cid: result.ledgers[cid].events for cid in introduced}, now)
    found = [i for i in found if i.contact_id in introduced]
    result.introduced = introduced
    # Introducers whose introduction went or came: their close_loop and recheck instant move.
    for row in old_pairs:
        if row[1] in introduced and row[4] is not None:
            scope.add(int(row[4]))  # type: ignore[call-overload]
    scope.update(i.introducer_contact_id for i in found if i.introducer_contact_id is not None)
    scope &= need(scope)
    # Every introduction whose introducer is in scope gets its close_loop evaluated.
    kept = [] if result.full else [
        _intro(row) for row in store.load_intro_rows(conn, introducers=scope) if row[1] not in introduced]
    result.introductions = sorted(found + kept, key=lambda i: (i.at, i.message, i.contact_id))
    need({i.contact_id for i in result.introductions})
    ledgers_of(scope)
    # The companies of the scope as they are, and of the contacts edited as they were.
    keys = {companies.key(result.persons[cid].company) for cid in scope}
    keys |= {old.company_key for old, _new in edited.values() if old is not None}
    result.companies = {k for k in keys if k is not None}
    if result.full:
        members = set(scope)
    else:
        members = {cid for cid in store.load_members(conn, result.companies) if cid not in edited}
        members |= {cid for cid, (_old, new) in edited.items() if new is not None and new.company_key in result.companies}
    ledgers_of(members)
    result.away = networking.away_notices(db, until, None if result.full else scope)


def _intro(row) -> Introduction:
    message, cid, address, name, introducer, at, converted_at, converted_by = row
    return Introduction(f"message:{message}", parse_iso(at), address, name, introducer, cid,
                        parse_iso(converted_at) if converted_at else None, converted_by)


_ROWS_CHUNK = 20_000  # about as many rows as a full pass holds and compares at once


def _chunks(ids: list[int], ledgers: Mapping[int, Ledger], full: bool) -> list[list[int]]:
    """The contacts in groups of about _ROWS_CHUNK events each (a full pass), or all in one."""
    if not full:
        return [ids] if ids else []
    return groups(ids, lambda cid: len(ledgers[cid].events) + 1, _ROWS_CHUNK)


def groups(ids: list[int], weight: Callable[[int], int], limit: int) -> list[list[int]]:
    """``ids`` in order, cut into groups each weighing about ``limit`` (a group closes once it reaches it)."""
    out: list[list[int]] = [[]]
    size = 0
    for cid in ids:
        if size >= limit:
            out.append([])
            size = 0
        out[-1].append(cid)
        size += weight(cid)
    return out if out[0] else []


def _write_contacts(db, config, result: Pass, tz) -> None:
    conn = db.conn
    computed_at = iso(result.now)
    settings = config.reminders if config is not None else None
    ids = sorted(result.scope)
    # A full pass replaces the rows a few contacts at a time (as many as hold _ROWS_CHUNK
    # events): every contact's rows, and the stored ones they are compared with, held at
    # once took most of a gigabyte at a million messages.
    for chunk in _chunks(ids, result.ledgers, result.full):
        scope = set(chunk) if result.full else result.scope
        ledger_rows: list[tuple] = []
        rows = _Rows()
        # A contact read back from its rows is compared from where its history may differ from
        # the one the last pass derived (see _tail_from); its stored replies from there are read.
        tails = {cid: _tail_from(result, cid) for cid in chunk if cid in result.read_back}
        stored_replies = store.load_replies_since(conn, {cid: iso(at) for cid, at in tails.items() if at is not None})
        for cid in chunk:
            led = result.ledgers[cid]
            cls = None
            if settings is not None:
                cls = responsiveness.classify(led, settings.follow_up_after_business_days, tz, result.now,
                                              settings.holidays)
            ledger_rows.append(_ledger_row(cid, led, cls))
            if cid not in tails:
                rows.whole(cid, led, tz)
                continue
            since = tails[cid]
            if since is not None:  # else nothing it had is new: its rows and replies are what they were
                rows.tail(conn, cid, led, tz, since, result.read_back[cid], stored_replies.get(cid, set()))
        store.replace_rows(conn, "contact_ledger", store.LEDGER_COLUMNS, 1, ledger_rows, scope, computed_at)
        # The others' rows: compared with theirs from the table (a full pass, a contact edited).
        others = scope if result.full else [cid for cid in scope if cid not in result.read_back]
        if others:
            stored = store.load_rows(conn, "replies", store.REPLY_COLUMNS, others)
            rows.replies_went |= stored - rows.reply_rows
            rows.replies_came |= rows.reply_rows - stored
            stored = store.load_rows(conn, "contact_messages", store.CONTACT_MESSAGE_COLUMNS, others)
            rows.went |= stored - rows.message_rows
            rows.came |= rows.message_rows - stored
        went, came = rows.replies_went, rows.replies_came
        store.save_row_changes(conn, "replies", store.REPLY_COLUMNS, 2, went, came)
        # The weeks whose figures can have moved: those of every message or reply row that went or came.
        for row in went | came:
            y, w = figures.week_of(datetime.fromisoformat(str(row[3])), tz)
            result.weeks.add(figures.week_label(y, w))
        for row in went | came:
            result.asked_moved.setdefault(int(row[0]), set()).add(str(row[2]))  # type: ignore[call-overload]
        went, came = rows.went, rows.came
        store.save_row_changes(conn, "contact_messages", store.CONTACT_MESSAGE_COLUMNS, 2, went, came,
                               facts=(store.CONTACT_MESSAGE_FACTS, rows.facts))
        result.weeks |= {str(row[3]) for row in went | came if row[3] is not None}
        for row in went | came:
            if row[4]:
                result.asks_moved.setdefault(int(row[0]), set()).add(int(row[1]))  # type: ignore[call-overload]
    if result.full:
        # Rows of contacts that are no longer there (the schema cascades, unless foreign keys
        # were off when one was deleted); a full pass recounts every week anyway.
        store.delete_orphan_rows(conn, ("contact_ledger", "replies", "contact_messages"))
        store.save_ledger_confirmed(conn, computed_at)


_EARLIEST = datetime(1, 1, 1, tzinfo=timezone.utc)


def _tail_from(result: Pass, cid: int) -> datetime | None:
    """From when a contact read back from its rows can have rows that differ from them: the
    second of its earliest event the last pass did not have (None: it has none, so its rows
    and replies are what they were), or the start when its events are not its rows plus the
    new ones (then all of it is compared)."""
    led = result.ledgers[cid]
    if led.messages_sent + led.messages_received != len(result.read_back[cid]) + result.added.get(cid, 0):
        return _EARLIEST
    at = result.tails.get(cid)
    return at.replace(microsecond=0) if at is not None else None


class _Rows:
    """The contact_messages and replies rows a chunk of contacts derives, and the changes found."""

    def __init__(self) -> None:
        self.message_rows: set[tuple] = set()  # of the contacts compared whole, with the table's
        self.reply_rows: set[tuple] = set()
        self.went: set[tuple] = set()  # contact_messages rows found to go and to come
        self.came: set[tuple] = set()
        self.replies_went: set[tuple] = set()
        self.replies_came: set[tuple] = set()
        self.events: dict[tuple[int, int], Event] = {}  # the event of each row built, for its facts

    def facts(self, row: tuple) -> tuple:
        """A contact_messages row's message facts (when it counts, its subject), from its event."""
        e = self.events[(int(row[0]), int(row[1]))]  # type: ignore[call-overload]
        return _exact(e.at), e.subject

    def _row(self, cid: int, e: Event, stored: tuple | None, tz, asks: set, answered: set) -> tuple:
        pk = message_pk(e.key)
        self.events[(cid, pk)] = e
        ask = e.key in asks
        return _message_row(cid, pk, e, stored, tz, ask, ask and e.at in answered)

    def whole(self, cid: int, led: Ledger, tz) -> None:
        """Every row of a contact, compared later with the table's."""
        self.reply_rows.update(_reply_row(cid, r) for r in led.replies)
        asks, answered = {a.key for a in led.asks}, {r.asked_at for r in led.replies}
        self.message_rows.update(self._row(cid, e, None, tz, asks, answered) for e in led.events if e.kind != MEETING)

    def tail(self, conn, cid: int, led: Ledger, tz, since: datetime, stored: set[int], replies: set[tuple]) -> None:
        """A contact read back from its rows (of the messages ``stored``): its history before
        ``since`` is the one they were derived from, so only the replies from then on
        (``replies``: the stored ones) can differ, and only the rows of the events from then on,
        and of the asks whose reply went or came (an earlier ask's run can be answered now, or
        no longer). Only those rows are read from the table."""
        events = led.events
        first = bisect_left(led.replies, since, key=_REPLIED_AT)
        derived = {_reply_row(cid, r) for r in led.replies[first:]}
        went, came = replies - derived, derived - replies
        self.replies_went |= went
        self.replies_came |= came
        p = bisect_left(events, since, key=_AT)
        todo = list(range(p, len(events)))
        for asked in {parse_iso(str(row[2])) for row in went | came}:
            i = bisect_left(events, asked, 0, p, key=_AT)
            while i < p and events[i].at < asked + _SECOND:
                todo.append(i)
                i += 1
        asks, answered = {a.key for a in led.asks}, {r.asked_at for r in led.replies}
        if since is _EARLIEST:
            before = store.load_message_rows(conn, cid, None)
        else:
            wanted = {message_pk(events[i].key) for i in todo if events[i].kind != MEETING}
            before = store.load_message_rows(conn, cid, wanted & stored) if wanted & stored else {}
        seen: set[int] = set()
        for i in todo:
            e = events[i]
            if e.kind == MEETING:
                continue
            pk = message_pk(e.key)
            seen.add(pk)
            row = before.get(pk)
            new = self._row(cid, e, row, tz, asks, answered)
            if row != new:
                if row is not None:
                    self.went.add(row)
                self.came.add(new)
        if since is _EARLIEST and len(seen) != len(before):  # stored rows whose message no longer counts
            self.went.update(row for pk, row in before.items() if pk not in seen)


_AT = attrgetter("at")
_REPLIED_AT = attrgetter("replied_at")
_SECOND = timedelta(seconds=1)


def _reply_row(cid: int, r) -> tuple:
    return (cid, message_pk(r.ref), iso(r.asked_at), iso(r.replied_at), figures.hours(r.seconds), r.seconds)


def _write_networking(db, config, result: Pass, tz) -> None:
    """The introductions of the contacts re-derived, the close_loops and 3B7 suggestions owed, the
    recheck instants."""
    conn = db.conn
    now, settings = result.now, config.reminders
    persons, ledgers = result.persons, result.ledgers
    rows = [(int(i.message.split(":", 1)[1]), i.contact_id, i.introducer_address, i.introducer_name,
             i.introducer_contact_id, iso(i.at), iso(i.converted_at) if i.converted_at else None, i.converted_by)
            for i in result.introductions if i.contact_id in result.introduced]
    store.replace_intros(conn, rows, None if result.full else result.introduced, iso(now))
    rechecks: dict[str, datetime | None] = {}

    def soon(holder: str, at: datetime | None) -> None:
        if at is not None and at > now:
            seen = rechecks.get(holder)
            rechecks[holder] = at if seen is None or at < seen else seen
        else:
            rechecks.setdefault(holder, None)

    from syncagent.ledger.obligations import obligation

    for cid in result.gone:
        rechecks[f"contact:{cid}"] = None
    for cid in result.scope:
        led, person = ledgers[cid], persons[cid]
        holder = f"contact:{cid}"
        ob = obligation(led, settings, tz, now, person.cadence_days, name=person.name, away=result.away.get(cid, ()))
        soon(holder, changes_at(ob, now, tz) if ob is not None else None)
        soon(holder, _curmudgeon_at(led, settings, tz, now))
    for intro in result.introductions:
        x = intro.introducer_contact_id
        if x is None or x not in persons:
            continue
        ob = introductions.close_loop(
            intro, ledgers[x].events, settings.close_loop_after_days, now,
            introducer_name=persons[x].name, introduced_name=persons[intro.contact_id].name
            if intro.contact_id in persons else "them", prepared=True)
        if ob is not None:
            result.close_loops.append((x, ob))
            soon(f"contact:{x}", changes_at(ob, now, tz))
    members = [companies.Member(p.id, p.name, p.company, ledgers[p.id]) for p in persons.values()
               if companies.key(p.company) in result.companies]
    for key, group in companies.groups(members).items():
        holder = f"company:{key}"
        found = companies.next_contact(group, settings.next_contact_after_business_days, tz, now, settings.holidays)
        if found is not None:
            member, ob = found
            result.next_contacts.append((member.contact_id, ob))
            soon(holder, next_year(now, tz))
        else:
            soon(holder, _next_contact_at(group, settings, tz, now))
    # Companies re-derived that have no contacts any more lose their instant.
    for key in result.companies:
        rechecks.setdefault(f"company:{key}", None)
    store.save_rechecks(conn, {h: iso(at) if at is not None else None for h, at in rechecks.items()}, result.full)


def _curmudgeon_at(led: Ledger, settings, tz, now: datetime) -> datetime | None:
    """When an unanswered first outreach becomes a curmudgeon's (the one clock threshold of
    responsiveness), if that is still ahead."""
    if not led.events or led.events[0].kind != OUT or led.first_reply_at is not None:
        return None
    if any(e.kind == MEETING for e in led.events):
        return None
    return add_business_days(led.events[0].at, settings.follow_up_after_business_days, tz, settings.holidays)


def _next_contact_at(group, settings, tz, now: datetime) -> datetime | None:
    """When a company's 3B7 suggestion becomes due, if it is not yet and nothing settles it first."""
    days = settings.next_contact_after_business_days
    if days <= 0 or len(group) < 2:
        return None
    found = companies.latest_ask(group)
    if found is None:
        return None
    ask, asked = found
    if companies.settled_by(group, ask, asked) is not None:
        return None
    return add_business_days(ask.at, days, tz, settings.holidays)


def _write_figures(db, result: Pass, tz, tz_name: str) -> None:
    """The reply figures from the stored contact_ledger rows; the weekly figures of the weeks touched."""
    from syncagent.pipeline import stats

    conn = db.conn
    now = result.now
    stats.store(conn, stats.stored_figures(db, now))
    stored = store.load_stored_weeks(conn)
    weeks = set(result.weeks)
    if result.full or result.gone:
        # A deleted contact's rows went with it, and with them which weeks it had.
        weeks |= set(stored) | store.load_weeks_of(conn, None)
    meetings: dict[str, int] = {}
    for _pk, end in store.load_meeting_ends(conn, iso(now)):
        y, w = figures.week_of(end, tz)
        label = figures.week_label(y, w)
        meetings[label] = meetings.get(label, 0) + 1
    weeks |= {w for w, n in meetings.items() if stored.get(w, (None,) * 11)[10] != n}
    weeks |= {w for w, row in stored.items() if row[10] and w not in meetings}
    counts = store.load_week_counts(conn, weeks)
    rows: dict[str, tuple | None] = {}
    for label in weeks:
        year, week = int(label[:4]), int(label[6:])
        start, end = figures.week_bounds(year, week, tz)
        c = counts.get(label, store.WeekCounts(0, 0, 0))
        seconds = tuple(store.load_reply_seconds(conn, iso(start), iso(end)))
        fig = figures.WeekFigures(label, start, end, c.messages_sent, c.asks, c.answered, len(seconds), seconds,
                                  meetings.get(label, 0))
        if not (fig.messages_sent or fig.asks or fig.replies or fig.meetings):
            rows[label] = None
            continue
        row = (label, iso(start), iso(end), tz_name, fig.messages_sent, fig.asks, fig.answered, fig.reply_rate,
               fig.replies, fig.median_response_hours, fig.meetings)
        if stored.get(label) != row:
            rows[label] = row
    if result.full:
        rows.update({w: None for w in stored if w not in weeks})
    store.save_weeks(conn, {w: r for w, r in rows.items() if r is not None or w in stored}, iso(now))


def _message_row(cid: int, pk: int, e: Event, stored: tuple | None, tz, ask: bool, answered: bool) -> tuple:
    """A contact_messages row: its week is the stored row's where there is one (the same instant
    in the same zone is the same week)."""
    if stored is not None:
        week = stored[3]
    else:
        y, w = figures.week_of(e.at, tz)
        week = figures.week_label(y, w)
    return (cid, pk, "outgoing" if e.kind == OUT else "incoming", week, int(ask), int(answered))


def _ledger_row(contact_id: int, led: Ledger, responsiveness: str | None = None) -> tuple:
    fig = figures.of_contact(led)
    return (
        contact_id,
        fig.state,
        _iso_or_none(fig.first_outreach_at),
        _iso_or_none(fig.first_reply_at),
        fig.first_response_hours,
        fig.median_response_hours,
        int(fig.replied),
        fig.messages_sent,
        fig.messages_received,
        _iso_or_none(fig.last_interaction_at),
        fig.unanswered,
        int(fig.reached),
        fig.first_response_seconds,
        responsiveness,
        led.last_message.subject if led.last_message else None,
    )


_hours = figures.hours


def _exact(dt: datetime) -> str:
    """``iso`` to the microsecond where there is one: a stored row is read back as the very instant."""
    text = iso(dt)
    return f"{text[:-1]}.{dt.microsecond:06d}Z" if dt.microsecond else text


def _iso_or_none(dt: datetime | None) -> str | None:
    return iso(dt) if dt is not None else None
