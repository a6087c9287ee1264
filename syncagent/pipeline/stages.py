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
import json
import logging
import sqlite3
from datetime import datetime

from syncagent.config import Config
from syncagent.store.db import transaction
from syncagent.timeutil import iso, utcnow

log = logging.getLogger(__name__)


def after_sync(db, config: Config, *, now: datetime | None = None, force: bool = False) -> None:
    """Bring every derived table up to date at ``now``.

    Each stage commits in one transaction; a failed write leaves the previous
    result in place and is reported as one StoreError sentence.
    """
    from syncagent.store import db as store

    try:
        _stages(db, config, now or utcnow(), force)
    except sqlite3.Error as exc:
        raise store.write_error(exc, "the ledger and reminders were left as they were") from exc


def _stages(db, config: Config, now: datetime, force: bool) -> None:
    from syncagent.pipeline import ledger as ledger_store
    from syncagent.pipeline import meetings, outreach, reminders, stats, threads
    from syncagent.store import search

    search.catch_up(db)
    mail, people, own = _mail_fingerprint(db), _people_fingerprint(db, config), _own_addresses(config)
    last = _load(db)
    mail_changed = force or last.get("mail") != mail
    last_own = {} if force else last.get("own") or {}
    # Until a pass completes its state is not saved, so a failed one re-derives all of this again.
    own_changed = {name: a for name, a in own.items() if last_own.get(name) != a}
    derive_directions(db, own_changed)
    ledger_changed = (mail_changed or bool(own_changed) or last.get("people") != people
                      or _events_crossed(db, last.get("now"), iso(now)) or not stats.stored(db))
    if mail_changed:
        threads.rebuild(db)
        meetings.rebuild(db, config.timezone)
    if ledger_changed:
        ledgers = ledger_store.recompute(db, now, config.timezone, config=config)
        reminders.reconcile(db, config, now, ledgers=ledgers)
        outreach.rebuild(db, config, now, ledgers)
    else:
        stats.refresh(db, now)
        reminders.wake_snoozed(db, now)
    _save(db, {"mail": mail, "people": people, "own": own, "now": iso(now)})


def _own_addresses(config: Config) -> dict[str, list[str]]:
    """Each configured account's own addresses (the username where ``addresses`` is empty)."""
    return {a.name: sorted(a.addresses) for a in config.accounts}


_WANTED = "CASE WHEN from_address IN (SELECT value FROM json_each(:own)) THEN 'outgoing' ELSE 'incoming' END"
_DIRECTION_SQL = f"UPDATE messages SET direction = {_WANTED} WHERE account = :account AND direction != {_WANTED}"


def derive_directions(db, own: dict[str, list[str]]) -> int:
    """Set ``messages.direction`` of each account in ``own`` from its From address; return rows changed.

    Direction is a fact about the config as it is now, not as it was when the mail
    was fetched: fixing ``addresses`` (an alias the user sends from) turns that mail
    outgoing on the next pass, with no refetch. Set-wise, one statement per account,
    writing only rows whose direction changes. Accounts no longer configured keep theirs.
    """
    if not own:
        return 0
    conn = db.conn
    changed = 0
    with transaction(db, "directions"):
        for account, addresses in own.items():
            cur = conn.execute(_DIRECTION_SQL, {"account": account, "own": json.dumps(addresses)})
            changed += cur.rowcount
    if changed:
        log.info("re-derived the direction of %d messages from the configured addresses", changed)
    return changed


def _mail_fingerprint(db) -> list:
    """Changes whenever a message, an address of one, or a calendar part is added or goes."""
    conn = db.conn
    messages = conn.execute("SELECT count(*), coalesce(max(id), 0), total(gone) FROM messages").fetchone()
    addresses = conn.execute("SELECT count(*) FROM message_addresses").fetchone()
    calendars = conn.execute("SELECT count(*) FROM calendar_parts").fetchone()
    return [*messages, *addresses, *calendars]


def _people_fingerprint(db, config: Config) -> str:
    """Changes with the contacts, their addresses, or the settings the reminders follow."""
    conn = db.conn
    contacts = conn.execute("SELECT count(*), max(updated_at), total(cadence_days) FROM contacts").fetchone()
    emails = conn.execute("SELECT count(*), total(contact_id), max(address) FROM contact_emails").fetchone()
    # The user's own addresses decide which mail is an introduction.
    settings = (config.timezone, config.reminders, sorted({a for acct in config.accounts for a in acct.addresses}))
    return hashlib.sha1(repr((contacts, emails, settings)).encode()).hexdigest()


def _events_crossed(db, before: str | None, after: str) -> bool:
    """Did a message or a meeting's end fall between the last pass's clock and this one's?"""
    if before is None:
        return True
    low, high = min(before, after), max(before, after)
    if low == high:
        return False
    conn = db.conn
    return bool(
        conn.execute("SELECT 1 FROM messages WHERE date > ? AND date <= ? LIMIT 1", [low, high]).fetchone()
        or conn.execute("SELECT 1 FROM meetings WHERE end_at > ? AND end_at <= ? LIMIT 1", [low, high]).fetchone()
    )


def _load(db) -> dict:
    row = db.conn.execute("SELECT value FROM pipeline_state WHERE name = 'derived'").fetchone()
    return json.loads(row[0]) if row else {}


def _save(db, state: dict) -> None:
    db.conn.execute(
        "INSERT INTO pipeline_state (name, value) VALUES ('derived', ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [json.dumps(state)],
    )
