"""The derived stages run after every sync, in order. Each can be rerun alone.

search index -> directions -> threads -> meetings -> ledger (with the figures) ->
reminders. When neither the mail, the contacts, the user's own addresses nor the
reminder settings changed and no message or meeting crossed the clock since the
last pass, the ledger cannot have changed either, so a daemon polling a quiet
mailbox only re-dates the reply figures (their 90-day window moves with the
clock) and wakes snoozed reminders instead of rebuilding.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from datetime import datetime

from syncagent.config import Config
from syncagent.store import derived as derived_store
from syncagent.store import mail as mail_store
from syncagent.store.db import transaction
from syncagent.store.state import load_stage_state, save_stage_state
from syncagent.timeutil import iso, utcnow

log = logging.getLogger(__name__)

_STATE = "derived"  # the pipeline_state row holding the last pass's fingerprints and watermark


def after_sync(db, config: Config, *, now: datetime | None = None, force: bool = False) -> None:
    """Bring every derived table up to date at ``now``.

    Each stage commits in one transaction; a failed write leaves the previous
    result in place and is reported as one StoreError sentence.
    """
    from syncagent.pipeline import collector, heap
    from syncagent.store import db as store

    try:
        with collector.paused():
            _stages(db, config, now or utcnow(), force)
    except sqlite3.Error as exc:
        raise store.write_error(exc, "the ledger and reminders were left as they were") from exc
    finally:
        heap.release()  # a daemon does not keep a full pass's freed memory until its next pass


def _stages(db, config: Config, now: datetime, force: bool) -> None:
    from syncagent.pipeline import meetings, stats, threads
    from syncagent.store import search

    search.catch_up(db)
    mail, people, own = _mail_fingerprint(db), _people_fingerprint(db, config), _own_addresses(config)
    last = _load(db)
    last_own = {} if force else last.get("own") or {}
    # Until a pass completes its state is not saved, so a failed one re-derives all of this again.
    own_changed = {name: a for name, a in own.items() if last_own.get(name) != a}
    derive_directions(db, own_changed)
    # Each decides itself what is new since its last pass, and notices a time zone or contacts change.
    threads.update(db, full=force)
    meetings.update(db, config.timezone, full=force)
    full = force or bool(own_changed) or last.get("settings") != _settings_fingerprint(config) or not stats.stored(db)
    derive(db, config, now, last, full=full, mail=mail, people=people, own=own)


def derive(db, config: Config, now: datetime, last: dict | None = None, *, full: bool = False,
           mail: list | None = None, people: str | None = None, own: dict | None = None) -> dict:
    """The ledger, the reminders and the measured asks at ``now``, for what changed since ``last``.

    What changed (``changed_contacts``) is re-derived in one transaction with the
    watermark that says so, so a pass killed half way leaves the previous pass's rows
    and watermark and the next one starts from there. ``full`` re-derives everything.
    Returns the state saved.
    """
    from syncagent.pipeline import ledger, outreach, reminders, stats
    from syncagent.store import derived as store

    last = _load(db) if last is None else last
    now_text = iso(now)
    with transaction(db, "ledger") as conn:
        if mail is not None:
            marks = store.MailMarks(mail[1], mail[0], mail[2])  # the fingerprint holds them already
        else:
            marks = store.load_mail_marks(conn)
        inputs_mark = store.load_inputs_mark(conn)
        edited: dict = {}
        changed = None if full else changed_contacts(db, last, marks, now_text)
        last_mark = last.get("inputs")
        if changed is not None and inputs_mark != last_mark:
            # A contact, an address or a meeting changed: which ones, and what they were. When
            # only the meetings moved (an invitation came), only the contacts that have or had
            # one can differ: the others are not read.
            ids = None
            if isinstance(last_mark, dict) and last_mark.get("contacts") == inputs_mark["contacts"]:
                ids = store.load_meeting_holders(conn)
            inputs, old = store.load_contact_inputs(conn, ids), store.load_stored_inputs(conn, ids)
            edited = {cid: (old.get(cid), inputs.get(cid)) for cid in inputs.keys() | old.keys()
                      if inputs.get(cid) != old.get(cid)}
            changed |= edited.keys()
        if changed is None or changed:
            # Incremental: every stored row is what the last pass derived, so what did not
            # change is read back from them (see ledger.derive's resume).
            resume = None if changed is None else (int(last["max_id"]), str(last["now"]))
            result = ledger.derive(db, config, now, changed, edited=edited, resume=resume)
            reminders.apply(db, config, result)
            outreach.update(db, config, result)
        else:
            # Nothing to re-derive: only the 90-day window of the reply figures moved.
            stats.store(conn, stats.stored_figures(db, now))
            reminders.wake_snoozed(db, now)
        state = {"mail": mail if mail is not None else _mail_fingerprint(db),
                 "people": people if people is not None else _people_fingerprint(db, config),
                 "own": own if own is not None else _own_addresses(config),
                 "settings": _settings_fingerprint(config), "now": now_text, "inputs": inputs_mark,
                 "max_id": marks.max_id, "messages": marks.messages, "addresses": marks.addresses}
        _save(db, state)
    return state


def changed_contacts(db, last: dict, marks, now: str) -> set[int] | None:
    """The contacts whose derived rows may differ from the stored ones at ``now`` because of new
    mail, the clock or a recheck instant (contact edits are added by the caller), or None when
    the whole derivation must run (mail went away, the clock went back, no watermark yet)."""
    from syncagent.store import derived as store

    conn = db.conn
    if "max_id" not in last or not last.get("now") or now < last["now"]:
        return None
    new_messages, new_addresses = store.load_new_mail_counts(conn, last["max_id"])
    if (marks.messages - last["messages"] != new_messages
            or marks.addresses - last["addresses"] != new_addresses):
        return None  # messages or addresses were removed or rewritten: not a matter of a few contacts
    changed = store.load_contacts_of_new_mail(conn, last["max_id"]) if new_messages else set()
    if now > last["now"]:
        changed |= store.load_contacts_crossed(conn, last["now"], now)
    for holder in store.load_due_rechecks(conn, now):
        kind, _, name = holder.partition(":")
        if kind == "contact":
            changed.add(int(name))
        else:
            changed |= store.load_members(conn, [name])
    return changed


def _settings_fingerprint(config: Config) -> str:
    """Changes with what every contact's derivation follows: the zone, the reminder settings, own addresses."""
    settings = (config.timezone, config.reminders, sorted({a for acct in config.accounts for a in acct.addresses}))
    return hashlib.sha1(repr(settings).encode()).hexdigest()


def _own_addresses(config: Config) -> dict[str, list[str]]:
    """Each configured account's own addresses (the username where ``addresses`` is empty)."""
    return {a.name: sorted(a.addresses) for a in config.accounts}


def derive_directions(db, own: dict[str, list[str]]) -> int:
    """Set ``messages.direction`` of each account in ``own`` from its From address; return rows changed.

    Direction is a fact about the config as it is now, not as it was when the mail
    was fetched: fixing ``addresses`` (an alias the user sends from) turns that mail
    outgoing on the next pass, with no refetch. Set-wise, one statement per account,
    writing only rows whose direction changes. Accounts no longer configured keep theirs.
    """
    if not own:
        return 0
    changed = 0
    with transaction(db, "directions") as conn:
        for account, addresses in own.items():
            changed += mail_store.save_directions(conn, account, addresses)
    if changed:
        log.info("re-derived the direction of %d messages from the configured addresses", changed)
    return changed


def _mail_fingerprint(db) -> list:
    """Changes whenever a message, an address of one, or a calendar part is added or goes."""
    return derived_store.load_mail_fingerprint(db.conn)


def _people_fingerprint(db, config: Config) -> str:
    """Changes with the contacts, their addresses, or the settings the reminders follow."""
    contacts, emails = derived_store.load_people_marks(db.conn)
    # The user's own addresses decide which mail is an introduction.
    settings = (config.timezone, config.reminders, sorted({a for acct in config.accounts for a in acct.addresses}))
    return hashlib.sha1(repr((contacts, emails, settings)).encode()).hexdigest()


def derived(db) -> bool:
    """Has a pass derived the ledger and the reminders (with its watermark) at least once?"""
    return "max_id" in _load(db)


def _load(db) -> dict:
    return load_stage_state(db.conn, _STATE) or {}


def _save(db, state: dict) -> None:
    save_stage_state(db.conn, _STATE, state)
