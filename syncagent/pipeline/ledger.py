"""The ledger's database side: contacts' events out of ``messages``/``meetings``, ledgers into tables.

``contact_events`` applies the matching rules of DESIGN.md ("The ledger rules"):
an outgoing message involves the contacts in To, Cc and Bcc; an incoming one only
the contact in From (a contact Cc'd on someone else's mail has not replied);
automatic mail never counts; mail that is gone from the server still does (it is
history). ``recompute`` runs ``ledger.compute`` for every contact and rewrites the
derived tables ``contact_ledger``, ``replies`` and ``contact_messages`` in one
transaction, so readers (Datasette, the digest) never see half a rebuild.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from syncagent.ledger import figures
from syncagent.ledger.turns import IN, MEETING, OUT, Event, Ledger, compute, to_utc
from syncagent.store.db import transaction
from syncagent.timeutil import iso, utcnow

log = logging.getLogger(__name__)

# Driven from contact_emails so each contact address is one index lookup into
# message_addresses (parse.py always records the sender there with role 'from').
# {address} is the plain column when every contact address is normalized (contacts.py
# does that), else lower(trim()), which still allows the lookup and tolerates a
# hand-edited row.
_MESSAGES_SQL = """
SELECT ce.contact_id, m.id, m.message_id, m.date, m.direction, m.subject
FROM contact_emails ce
JOIN message_addresses a ON a.address = {address}
JOIN messages m ON m.id = a.message
WHERE m.automatic = 0 AND m.date <= :until
  AND ((m.direction = 'outgoing' AND a.role IN ('to', 'cc', 'bcc'))
       OR (m.direction = 'incoming' AND a.role = 'from'))
ORDER BY m.id
"""

# A meeting counts once it has ended; cancelled ones and those without an end never count.
_MEETINGS_SQL = """
SELECT mc.contact_id, m.id, m.end_at, m.summary
FROM meeting_contacts mc
JOIN meetings m ON m.id = mc.meeting
WHERE m.status = 'confirmed' AND m.end_at IS NOT NULL AND m.end_at <= :until
"""


# Far enough in the future that every ISO date string sorts before it.
_NO_LIMIT = "9999-12-31T23:59:59Z"


def contact_events(db, now: datetime | None = None) -> dict[int, list[Event]]:
    """Every contact's events (messages and ended meetings), keyed by contact id.

    Every contact gets an entry, an empty list when nothing involves them. With ``now``,
    events after it are left out here already (``ledger.compute`` would drop them too).
    The same Message-ID held by several accounts counts once per contact: the row
    with the lowest id stands for it.
    """
    until = iso(to_utc(now)) if now is not None else _NO_LIMIT
    events: dict[int, list[Event]] = {cid: [] for (cid,) in db.conn.execute("SELECT id FROM contacts")}
    seen: set[tuple[int, str]] = set()
    messy = db.conn.execute(
        "SELECT 1 FROM contact_emails WHERE address != lower(trim(address)) LIMIT 1"
    ).fetchone()
    sql = _MESSAGES_SQL.format(address="lower(trim(ce.address))" if messy else "ce.address")
    # ORDER BY m.id makes "the lowest id wins" hold for cross-account duplicates; the
    # set also drops a second role of the same message (To and Bcc, two addresses).
    rows = db.conn.execute(sql, {"until": until})
    parsed: dict[str, datetime | None] = {}  # a message reaching several contacts is parsed once
    for contact_id, pk, message_id, date, direction, subject in rows:
        key = (contact_id, message_id)
        if key in seen:
            continue
        if date in parsed:
            at = parsed[date]
        else:
            at = parsed[date] = _parse(date, pk)
        if at is None:
            continue
        seen.add(key)
        kind = OUT if direction == "outgoing" else IN
        events.setdefault(contact_id, []).append(Event(at, kind, f"message:{pk}", subject))
    for contact_id, pk, end_at, summary in db.conn.execute(_MEETINGS_SQL, {"until": until}):
        at = _parse(end_at, pk)
        if at is not None:
            events.setdefault(contact_id, []).append(Event(at, MEETING, f"meeting:{pk}", summary))
    return events


def ledgers(db, now: datetime | None = None) -> dict[int, Ledger]:
    """Every contact's ledger at ``now`` (default: the current time), computed without writing."""
    now = to_utc(now or utcnow())
    return {cid: compute(evs, now) for cid, evs in contact_events(db, now).items()}


_LEDGER_COLUMNS = (
    "contact_id", "state", "first_outreach_at", "first_reply_at", "first_response_hours",
    "median_response_hours", "replied", "messages_sent", "messages_received", "last_interaction_at",
    "unanswered", "reached", "first_response_seconds", "responsiveness",
)
_REPLY_COLUMNS = ("contact_id", "message", "asked_at", "replied_at", "response_hours", "response_seconds")
_CONTACT_MESSAGE_COLUMNS = ("contact_id", "message", "direction")


def recompute(db, now: datetime | None = None, timezone: str = "UTC", *, config=None) -> dict[int, Ledger]:
    """Rebuild contact_ledger, replies, contact_messages and the figures at ``now`` in one transaction.

    The figures (overall_stats, segment_stats, and weekly_stats with weeks in
    ``timezone``) are those of ``syncagent.ledger.figures`` over the same ledgers.
    Idempotent: the tables are derived, so running it twice leaves the same rows
    (``computed_at`` says when they were last confirmed). Only rows that changed are
    written, so the rebuild after a sync that brought a few messages stays cheap.
    With ``config``, the rules beyond the turn ledger are derived too: each contact's
    responsiveness and the ``introductions`` table (``pipeline.networking``).
    Returns the ledgers, for stages that run next.
    """
    now = to_utc(now or utcnow())
    computed_at = iso(now)
    with transaction(db, "ledger") as conn:
        result = ledgers(db, now)
        derived = None
        if config is not None:
            from syncagent.pipeline import networking

            derived = networking.derive(db, config, now, result)
        classes = derived.responsiveness if derived else {}
        _replace_rows(conn, "contact_ledger", _LEDGER_COLUMNS, 1,
                      (_ledger_row(cid, led, classes.get(cid)) for cid, led in result.items()), computed_at)
        if derived is not None:
            networking.store(conn, derived, computed_at)
        _replace_rows(conn, "replies", _REPLY_COLUMNS, 2, (
            (cid, _message_pk(r.ref), iso(r.asked_at), iso(r.replied_at), _hours(r.seconds), r.seconds)
            for cid, led in result.items()
            for r in led.replies
        ))
        _replace_rows(conn, "contact_messages", _CONTACT_MESSAGE_COLUMNS, 2, (
            (cid, _message_pk(e.ref), "outgoing" if e.kind == OUT else "incoming")
            for cid, led in result.items()
            for e in led.events
            if e.kind != MEETING
        ))
        conn.execute("UPDATE contact_ledger SET computed_at = ? WHERE computed_at != ?", [computed_at, computed_at])
        from syncagent.pipeline import stats

        stats.store(conn, stats.evaluate(db, now, result))
        stats.store_weeks(conn, figures.weeks(result.values(), ZoneInfo(timezone)), timezone, computed_at)
    log.debug("ledger recomputed for %d contacts", len(result))
    return result


def _replace_rows(conn, table: str, columns: tuple[str, ...], key_len: int, rows, computed_at: str | None = None) -> None:
    """Make ``table`` hold exactly ``rows``: delete the rows that went or changed, insert the new ones.

    The first ``key_len`` columns are the primary key. ``computed_at``, where given, is
    written with inserted rows (it is not compared).
    """
    wanted = set(rows)
    existing = set(conn.execute(f"SELECT {', '.join(columns)} FROM {table}"))
    stale = existing - wanted
    if stale:
        where = " AND ".join(f"{c} = ?" for c in columns[:key_len])
        conn.executemany(f"DELETE FROM {table} WHERE {where}", (row[:key_len] for row in stale))
    fresh = wanted - existing
    if fresh:
        cols = columns + (("computed_at",) if computed_at is not None else ())
        extra = (computed_at,) if computed_at is not None else ()
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            (row + extra for row in sorted(fresh, key=lambda r: r[:key_len])),
        )


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
    )


_hours = figures.hours


def _iso_or_none(dt: datetime | None) -> str | None:
    return iso(dt) if dt is not None else None


def _message_pk(ref: str) -> int:
    return int(ref[8:]) if ref.startswith("message:") else int(ref.rpartition(":")[2])


def _parse(text: str, pk: int) -> datetime | None:
    try:
        return to_utc(datetime.fromisoformat(text))  # reads the store's "...Z" as UTC
    except (AttributeError, ValueError):
        log.warning("skipping row %s with an unreadable timestamp %r", pk, text)
        return None


