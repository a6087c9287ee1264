"""The SQL of the incremental derived stages: which contacts a pass affects, their events, their rows.

A pass of ``pipeline.stages`` re-derives a *scope* of contacts (``pipeline.ledger``
says which); this module holds every read and write it needs:

* what changed: the mail watermark (``load_mail_marks``), the contacts touched by
  messages new since it (``load_contacts_of_new_mail``) or whose date crossed the
  clock (``load_contacts_crossed``), each contact's inputs (``load_contact_inputs``
  against ``load_stored_inputs``) and the holders whose stored recheck instant has
  passed (``load_due_rechecks``);
* the ledger's events for a set of contacts (``load_events``) under the matching
  rules of DESIGN.md ("The ledger rules"), or, in an incremental pass, read back from
  their stored contact_messages rows plus the few messages those cannot hold yet
  (``load_resumed_events``: a range read per contact instead of a join per message);
* the rows derived for a scope (``save_rows``: contact_ledger, replies,
  contact_messages restricted to the scope, written as a set difference) and the
  weekly figures recounted for the weeks a pass touched (``load_week_counts``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from syncagent.ledger.turns import IN, MEETING, OUT, Event, to_utc

log = logging.getLogger(__name__)

# Far enough in the future that every ISO date string sorts before it.
NO_LIMIT = "9999-12-31T23:59:59Z"

# Driven from contact_emails so each contact address is one index lookup into
# message_addresses (the store always records the sender there with role 'from').
# {address} is the plain column when every contact address is normalized (contacts/
# does that), else lower(trim()), which still allows the lookup and tolerates a
# hand-edited row. {scope} narrows it to some contacts.
_MESSAGES_SQL = """
SELECT ce.contact_id, m.id, m.message_id, m.date, m.direction, m.subject
FROM contact_emails ce
JOIN message_addresses a ON a.address = {address}
JOIN messages m ON m.id = a.message
WHERE m.automatic = 0 AND m.date <= :until {scope}
  AND ((m.direction = 'outgoing' AND a.role IN ('to', 'cc', 'bcc'))
       OR (m.direction = 'incoming' AND a.role = 'from'))
ORDER BY m.id
"""

# A meeting counts once it has ended; cancelled ones and those without an end never count.
_MEETINGS_SQL = """
SELECT mc.contact_id, m.id, m.end_at, m.summary
FROM meeting_contacts mc
JOIN meetings m ON m.id = mc.meeting
WHERE m.status = 'confirmed' AND m.end_at IS NOT NULL AND m.end_at <= :until {scope}
"""

_IN_SCOPE = "AND ce.contact_id IN (SELECT value FROM json_each(:ids))"
_IN_SCOPE_MEETINGS = "AND mc.contact_id IN (SELECT value FROM json_each(:ids))"


def _ids(ids: Iterable[int]) -> str:
    return json.dumps(sorted(ids))


def parse_at(text: str | None, pk: int | str) -> datetime | None:
    """A stored timestamp as aware UTC, or None (logged) when it cannot be read."""
    try:
        return to_utc(datetime.fromisoformat(text))  # type: ignore[arg-type]  # reads "...Z" as UTC
    except (TypeError, AttributeError, ValueError):
        log.warning("skipping row %s with an unreadable timestamp %r", pk, text)
        return None


def load_contact_ids(conn: sqlite3.Connection) -> list[int]:
    return [cid for (cid,) in conn.execute("SELECT id FROM contacts ORDER BY id")]


def load_events(conn: sqlite3.Connection, until: str, ids: Collection[int] | None = None) -> dict[int, list[Event]]:
    """The events (messages and ended meetings, at or before ``until``) of the contacts ``ids``
    (None: every contact), keyed by contact id; each of them gets an entry, empty when nothing
    involves them. The same Message-ID held by several accounts counts once per contact: the
    row with the lowest id stands for it."""
    if ids is None:
        events: dict[int, list[Event]] = {cid: [] for cid in load_contact_ids(conn)}
        params: dict[str, str] = {"until": until}
        scope = meeting_scope = ""
    else:
        events = {cid: [] for cid in ids}
        params = {"until": until, "ids": _ids(ids)}
        scope, meeting_scope = _IN_SCOPE, _IN_SCOPE_MEETINGS
        if not ids:
            return events
    messy = not _addresses_normalized(conn)
    sql = _MESSAGES_SQL.format(address="lower(trim(ce.address))" if messy else "ce.address", scope=scope)
    # A thread's messages share a subject ("Re: ..."): one string for all of them, not one per
    # event (a full pass holds a million messages' events at once).
    subjects: dict[str, str] = {}
    # ORDER BY m.id brings a message's rows together (one per contact, role and address): its
    # date is parsed once, and a second role of it for the same contact (To and Bcc, two
    # addresses) is dropped by the set of the contacts it already reached. A Message-ID is
    # unique within an account, so only with several accounts can two rows be copies of one
    # message: then every (contact, Message-ID) is remembered, and the lowest id wins.
    copies: set[tuple[int, str]] | None = set() if several_accounts(conn) else None
    _add_message_events(events, conn.execute(sql, params), copies, subjects)
    _add_meeting_events(events, conn.execute(_MEETINGS_SQL.format(scope=meeting_scope), params))
    return events


def _addresses_normalized(conn: sqlite3.Connection) -> bool:
    """Is every contact address as contacts/ writes it (trimmed, lower-case)? Else a hand-edited row."""
    return conn.execute("SELECT 1 FROM contact_emails WHERE address != lower(trim(address)) LIMIT 1").fetchone() is None


def several_accounts(conn: sqlite3.Connection) -> bool:
    """Only with several accounts can two message rows be copies of one message."""
    # Two statements: SQLite answers a lone min() or max() from the index, both at once by a scan.
    first, = conn.execute("SELECT min(account) FROM messages").fetchone()
    last, = conn.execute("SELECT max(account) FROM messages").fetchone()
    return bool(first != last)


def _add_message_events(events: dict[int, list[Event]], rows: Iterable[Any], copies: set[tuple[int, str]] | None,
                        subjects: dict[str, str]) -> None:
    """Append the events of ``rows`` (contact, message id, Message-ID, date, direction, subject),
    ordered by message id, under the rule that a message counts once per contact."""
    last_pk, last_at = None, None
    reached: set[int] = set()
    for contact_id, pk, message_id, date, direction, subject in rows:
        if pk != last_pk:  # the message's time: one object for all the contacts it reaches
            last_pk, last_at, reached = pk, parse_at(date, pk), set()
        if last_at is None or contact_id in reached:
            continue
        reached.add(contact_id)
        if copies is not None:
            if (contact_id, message_id) in copies:
                continue
            copies.add((contact_id, message_id))
        if subject is not None:
            subject = subjects.setdefault(subject, subject)
        events.setdefault(contact_id, []).append(Event(last_at, OUT if direction == "outgoing" else IN, pk, subject))


def _add_meeting_events(events: dict[int, list[Event]], rows: Iterable[Any]) -> None:
    for contact_id, pk, end_at, summary in rows:
        at = parse_at(end_at, pk)
        if at is not None:
            events.setdefault(contact_id, []).append(Event(at, MEETING, f"meeting:{pk}", summary))


# The messages a contact's stored rows cannot hold yet: stored since the last pass (id above its
# watermark), or dated at or after its clock (then in the future; the second's prefix, so a date
# with a fraction of a second sorts with it). Driven from those few messages, not from the contacts.
_RESUME_SQL = """
SELECT ce.contact_id, m.id, m.message_id, m.date, m.direction, m.subject
FROM messages m
JOIN message_addresses a ON a.message = m.id
JOIN contact_emails ce ON ce.address = a.address
WHERE m.id IN (SELECT id FROM messages WHERE id > :since UNION SELECT id FROM messages WHERE date >= :last)
  AND m.automatic = 0 AND m.date <= :until AND ce.contact_id IN (SELECT value FROM json_each(:ids))
  AND ((m.direction = 'outgoing' AND a.role IN ('to', 'cc', 'bcc'))
       OR (m.direction = 'incoming' AND a.role = 'from'))
ORDER BY m.id
"""


@dataclass
class Resumed:
    """What ``load_resumed_events`` read: the events of the contacts it could answer for, those
    it could not (``whole``: to be loaded by ``load_events``), and of the others the messages
    of the stored contact_messages rows read (the rows themselves are read again only where
    the pass compares them: ``load_message_rows``)."""

    events: dict[int, list[Event]]
    whole: set[int]
    read_back: dict[int, set[int]]
    # Of the contacts read back: the earliest instant of an event the last pass did not have
    # (a message new since, a meeting that ended at or after its clock), where there is one,
    # and how many message events are not from their rows. Before that instant a contact's
    # history is the one the last pass derived.
    tails: dict[int, datetime] = field(default_factory=dict)
    added: dict[int, int] = field(default_factory=dict)


def load_resumed_events(conn: sqlite3.Connection, until: str, ids: Collection[int], since: int,
                        last: str) -> Resumed:
    """``load_events`` for contacts whose rows the last pass (watermark ``since``, clock ``last``)
    stored and that did not change since: their stored contact_messages rows, and the events of
    the messages those cannot hold yet. It cannot answer for a contact with a stored row from
    before rows kept their time, or with a message that has a copy in another account (which
    copy counts can move); nor for any when a contact address is not normalized."""
    events: dict[int, list[Event]] = {cid: [] for cid in ids}
    if not ids:
        return Resumed(events, set(), {})
    if not _addresses_normalized(conn):
        return Resumed(events, set(ids), {})  # a hand-edited address: only load_events' join tolerates it
    scope = _ids(ids)
    subjects: dict[str, str] = {}
    stored: dict[int, set[int]] = {cid: set() for cid in ids}
    reload: set[int] = set()
    # The loop body runs once per stored row (278,000 at a million messages for 100 new ones):
    # only what an event needs is read, and the common case of a time (as the store writes
    # it, in UTC) is parsed inline.
    parse, utc = datetime.fromisoformat, timezone.utc
    for cid, pk, direction, at, subject in conn.execute(
            "SELECT contact_id, message, direction, at, subject FROM contact_messages "
            "WHERE contact_id IN (SELECT value FROM json_each(?))", [scope]):
        try:
            when: datetime | None = parse(at)
        except (TypeError, ValueError):
            when = parse_at(at, pk) if at is not None else None  # logs an unreadable one
        if when is None:
            reload.add(cid)
            continue
        if when.tzinfo is not utc:
            when = to_utc(when)
        if subject is not None:
            subject = subjects.setdefault(subject, subject)
        stored[cid].add(pk)
        events[cid].append(Event(when, OUT if direction == "outgoing" else IN, pk, subject))
    rows = [r for r in conn.execute(_RESUME_SQL, {"since": since, "last": last[:19], "until": until, "ids": scope})
            if r[1] not in stored[r[0]]]
    if rows and several_accounts(conn):
        copied = {mid for (mid,) in conn.execute(
            "SELECT message_id FROM messages WHERE message_id IN (SELECT value FROM json_each(?)) "
            "GROUP BY message_id HAVING count(*) > 1", [json.dumps(sorted({r[2] for r in rows}))])}
        reload |= {r[0] for r in rows if r[2] in copied}
    _add_message_events(events, (r for r in rows if r[0] not in reload), None, subjects)
    added = {cid: len(evs) - len(stored[cid]) for cid, evs in events.items() if len(evs) > len(stored[cid])}
    tails = {cid: min(e.at for e in events[cid][len(stored[cid]):]) for cid in added}
    counted = {cid: len(evs) for cid, evs in events.items()}
    _add_meeting_events(events, conn.execute(_MEETINGS_SQL.format(scope=_IN_SCOPE_MEETINGS),
                                             {"until": until, "ids": scope}))
    clock = parse_at(last[:19] + "Z", "the last pass's clock")  # its second, as _RESUME_SQL reads it
    for cid, evs in events.items():
        for e in evs[counted[cid]:]:
            if clock is None or e.at >= clock:
                tails[cid] = min(tails.get(cid, e.at), e.at)
    for cid in reload:
        events[cid] = []
        del stored[cid]
        tails.pop(cid, None)
        added.pop(cid, None)
    return Resumed(events, reload, stored, tails, added)


# --- what changed since the last pass ------------------------------------------------

@dataclass(frozen=True)
class MailMarks:
    """Where the mail stood at a pass: the highest message id, and how many messages and addresses."""

    max_id: int
    messages: int
    addresses: int


def load_mail_marks(conn: sqlite3.Connection) -> MailMarks:
    messages, max_id, addresses, _calendars = load_mail_fingerprint(conn)
    return MailMarks(int(max_id), int(messages), int(addresses))


def load_mail_fingerprint(conn: sqlite3.Connection) -> list[int | float]:
    """[messages, highest id, addresses, calendar parts]: changes whenever one is added or goes.

    Every pass reads it, so it costs the same at any size: the counts are the ones the
    triggers of ``mail_counts`` keep, the highest id comes from the key. Mail gone from the
    server still counts (it is history), so the ``gone`` flag is not part of it.
    """
    counts = conn.execute("SELECT messages, addresses, calendar_parts FROM mail_counts").fetchone()
    if counts is None:  # its one row deleted by hand: counted (the triggers then update nothing)
        counts = conn.execute("SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM message_addresses), "
                              "(SELECT count(*) FROM calendar_parts)").fetchone()
    messages, addresses, calendars = counts
    (max_id,) = conn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()
    return [messages, max_id, addresses, calendars]


def load_people_marks(conn: sqlite3.Connection) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """Aggregates of ``contacts`` and ``contact_emails`` that change with any edit of either."""
    contacts = conn.execute("SELECT count(*), max(updated_at), total(cadence_days) FROM contacts").fetchone()
    emails = conn.execute("SELECT count(*), total(contact_id), max(address) FROM contact_emails").fetchone()
    return tuple(contacts), tuple(emails)


def load_new_mail_counts(conn: sqlite3.Connection, after_id: int) -> tuple[int, int]:
    """(messages, address rows) with a message id above ``after_id``."""
    (messages,) = conn.execute("SELECT count(*) FROM messages WHERE id > ?", [after_id]).fetchone()
    (addresses,) = conn.execute("SELECT count(*) FROM message_addresses WHERE message > ?", [after_id]).fetchone()
    return int(messages), int(addresses)


def load_contacts_of_new_mail(conn: sqlite3.Connection, after_id: int) -> set[int]:
    """Contacts named in any role of a message with an id above ``after_id``, automatic mail included
    (an auto-reply can move a follow-up, a Cc can be an introduction)."""
    return {cid for (cid,) in conn.execute(
        "SELECT DISTINCT ce.contact_id FROM message_addresses a JOIN contact_emails ce ON ce.address = a.address "
        "WHERE a.message > ?", [after_id])}


def load_contacts_crossed(conn: sqlite3.Connection, low: str, high: str) -> set[int]:
    """Contacts of the messages dated, and the meetings ending, in (``low``, ``high``]: events the clock
    has just reached."""
    found = {cid for (cid,) in conn.execute(
        "SELECT DISTINCT ce.contact_id FROM messages m JOIN message_addresses a ON a.message = m.id "
        "JOIN contact_emails ce ON ce.address = a.address WHERE m.date > ? AND m.date <= ?", [low, high])}
    found |= {cid for (cid,) in conn.execute(
        "SELECT DISTINCT mc.contact_id FROM meetings m JOIN meeting_contacts mc ON mc.meeting = m.id "
        "WHERE m.end_at > ? AND m.end_at <= ?", [low, high])}
    return found


@dataclass(frozen=True)
class ContactInput:
    """What a contact's derived rows depend on besides the mail: its fields, addresses and meetings."""

    signature: str
    company_key: str | None
    addresses: tuple[str, ...]


def load_inputs_mark(conn: sqlite3.Connection) -> dict[str, list[object]]:
    """A cheap summary of every contact input: when it changes, ``load_contact_inputs`` says which.

    In two parts: the contacts and their addresses, and the meetings and who is in them.
    """
    contacts = conn.execute(
        "SELECT count(*), max(updated_at), total(cadence_days), total(id * length(name)), "
        "total(id * length(coalesce(company, ''))) FROM contacts").fetchone()
    emails = conn.execute("SELECT count(*), total(contact_id), max(address), total(contact_id * length(address)) "
                          "FROM contact_emails").fetchone()
    meetings = conn.execute("SELECT count(*), max(id), max(end_at), total(id * length(coalesce(end_at, ''))), "
                            "total(status = 'confirmed') FROM meetings").fetchone()
    links = conn.execute("SELECT count(*), total(contact_id * meeting) FROM meeting_contacts").fetchone()
    return {"contacts": [*contacts, *emails], "meetings": [*meetings, *links]}


def load_meeting_holders(conn: sqlite3.Connection) -> set[int]:
    """The contacts in a meeting now, or whose inputs held one when last derived (the signature's
    last member is its meetings: see load_contact_inputs)."""
    return {cid for (cid,) in conn.execute(
        "SELECT contact_id FROM meeting_contacts UNION "
        "SELECT contact_id FROM derived_inputs WHERE json_array_length(signature, '$[4]') > 0")}


def _in(ids: Collection[int] | None, column: str) -> tuple[str, list[str]]:
    if ids is None:
        return "", []
    return f" WHERE {column} IN (SELECT value FROM json_each(?))", [_ids(ids)]


def load_contact_inputs(conn: sqlite3.Connection, ids: Collection[int] | None = None) -> dict[int, ContactInput]:
    """The inputs of the contacts ``ids`` (None: every contact) as they are now (``company_key``
    trimmed and case-folded, as 3B7 compares)."""
    emails: dict[int, list[str]] = {}
    where, args = _in(ids, "contact_id")
    for cid, address in conn.execute(f"SELECT contact_id, address FROM contact_emails{where} "
                                     "ORDER BY contact_id, address", args):
        emails.setdefault(cid, []).append(address)
    meetings: dict[int, list[str]] = {}
    where, args = _in(ids, "mc.contact_id")
    for cid, pk, status, end_at, summary in conn.execute(
            "SELECT mc.contact_id, m.id, m.status, m.end_at, m.summary FROM meeting_contacts mc "
            f"JOIN meetings m ON m.id = mc.meeting{where} ORDER BY mc.contact_id, m.id", args):
        meetings.setdefault(cid, []).append(f"{pk}|{status}|{end_at}|{summary}")
    out: dict[int, ContactInput] = {}
    where, args = _in(ids, "id")
    for cid, name, company, cadence in conn.execute(
            f"SELECT id, name, company, cadence_days FROM contacts{where}", args):
        addresses = tuple(emails.get(cid, ()))
        signature = json.dumps([name, company, cadence, addresses, meetings.get(cid, [])])  # meetings last: load_meeting_holders
        key = (company or "").strip().casefold() or None
        out[cid] = ContactInput(signature, key, addresses)
    return out


def load_stored_inputs(conn: sqlite3.Connection, ids: Collection[int] | None = None) -> dict[int, ContactInput]:
    """The inputs of the contacts ``ids`` (None: all) as they were when last derived."""
    where, args = _in(ids, "contact_id")
    return {cid: ContactInput(sig, key, tuple(json.loads(addresses)))
            for cid, sig, key, addresses in conn.execute(
                f"SELECT contact_id, signature, company_key, addresses FROM derived_inputs{where}", args)}


def load_members(conn: sqlite3.Connection, keys: Collection[str]) -> set[int]:
    """The contacts last derived with one of the company ``keys``."""
    return {cid for (cid,) in conn.execute(
        "SELECT contact_id FROM derived_inputs WHERE company_key IN (SELECT value FROM json_each(?))",
        [json.dumps(sorted(keys))])}


def load_persons(conn: sqlite3.Connection, ids: Collection[int] | None) -> list[tuple[int, str, str | None, float | None]]:
    """(id, name, company, cadence_days) of the contacts ``ids`` (None: all), by id."""
    where, args = _in(ids, "id")
    return [tuple(r) for r in conn.execute(  # type: ignore[misc]
        f"SELECT id, name, company, cadence_days FROM contacts{where} ORDER BY id", args)]


def save_inputs(conn: sqlite3.Connection, inputs: dict[int, ContactInput], changed: Collection[int] | None) -> None:
    """Record the inputs of the contacts in ``changed`` (None: every contact) as derived; ``inputs``
    holds the current ones (a contact missing there was deleted)."""
    if changed is None:
        conn.execute("DELETE FROM derived_inputs")
        changed = inputs.keys()
    else:
        conn.executemany("DELETE FROM derived_inputs WHERE contact_id = ?", [(cid,) for cid in changed])
    conn.executemany(
        "INSERT INTO derived_inputs (contact_id, signature, company_key, addresses) VALUES (?, ?, ?, ?)",
        [(cid, inputs[cid].signature, inputs[cid].company_key, json.dumps(inputs[cid].addresses))
         for cid in sorted(changed) if cid in inputs])


def load_due_rechecks(conn: sqlite3.Connection, now: str) -> list[str]:
    """Holders ("contact:12", "company:acme") whose derived rows change with the clock by ``now``."""
    return [h for (h,) in conn.execute("SELECT holder FROM derived_rechecks WHERE at <= ?", [now])]


def save_rechecks(conn: sqlite3.Connection, rechecks: dict[str, str | None], full: bool) -> None:
    """Store each holder's next recheck instant (None: none); ``full`` drops every other holder."""
    if full:
        conn.execute("DELETE FROM derived_rechecks")
        stored: dict[str, str] = {}
    else:
        # Only what moved is written: most holders of a pass keep their instant.
        stored = dict(conn.execute("SELECT holder, at FROM derived_rechecks WHERE holder IN "
                                   "(SELECT value FROM json_each(?))", [json.dumps(sorted(rechecks))]))
        rechecks = {h: at for h, at in rechecks.items() if stored.get(h) != at}
        conn.executemany("DELETE FROM derived_rechecks WHERE holder = ?", [(h,) for h in sorted(rechecks) if h in stored])
    conn.executemany("INSERT INTO derived_rechecks (holder, at) VALUES (?, ?)",
                     sorted((h, at) for h, at in rechecks.items() if at is not None))


# --- the rows derived for a scope ------------------------------------------------------

LEDGER_COLUMNS = (
    "contact_id", "state", "first_outreach_at", "first_reply_at", "first_response_hours",
    "median_response_hours", "replied", "messages_sent", "messages_received", "last_interaction_at",
    "unanswered", "reached", "first_response_seconds", "responsiveness", "last_subject",
)
REPLY_COLUMNS = ("contact_id", "message", "asked_at", "replied_at", "response_hours", "response_seconds")
CONTACT_MESSAGE_COLUMNS = ("contact_id", "message", "direction", "week", "ask", "answered")
# Facts of the message itself, the same for as long as the row's key is: written with a row,
# never compared (a pass that changes a message's date or subject re-derives every row).
CONTACT_MESSAGE_FACTS = ("at", "subject")

Row = tuple[object, ...]


def replace_rows(conn: sqlite3.Connection, table: str, columns: Sequence[str], key_len: int, rows: Iterable[Row],
                 scope: Collection[int] | None, computed_at: str | None = None,
                 order: Callable[[Row], Any] | None = None,
                 facts: tuple[Sequence[str], Callable[[Row], Row]] | None = None,
                 stored: set[Row] | None = None) -> tuple[set[Row], set[Row]]:
    """Make the rows of ``table`` whose contact_id is in ``scope`` (None: all rows) exactly ``rows``.

    Written as a set difference: only rows that went or changed are deleted, only new ones
    inserted, so a pass that confirms what is stored writes nothing. The first ``key_len``
    columns are the primary key; ``computed_at``, where given, goes with inserted rows, which
    are inserted in key order unless ``order`` gives another. ``facts``: more columns that
    follow from the key alone, and how to get their values for a row; written with the rows
    inserted, never read or compared. ``stored``: the rows of the scope as read earlier in
    the same transaction, so they are not read again.
    """
    wanted = set(rows)
    existing = stored if stored is not None else load_rows(conn, table, columns, scope)
    stale, fresh = existing - wanted, wanted - existing
    save_row_changes(conn, table, columns, key_len, stale, fresh, computed_at, order, facts)
    return stale, fresh


def save_row_changes(conn: sqlite3.Connection, table: str, columns: Sequence[str], key_len: int,
                     stale: Collection[Row], fresh: Collection[Row], computed_at: str | None = None,
                     order: Callable[[Row], Any] | None = None,
                     facts: tuple[Sequence[str], Callable[[Row], Row]] | None = None) -> None:
    """``replace_rows``' writes, for a caller that found the difference itself: delete the rows
    ``stale`` (by key), insert the rows ``fresh``."""
    if stale:
        where = " AND ".join(f"{c} = ?" for c in columns[:key_len])
        conn.executemany(f"DELETE FROM {table} WHERE {where}", (row[:key_len] for row in stale))
    if fresh:
        names, values = facts if facts is not None else ((), lambda row: ())
        cols = (*columns, *names, *(("computed_at",) if computed_at is not None else ()))
        extra = (computed_at,) if computed_at is not None else ()
        conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                         (row + values(row) + extra
                          for row in sorted(fresh, key=order or (lambda r: r[:key_len]))))  # type: ignore[arg-type]


def load_rows(conn: sqlite3.Connection, table: str, columns: Sequence[str], scope: Collection[int] | None) -> set[Row]:
    """The stored rows of ``table`` (those ``columns``) whose contact_id is in ``scope`` (None: all)."""
    select = f"SELECT {', '.join(columns)} FROM {table}"
    if scope is None:
        return set(conn.execute(select))
    if not scope:
        return set()
    return set(conn.execute(f"{select} WHERE contact_id IN (SELECT value FROM json_each(?))", [_ids(scope)]))


def load_message_rows(conn: sqlite3.Connection, cid: int, messages: Collection[int] | None) -> dict[int, Row]:
    """A contact's stored contact_messages rows (CONTACT_MESSAGE_COLUMNS) of ``messages`` (None: all), by message."""
    if messages is None:
        return {int(row[1]): row for row in load_rows(conn, "contact_messages", CONTACT_MESSAGE_COLUMNS, [cid])}  # type: ignore[call-overload]
    return {int(row[1]): row for row in conn.execute(
        f"SELECT {', '.join(CONTACT_MESSAGE_COLUMNS)} FROM contact_messages WHERE contact_id = ? "
        "AND message IN (SELECT value FROM json_each(?))", [cid, _ids(messages)])}


def load_replies_since(conn: sqlite3.Connection, since: Mapping[int, str]) -> dict[int, set[Row]]:
    """The stored replies rows (REPLY_COLUMNS) of each contact in ``since`` replied at or after its instant."""
    select = f"SELECT {', '.join(REPLY_COLUMNS)} FROM replies WHERE contact_id = ? AND replied_at >= ?"
    return {cid: set(conn.execute(select, [cid, at])) for cid, at in since.items()}


def delete_orphan_rows(conn: sqlite3.Connection, tables: Sequence[str]) -> None:
    """Drop the rows of ``tables`` whose contact no longer exists."""
    for table in tables:
        conn.execute(f"DELETE FROM {table} WHERE contact_id NOT IN (SELECT id FROM contacts)")


def save_ledger_confirmed(conn: sqlite3.Connection, at: str) -> None:
    """A full pass confirmed every contact_ledger row at ``at``."""
    conn.execute("UPDATE contact_ledger SET computed_at = ? WHERE computed_at != ?", [at, at])


def load_weeks_of(conn: sqlite3.Connection, ids: Collection[int] | None) -> set[str]:
    """The weeks in which the stored contact_messages of ``ids`` (None: of everyone) fall."""
    if ids is None:
        return {w for (w,) in conn.execute("SELECT DISTINCT week FROM contact_messages WHERE week IS NOT NULL")}
    return {w for (w,) in conn.execute(
        "SELECT DISTINCT week FROM contact_messages WHERE contact_id IN (SELECT value FROM json_each(?)) "
        "AND week IS NOT NULL", [_ids(ids)])}


@dataclass(frozen=True)
class WeekCounts:
    """One week's counts over every contact, recounted from the stored rows."""

    messages_sent: int
    asks: int
    answered: int


def load_week_counts(conn: sqlite3.Connection, weeks: Collection[str]) -> dict[str, WeekCounts]:
    """messages sent (each message once), asks and answered asks per week in ``weeks`` (absent: none)."""
    out = {}
    for week in sorted(weeks):  # one index range per week
        sent, asks, answered = conn.execute(
            "SELECT count(DISTINCT CASE WHEN direction = 'outgoing' THEN message END), total(ask), total(answered) "
            "FROM contact_messages WHERE week = ?", [week]).fetchone()
        out[week] = WeekCounts(int(sent), int(asks), int(answered))
    return out


def load_reply_seconds(conn: sqlite3.Connection, start: str, end: str) -> list[int]:
    """The response times of the replies received in [``start``, ``end``), shortest first."""
    return [s for (s,) in conn.execute(
        "SELECT response_seconds FROM replies WHERE replied_at >= ? AND replied_at < ? ORDER BY response_seconds",
        [start, end])]


def load_meeting_ends(conn: sqlite3.Connection, until: str) -> list[tuple[int, datetime]]:
    """(meeting id, end) of every meeting the ledger counts at ``until``: confirmed, ended, with a contact."""
    out = []
    for pk, end_at in conn.execute(
            "SELECT m.id, m.end_at FROM meetings m WHERE m.status = 'confirmed' AND m.end_at IS NOT NULL "
            "AND m.end_at <= ? AND EXISTS (SELECT 1 FROM meeting_contacts mc JOIN contacts c ON c.id = mc.contact_id "
            "WHERE mc.meeting = m.id)", [until]):
        at = parse_at(end_at, pk)
        if at is not None:
            out.append((int(pk), at))
    return out


def load_stored_weeks(conn: sqlite3.Connection) -> dict[str, tuple[object, ...]]:
    """week -> its stored weekly_stats row (without computed_at)."""
    return {row[0]: tuple(row) for row in conn.execute(
        "SELECT week, start_at, end_at, timezone, messages_sent, asks, answered, reply_rate, replies, "
        "median_response_hours, meetings FROM weekly_stats")}


def save_weeks(conn: sqlite3.Connection, rows: dict[str, tuple[object, ...] | None], computed_at: str) -> None:
    """Write the weekly_stats rows given (None: the week has no activity any more)."""
    conn.executemany("DELETE FROM weekly_stats WHERE week = ?", [(w,) for w in rows])
    conn.executemany(
        "INSERT INTO weekly_stats (week, start_at, end_at, timezone, messages_sent, asks, answered, reply_rate, "
        "replies, median_response_hours, meetings, computed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*row, computed_at) for _, row in sorted(rows.items()) if row is not None])


# --- introductions -----------------------------------------------------------------

INTRO_COLUMNS = ("message", "contact_id", "introducer_address", "introducer_name", "introducer_contact_id",
                 "at", "converted_at", "converted_by")


def load_intro_rows(conn: sqlite3.Connection, *, introduced: Collection[int] = (), introducers: Collection[int] = (),
                    introducer_addresses: Collection[str] = ()) -> list[Row]:
    """Stored introductions of the contacts ``introduced``, by the contacts ``introducers`` or from
    the addresses ``introducer_addresses``."""
    return [tuple(r) for r in conn.execute(
        f"SELECT {', '.join(INTRO_COLUMNS)} FROM introductions "
        "WHERE contact_id IN (SELECT value FROM json_each(?)) OR introducer_contact_id IN (SELECT value FROM json_each(?)) "
        "OR introducer_address IN (SELECT value FROM json_each(?)) ORDER BY at, message, contact_id",
        [_ids(introduced), _ids(introducers), json.dumps(sorted(introducer_addresses))])]


def replace_intros(conn: sqlite3.Connection, rows: Iterable[Row], introduced: Collection[int] | None,
                   computed_at: str) -> None:
    """Make the introductions of the contacts ``introduced`` (None: all) exactly ``rows``, new ones in time order."""
    replace_rows(conn, "introductions", INTRO_COLUMNS, 2, rows, introduced, computed_at,
                 order=lambda r: (str(r[5]), str(r[0]), str(r[1])))


# Incoming, not automatic, addressed (To/Cc) to at least one tracked contact: the only
# messages that can introduce someone. One row per recipient; the lowest id of a
# Message-ID held by several accounts stands for it, as in the turn ledger.
_INTRO_SQL = """
SELECT m.id, m.message_id, m.date, m.from_address, m.from_name, a.address
FROM messages m
JOIN message_addresses a ON a.message = m.id AND a.role IN ('to', 'cc')
WHERE m.direction = 'incoming' AND m.automatic = 0 AND m.date <= :until
  AND m.id IN (SELECT x.message FROM message_addresses x JOIN contact_emails ce ON ce.address = x.address
               WHERE x.role IN ('to', 'cc'))
ORDER BY m.id
"""

_SCOPED_INTRO = "WHERE x.role IN ('to', 'cc') AND ce.contact_id IN (SELECT value FROM json_each(:ids))"

# Auto-replies that stated a return date, from a tracked contact. CROSS JOIN keeps SQLite
# starting from the few such messages (the messages_away index) rather than from every
# message of the contacts in scope.
_AWAY_SQL = """
SELECT ce.contact_id, m.id, m.date, m.ooo_until
FROM messages m
CROSS JOIN message_addresses a ON a.message = m.id AND a.role = 'from'
CROSS JOIN contact_emails ce ON ce.address = a.address
WHERE m.automatic = 1 AND m.ooo_until IS NOT NULL AND m.direction = 'incoming' AND m.date <= :until
ORDER BY m.id
"""


IntroRecipient = tuple[int, str, str, str, str | None, str]


def load_intro_recipients(conn: sqlite3.Connection, until: str,
                          introduced: Collection[int] | None = None) -> Iterator[IntroRecipient]:
    """(id, Message-ID, date, sender, sender name, recipient) of each recipient of each message that can
    introduce someone, by id; with ``introduced``, only messages addressed to one of these contacts.
    A cursor, read as it goes: a full pass's rows held at once took 90 MB at a million messages."""
    sql, params = _INTRO_SQL, {"until": until}
    if introduced is not None:
        sql = sql.replace("WHERE x.role IN ('to', 'cc')", _SCOPED_INTRO)
        params["ids"] = json.dumps(sorted(introduced))
    return conn.execute(sql, params)


def load_away_replies(conn: sqlite3.Connection, until: str,
                      ids: Collection[int] | None = None) -> list[tuple[int, int, str, str]]:
    """(contact id, message id, date, stated return date) of each auto-reply with a return date
    from a tracked contact (``ids``: only those contacts), by message id."""
    sql, params = _AWAY_SQL, {"until": until}
    if ids is not None:
        sql = sql.replace("ORDER BY m.id", "AND ce.contact_id IN (SELECT value FROM json_each(:ids)) ORDER BY m.id")
        params["ids"] = json.dumps(sorted(ids))
    return conn.execute(sql, params).fetchall()
