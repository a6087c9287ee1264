"""The ``reminders`` table: obligations evaluated over the database, and what the user decided.

The rules themselves (``obligation``) are pure and live in
``syncagent.ledger.obligations``; this module applies them to every contact.

* ``reconcile`` (and ``current``, which reconciles and then lists) keep the
  ``reminders`` table at the real clock. A row is keyed by (contact, kind,
  anchor), so a new obligation (a new reply, a new outgoing message) is a new
  row while the user's choice on an old one sticks: dismissed and done rows stay
  as they are, snoozed rows wake when their ``snoozed_until`` passes, and open
  rows whose obligation went away are settled ('done') by the message that
  moved the ledger on. A contact has at most one open or snoozed row of the turn
  ledger's kinds, which the schema enforces (store/migrations.py).
* ``listing`` is a pure evaluation at any instant (``--now``): it computes the
  ledger in memory, joins each obligation to its stored row by key for the id
  and status, and reads that status *as of* the instant (a row resolved or
  snoozed later counts as open). An obligation with no stored row (a past one
  no sync saw, or one owed since the last sync) is listed with ``id`` None.
  It writes nothing, so replaying an instant never leaves rows behind.
* ``mark`` / ``mark_many`` apply the user's done, dismiss and snooze.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from syncagent.config import Config, Reminders
from syncagent.errors import InputError
from syncagent.ledger import turns as ledger_mod
from syncagent.ledger.obligations import (  # noqa: F401  (re-exported: the rules beside the table)
    ACTIVE,
    CHECK_IN,
    FOLLOW_UP,
    KINDS,
    THANK_YOU,
    TURN_KINDS,
    Obligation,
    obligation,
)
from syncagent.store import contacts as contacts_store
from syncagent.store import derived as derived_store
from syncagent.store import reminders as store
from syncagent.store.db import transaction
from syncagent.timeutil import iso, parse_iso, utcnow

log = logging.getLogger(__name__)

# --- evaluation over the database ----------------------------------------------

@dataclass(frozen=True)
class _Contact:
    id: int
    name: str
    company: str | None
    cadence_days: float | None


def _contacts(db) -> list[_Contact]:
    return [_Contact(*row) for row in derived_store.load_persons(db.conn, None)]


def evaluate(db, config: Config, now: datetime, events: dict | None = None, ledgers: dict | None = None):
    """(contact, ledger, obligation or None) for every contact, as things stood at ``now``.

    Every contact appears once with its turn-ledger obligation (or None); a contact
    owed a ``close_loop`` (as an introducer) or suggested by ``next_contact``
    appears again for each of those. ``events`` (contact id -> events) defaults to
    ``ledger_store.contact_events``; ``ledgers`` (contact id -> Ledger at ``now``),
    where the caller has just computed them, saves doing it twice.
    """
    return _evaluate(db, config, now, events, ledgers)[0]


def _evaluate(db, config: Config, now: datetime, events: dict | None = None, ledgers: dict | None = None):
    from syncagent.pipeline import networking  # here: a read of the stored rows needs none of it

    if events is None and ledgers is None:
        from syncagent.pipeline.ledger import contact_events

        events = contact_events(db, now=now)
    tz = config.tz
    empty = ledger_mod.compute((), now)
    contacts = _contacts(db)
    by_id: dict[int, ledger_mod.Ledger] = {}
    for contact in contacts:
        if ledgers is not None:
            by_id[contact.id] = ledgers.get(contact.id, empty)
        else:
            assert events is not None  # loaded above whenever no ledgers were given
            by_id[contact.id] = ledger_mod.compute(events.get(contact.id, ()), now)
    persons = [networking.Person(c.id, c.name, c.company) for c in contacts]
    derived = networking.derive(db, config, now, by_id, persons)
    out = []
    for contact in contacts:
        led = by_id[contact.id]
        ob = obligation(led, config.reminders, tz, now, contact.cadence_days, name=contact.name,
                        away=derived.away.get(contact.id, ()))
        out.append((contact, led, ob))
    known = {c.id: c for c in contacts}
    for contact_id, ob in derived.reminders:
        out.append((known[contact_id], by_id[contact_id], ob))
    return out, derived, by_id, persons


def _settled_by(led, kind: str, anchor: str, settings: Reminders, tz, cadence) -> ledger_mod.Event | None:
    """The first event after ``anchor`` at which (kind, anchor) stopped being owed.

    Replays the ledger one event at a time, so a follow-up is settled by the
    reply (or the next follow-up), a thank-you by the user's next message, a
    check-in by the next message either way. None when the anchor is gone
    (message deleted, contact address changed) or the settings changed.
    """
    events = led.events
    # The anchor is most often a recent event: looked for from the end, by key (no ref spelled out).
    key = ledger_mod.key_of(anchor)
    start = next((i for i in range(len(events) - 1, -1, -1) if events[i].key == key), None)
    if start is None:
        return None
    # The ledger's events are prepared already: the prefixes are replayed as they are, in one walk.
    for i, prefix in enumerate(ledger_mod.replay(events, start + 1, led), start + 1):
        ob = obligation(prefix, settings, tz, events[i].at, cadence)
        if ob is None or (ob.kind, ob.anchor) != (kind, anchor):
            return events[i]
    return None


def _message_id(ref: str | None) -> int | None:
    if ref and ref.startswith("message:"):
        return int(ref.split(":", 1)[1])
    return None


def reconcile(db, config: Config, now: datetime | None = None, *, events: dict | None = None,
              ledgers: dict | None = None) -> dict:
    """Bring the ``reminders`` table up to date at ``now`` (the real clock), in one transaction.

    Returns counts: {"created", "settled", "woken"}.
    """
    return _reconcile(db, config, now or utcnow(), events, ledgers)[0]


def _reconcile(db, config: Config, now: datetime, events: dict | None, ledgers: dict | None) -> tuple[dict, list]:
    from syncagent.pipeline import networking

    now_text = iso(now)
    tz = config.tz
    counts = {"created": 0, "settled": 0, "woken": 0}
    with transaction(db, "reminders") as conn:
        # Read inside the write transaction, so a concurrent writer cannot slip in between.
        evaluated, derived, by_id, persons = _evaluate(db, config, now, events, ledgers)
        owed: dict[int, set] = {}
        for contact, _led, ob in evaluated:
            owed.setdefault(contact.id, set())
            if ob is not None:
                owed[contact.id].add((ob.kind, ob.anchor))
        contacts = {c.id: c for c, _led, _ob in evaluated}
        # Settle first: the schema allows one open row per holder, so an old row must be
        # closed before the new obligation's row goes in.
        settled = []
        for rid, contact_id, kind, anchor, company, about in store.load_active(conn, None, None, None):
            if (kind, anchor) in owed.get(contact_id, ()):
                continue
            contact = contacts.get(contact_id)
            if contact is None:
                continue
            if kind in TURN_KINDS:
                event = _settled_by(by_id[contact_id], kind, anchor, config.reminders, tz, contact.cadence_days)
            else:
                event = networking.settled_by(kind, anchor, contact_id, company, about, now, by_id, derived, persons)
            settled.append((iso(event.at) if event else now_text, _message_id(event.ref if event else None), rid))
        counts["settled"] = store.save_settled(conn, settled)
        counts["created"] = store.save_owed(conn, [
            (contact.id, ob.kind, ob.anchor, iso(ob.due_at), ob.reason, ob.about_contact_id, ob.company)
            for contact, _led, ob in evaluated if ob is not None], now_text)
        counts["woken"] = store.save_woken(conn, now_text)
    if any(counts.values()):
        log.info("reminders: %(created)d new, %(settled)d settled, %(woken)d back from snooze", counts)
    return counts, evaluated


def apply(db, config: Config, derived) -> dict:
    """Bring the reminders of what one pass re-derived (``pipeline.ledger.Pass``) up to date.

    Runs inside the caller's transaction, the one that wrote the ledger rows it reads.
    The stored rows considered are those whose obligation the pass re-evaluated: the
    turn-ledger kinds of the contacts in scope, the close_loops of its introducers and
    introduced, the next_contact of its companies; every other row stands as it was,
    which is what a full pass would leave (the property test checks it). Snoozed rows
    wake whatever the scope. Returns counts: {"created", "settled", "woken"}.
    """
    from syncagent.pipeline import networking

    now, tz, settings = derived.now, config.tz, config.reminders
    now_text = iso(now)
    counts = {"created": 0, "settled": 0, "woken": 0}
    evaluated: list[tuple[int, Obligation]] = []
    for cid in sorted(derived.scope):
        person = derived.persons[cid]
        ob = obligation(derived.ledgers[cid], settings, tz, now, person.cadence_days, name=person.name,
                        away=derived.away.get(cid, ()))
        if ob is not None:
            evaluated.append((cid, ob))
    evaluated += derived.close_loops + derived.next_contacts
    owed = {(cid, ob.kind, ob.anchor) for cid, ob in evaluated}
    active = store.load_active(db.conn, None if derived.full else derived.scope,
                               None if derived.full else derived.introduced,
                               None if derived.full else derived.companies)
    persons = [networking.Person(p.id, p.name, p.company) for p in derived.persons.values()
               if derived.full or key_of(p.company) in derived.companies]
    found = networking.Derived(introductions=derived.introductions)
    settled = []
    for rid, contact_id, kind, anchor, company, about in active:
        if (contact_id, kind, anchor) in owed or contact_id not in derived.persons:
            continue
        if kind in TURN_KINDS:
            if contact_id not in derived.ledgers:
                continue
            event = _settled_by(derived.ledgers[contact_id], kind, anchor, settings, tz,
                                derived.persons[contact_id].cadence_days)
        else:
            event = networking.settled_by(kind, anchor, contact_id, company, about, now, derived.ledgers, found,
                                          persons)
        settled.append((iso(event.at) if event else now_text, _message_id(event.ref if event else None), rid))
    # Settle first: the schema allows one open row per holder, so an old row must be closed
    # before the new obligation's row goes in.
    counts["settled"] = store.save_settled(db.conn, settled)
    counts["created"] = store.save_owed(db.conn, [
        (cid, ob.kind, ob.anchor, iso(ob.due_at), ob.reason, ob.about_contact_id, ob.company)
        for cid, ob in evaluated], now_text)
    counts["woken"] = store.save_woken(db.conn, now_text)
    if any(counts.values()):
        log.info("reminders: %(created)d new, %(settled)d settled, %(woken)d back from snooze", counts)
    return counts


def key_of(company: str | None) -> str | None:
    from syncagent.ledger.companies import key

    return key(company)


def wake_snoozed(db, now: datetime) -> int:
    """Reopen snoozed reminders whose time has come (all a quiet pass needs to do)."""
    woken = store.save_woken(db.conn, iso(now))
    if woken:
        log.info("reminders: %d back from snooze", woken)
    return woken


def _status_at(row: dict, now_text: str) -> str:
    """The stored row's status as it stood at ``now``: a later resolution or snooze is ignored."""
    status = row["status"]
    if status in ("done", "dismissed") and row["resolved_at"] and row["resolved_at"] > now_text:
        return "open"
    if status == "snoozed" and (row["snoozed_until"] or "") <= now_text:
        return "open"
    return status


def listing(db, config: Config, now: datetime | None = None, due_only: bool = False, *,
            events: dict | None = None) -> list[dict]:
    """Open reminders at ``now``: overdue first (thank-yous, follow-ups, check-ins), then upcoming.

    A pure evaluation: nothing is written, whatever ``now`` is. Snoozed, done and
    dismissed reminders are left out. Each dict has id (None when no row is stored
    for it), contact_id, contact_name, contact_email, company, kind, due_at (ISO
    UTC), reason, status, overdue_seconds (negative when upcoming), stale (overdue
    by more than ``stale_after_days``), last_subject, anchor, created_at,
    snoozed_until and notified_at.
    """
    now = now or utcnow()
    return _listing(db, config, now, evaluate(db, config, now, events), due_only)


def stored(db, config: Config, now: datetime | None = None, due_only: bool = False) -> list[dict]:
    """The reminders as the last pass stored them, open at ``now`` (the clock): what ``reminders`` lists.

    A read: nothing is computed but how overdue each is, and nothing is written. The
    rows are those the derived stage keeps at the clock after every sync; a snoozed
    row whose date has come is listed as open. The same dicts, in the same order, as
    ``listing``.
    """
    from syncagent.store import reminders as store

    now = now or utcnow()
    stale_after = config.reminders.stale_after_days * 86400
    out = []
    for row in store.load_open(db.conn, iso(now)):
        overdue = int((now - parse_iso(str(row["due_at"]))).total_seconds())
        if due_only and overdue < 0:
            continue
        out.append({"id": row["id"], "contact_id": row["contact_id"], "contact_name": row["contact_name"],
                    "contact_email": row["contact_email"], "company": row["company"], "kind": row["kind"],
                    "due_at": row["due_at"], "reason": row["reason"], "status": "open", "overdue_seconds": overdue,
                    "stale": overdue > stale_after, "last_subject": row["last_subject"], "anchor": row["anchor"],
                    "created_at": row["created_at"], "snoozed_until": row["snoozed_until"],
                    "notified_at": row["notified_at"]})
    _sort(out)
    return out


def _sort(items: list[dict]) -> None:
    """Overdue first (thank-yous, close-loops, follow-ups, check-ins, suggestions; longest overdue first), then upcoming."""
    order = {k: i for i, k in enumerate(KINDS)}
    items.sort(key=lambda r: (0, order[r["kind"]], -r["overdue_seconds"], r["contact_id"])
               if r["overdue_seconds"] >= 0 else (1, 0, -r["overdue_seconds"], r["contact_id"]))


def current(db, config: Config, due_only: bool = False, now: datetime | None = None) -> list[dict]:
    """Reconcile the table at the real clock (``now``: its reading), then list it.

    Every item then has its stored row's id, and the table agrees with the list
    (what Datasette's queries on ``status = 'open'`` read).
    """
    now = now or utcnow()
    _, evaluated = _reconcile(db, config, now, None, None)
    return _listing(db, config, now, evaluated, due_only)


def _listing(db, config: Config, now: datetime, evaluated: list, due_only: bool) -> list[dict]:
    now_text = iso(now)
    stale_after = config.reminders.stale_after_days * 86400
    stored = _rows_by_key(db)
    emails = _first_emails(db)
    out = []
    for c, led, ob in evaluated:
        if ob is None:
            continue
        row = stored.get((c.id, ob.kind, ob.anchor))
        if row is not None and _status_at(row, now_text) != "open":
            continue
        overdue = int((now - ob.due_at).total_seconds())
        if due_only and overdue < 0:
            continue
        out.append({
            "id": row["id"] if row else None,
            "contact_id": c.id,
            "contact_name": c.name,
            "contact_email": emails.get(c.id),
            "company": c.company,
            "kind": ob.kind,
            "due_at": iso(ob.due_at),
            "reason": ob.reason,
            "status": "open",
            "overdue_seconds": overdue,
            # Overdue this long it is history more than a task (a first sync of years of mail):
            # listed apart, never notified, counted in the digest.
            "stale": overdue > stale_after,
            "last_subject": led.last_message.subject if led.last_message else None,
            "anchor": ob.anchor,
            "created_at": row["created_at"] if row else None,
            "snoozed_until": row["snoozed_until"] if row else None,
            "notified_at": row["notified_at"] if row else None,
        })
    _sort(out)
    return out


def _rows_by_key(db) -> dict[tuple, dict]:
    rows = store.load_all(db.conn)
    return {(r["contact_id"], r["kind"], r["anchor"]): r for r in rows}


def _first_emails(db) -> dict[int, str]:
    emails: dict[int, str] = {}
    for contact_id, address in contacts_store.load_ordered_addresses(db.conn):
        emails.setdefault(contact_id, address)
    return emails


# --- the user's choices ------------------------------------------------------------

def get(db, reminder_id: int) -> dict:
    row = store.load_reminder(db.conn, reminder_id)
    if row is None:
        raise InputError(f"There is no reminder with id {reminder_id}; run `syncagent reminders` to see the ids.")
    return row


ACTIONS = ("done", "dismiss", "snooze")


def mark(db, reminder_id: int, action: str, now: datetime | None = None, until: datetime | None = None) -> dict:
    """Apply 'done', 'dismiss' or 'snooze' (until ``until``, default 3 days) to a reminder; return the row."""
    mark_many(db, [reminder_id], action, now, until)
    return get(db, reminder_id)


def mark_many(db, ids, action: str, now: datetime | None = None, until: datetime | None = None) -> int:
    """Apply one action to every reminder in ``ids`` in one transaction; return how many rows changed.

    All or nothing: an id that does not exist, or a reminder already done or
    dismissed, is refused with one sentence before anything changes (reopening a
    settled row could give a contact two open reminders).
    """
    if action not in ACTIONS:
        raise ValueError(action)
    now = now or utcnow()
    ids = list(dict.fromkeys(int(i) for i in ids))
    if action == "snooze":
        until = until or now + timedelta(days=3)
        if until <= now:
            raise InputError(f"The snooze date {iso(until)} is not in the future; give a later --until date.")
    if not ids:
        return 0
    with transaction(db, "mark") as conn:
        found = store.load_statuses(conn, ids)
        missing = [i for i in ids if i not in found]
        if missing:
            if len(missing) == 1:
                raise InputError(f"There is no reminder with id {missing[0]}; run `syncagent reminders` to see the ids.")
            raise InputError(f"There are no reminders with ids {_join(missing)}; run `syncagent reminders` to see "
                             "the ids.")
        settled = [i for i in ids if found[i] not in ACTIVE]
        if settled:
            first = settled[0]
            what = (f"Reminder {first} is already {found[first]}" if len(settled) == 1
                    else f"Reminders {_join(settled)} are already done or dismissed")
            raise InputError(f"{what}, so nothing was changed; `syncagent reminders` lists the open ones.")
        if action == "snooze":
            assert until is not None
            store.save_snoozed(conn, ids, iso(until))
        else:
            store.save_resolved(conn, ids, "done" if action == "done" else "dismissed", iso(now))
    return len(ids)


def _join(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)


def parse_until(text: str, tz: tzinfo, option: str = "--until") -> datetime:
    """An ISO date (midnight at its start, in the user's zone) or datetime (local if no offset) -> UTC."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{option} {text!r} is not an ISO date or date-time; write it like 2026-12-01 or "
                         "2026-12-01T09:00.") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return parse_iso(dt.isoformat())
