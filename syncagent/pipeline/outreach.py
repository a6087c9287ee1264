"""The asks the user sent, with their measures and outcomes: what ``stats --by words`` and friends count.

An ask is an outgoing message that started a new ask in a contact's ledger (the
story's ``outreach`` steps). Its measures are the numbers stored at sync time in
``outreach``; its outcome is the ledger's reply to the run it started. Mass mail
is decided here, across contacts: the same fingerprint sent to at least
``MASS_CONTACTS`` contacts within ``MASS_DAYS`` days.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from syncagent.config import Config
from syncagent.ledger import what_works
from syncagent.ledger.turns import message_pk
from syncagent.ledger.what_works import Ask
from syncagent.store import outreach as rows
from syncagent.timeutil import parse_iso

MASS_CONTACTS = 3
MASS_DAYS = 7


def load_asks(db: Any, config: Config, now: datetime | None = None, ledgers: dict | None = None) -> list[Ask]:
    """Every measured ask at ``now`` (default: the clock), with its outcome, as ``what_works.Ask``."""
    return [ask for _, _, _, ask in _asks(db, config, now, ledgers)]


def _asks(db: Any, config: Config, now: datetime | None, ledgers: dict | None) -> list[tuple[int, int, datetime, Ask]]:
    """(message, contact, asked at, Ask) for every measured ask."""
    from syncagent.pipeline import ledger as ledger_stage
    from syncagent.timeutil import utcnow

    now = now or utcnow()
    if ledgers is None:
        ledgers = ledger_stage.ledgers(db, now)
    found = _measured(db, config, ledgers)
    mass = _mass_fingerprints([(cid, at, fp) for _, cid, at, _, fp in found])
    return [(pk, cid, at, _with_mass(ask, (fp, at) in mass)) for pk, cid, at, ask, fp in found]


def _measured(db: Any, config: Config, ledgers: dict,
              only: dict[int, set[int]] | None = None) -> list[tuple[int, int, datetime, Ask, int]]:
    """(message, contact, asked at, Ask with mass unset, fingerprint) for the measured asks of
    ``ledgers`` (``only``: of each contact, the asks with those messages)."""
    steps: list[tuple[int, datetime, int, Any]] = []  # contact, at, message, reply
    for contact_id, led in ledgers.items():
        # The ledger's asks are the story's outreach steps (an outgoing message that started a
        # new ask), kept by the one replay that derived the ledger: no second walk of the history.
        if only is None:
            replies = {r.asked_at: r for r in led.replies}
            for ask in led.asks:
                steps.append((contact_id, ask.at, message_pk(ask.key), replies.get(ask.at)))
            continue
        wanted = only.get(contact_id, set())
        for ask in led.asks:
            pk = message_pk(ask.key)
            if pk in wanted:
                # The reply to an ask's run, if any, is the one asked at its instant (replies are in order).
                i = bisect_left(led.replies, ask.at, key=_ASKED_AT)
                reply = led.replies[i] if i < len(led.replies) and led.replies[i].asked_at == ask.at else None
                steps.append((contact_id, ask.at, pk, reply))
    measures = rows.load_measures_of(db.conn, {pk for _, _, pk, _ in steps})
    tz = config.tz
    out = []
    for contact_id, at, pk, reply in steps:
        if pk not in measures:
            continue
        words, questions, connection, personalized, fp = measures[pk]
        local = at.astimezone(tz)
        out.append((pk, contact_id, at, Ask(words, questions, bool(personalized), False, bool(connection),
                                            local.weekday(), local.hour, reply is not None,
                                            reply.seconds if reply else None), fp))
    return out


def rebuild(db: Any, config: Config, now: datetime, ledgers: dict) -> int:
    """Make ``outreach_asks`` hold the measured asks at ``now`` (one transaction); returns how many."""
    from syncagent.timeutil import iso

    found = _asks(db, config, now, ledgers)
    stored_asks = [rows.StoredAsk(pk, cid, iso(at), int(ask.replied), ask.response_seconds,
                                  **{dim: what_works.bucket(ask, dim) for dim in what_works.DIMENSIONS})
                   for pk, cid, at, ask in found]
    asks = [ask for *_, ask in found]
    buckets = [rows.StoredBucket(dim, b["bucket"], i, b["asks"], b["replied"], b["reply_rate"],
                                 b["median_first_response_hours"])
               for dim in what_works.DIMENSIONS for i, b in enumerate(what_works.figures(asks, dim))]
    rows.save_outreach(db, stored_asks, buckets)
    return len(stored_asks)


def update(db: Any, config: Config, derived: Any) -> int:
    """Bring ``outreach_asks`` and ``outreach_buckets`` up to date with one pass (``pipeline.ledger.Pass``).

    Inside the caller's transaction. The asks of the contacts in scope whose ask or reply
    rows changed are re-derived from their ledgers (the others' rows are what they were,
    but for the mass label); whether an ask is mass mail depends on the asks of other
    contacts with the same fingerprint, so the rows of every fingerprint those had or
    have are re-judged; the buckets are recounted from the stored rows (each row already
    carries its bucket in every dimension). Returns the asks re-derived.
    """
    from syncagent.store import derived as derived_store
    from syncagent.store import outreach as store

    conn = db.conn
    if derived.full:
        return _update_all(db, config, derived)
    moved = _moved_asks(derived)
    found = _measured(db, config, {cid: derived.ledgers[cid] for cid in sorted(moved)}, moved)
    keys = {(pk, cid) for cid, pks in moved.items() for pk in pks}
    stored = store.load_asks_of(conn, keys)
    fingerprints = {fp for _, _, _, _, fp in found} | set(store.load_fingerprints_of(conn, {pk for pk, _ in keys}).values())
    others = [a for a in store.load_asks_by_fingerprint(conn, fingerprints) if (a[0], a[1]) not in keys]
    mass = _mass_fingerprints([(cid, at, fp) for _, cid, at, _, fp in found] + [(cid, at, fp) for _, cid, at, fp, _ in others])
    wanted = set(_rows_of(found, mass))
    went, came = stored - wanted, wanted - stored
    derived_store.save_row_changes(conn, "outreach_asks", store.StoredAsk._fields, 2, went, came)
    relabelled = [(_MASS_LABELS[(fp, at) in mass], pk, cid) for pk, cid, at, fp, label in others
                  if label != _MASS_LABELS[(fp, at) in mass]]
    store.save_mass(conn, relabelled)
    # The buckets count every stored ask: when none of them changed (and no deleted contact's
    # asks went with it), the stored buckets are still right and reading every ask is waste.
    if went or came or relabelled or derived.gone:
        store.save_buckets(conn, _buckets_of(conn))
    return len(found)


def _moved_asks(derived: Any) -> dict[int, set[int]]:
    """Of each contact, the ask messages whose outreach row can have moved in a pass: those whose
    contact_messages row went or came, and those asked at the instant of a reply that did."""
    moved = {cid: set(pks) for cid, pks in derived.asks_moved.items()}
    for cid, instants in derived.asked_moved.items():
        asks = derived.ledgers[cid].asks
        for text in instants:
            at = parse_iso(text)  # to the second, as the replies row keeps it
            i = bisect_left(asks, at, key=_AT)
            while i < len(asks) and asks[i].at < at + _SECOND:
                moved.setdefault(cid, set()).add(message_pk(asks[i].key))
                i += 1
    return moved


_AT = attrgetter("at")
_ASKED_AT = attrgetter("asked_at")
_SECOND = timedelta(seconds=1)
_ASKS_CHUNK = 20_000  # asks whose rows a full pass holds and compares at once


def _update_all(db: Any, config: Config, derived: Any) -> int:
    """``update``'s full pass: the rows of a few contacts at a time.

    Every ask's row and the stored rows it is compared with, held at once, took 200 MB at a
    million messages. Mass mail is judged across contacts, so a first walk reads the
    fingerprints at least MASS_CONTACTS asks share, and a second the sends of only those
    (every ask's send held at once took 25 MB at a million: most texts are sent once); then
    each group's asks are measured and their rows replace the group's stored ones.
    """
    from syncagent.pipeline.ledger import groups as grouped
    from syncagent.store import derived as derived_store
    from syncagent.store import outreach as store

    conn = db.conn
    ledgers = derived.ledgers
    groups = [{cid: ledgers[cid] for cid in ids}
              for ids in grouped(sorted(derived.scope), lambda cid: len(ledgers[cid].asks) + 1, _ASKS_CHUNK)]
    # An ask per contact: a message to three contacts is three sends of its text.
    shared = store.load_shared_fingerprints(
        conn, [message_pk(ask.key) for group in groups for led in group.values() for ask in led.asks], MASS_CONTACTS)
    sent: list[tuple[int, datetime, int]] = []
    for group in groups if shared else ():
        asks = [(cid, ask.at, message_pk(ask.key)) for cid, led in group.items() for ask in led.asks]
        fingerprints = store.load_fingerprints_of(conn, {pk for _, _, pk in asks})
        sent += [(cid, at, fp) for cid, at, pk in asks if (fp := fingerprints.get(pk)) in shared]
    mass = _mass_fingerprints(sent)
    del sent
    count = 0
    for group in groups:
        found = _measured(db, config, group)
        derived_store.replace_rows(conn, "outreach_asks", store.StoredAsk._fields, 2, _rows_of(found, mass), group)
        count += len(found)
    derived_store.delete_orphan_rows(conn, ("outreach_asks",))
    store.save_buckets(conn, _buckets_of(conn))
    return count


def _rows_of(found: list[tuple[int, int, datetime, Ask, int]], mass: set[tuple[int, datetime]]) -> list[tuple]:
    """The outreach_asks rows of ``found`` asks, mass mail labelled as ``mass`` judges it."""
    from syncagent.timeutil import iso

    out = []
    for pk, cid, at, ask, fp in found:
        ask = _with_mass(ask, (fp, at) in mass)
        out.append((pk, cid, iso(at), int(ask.replied), ask.response_seconds,
                    *(what_works.bucket(ask, dim) for dim in what_works.DIMENSIONS)))
    return out


_MASS_LABELS = {flag: what_works.bucket(what_works.Ask(0, 0, False, flag, False, 0, 0, False, None), "mass")
                for flag in (True, False)}


def _with_mass(ask: Ask, mass: bool) -> Ask:
    from dataclasses import replace

    return replace(ask, mass=mass) if mass != ask.mass else ask


def _buckets_of(conn: Any) -> list[tuple[Any, ...]]:
    """The outreach_buckets rows, counted over the stored asks (each row names its bucket).

    The same figures as ``what_works.figures`` over the asks, read from an index per
    dimension: the counts per bucket, then the middle response time of each.
    """
    import statistics

    out = []
    for dim in what_works.DIMENSIONS:
        counts = rows.load_bucket_counts(conn, dim)
        position = 0
        for label in what_works.order(dim):
            if label not in counts:
                continue
            asks, replied, timed = counts[label]
            middle = rows.load_median_seconds(conn, dim, label, timed) if timed else []
            out.append((dim, label, position, asks, replied, round(replied / asks, 4),
                        round(statistics.median(middle) / 3600, 2) if middle else None))
            position += 1
    return out


def buckets(db: Any, config: Config, dimension: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """Reply rate and median first response per bucket of ``dimension``: stored, or at ``now`` computed afresh."""
    if now is not None:
        return what_works.figures(load_asks(db, config, now), dimension)
    return [dict(b) for b in rows.load_buckets(db, dimension)]


def stored(db: Any) -> list[dict[str, Any]]:
    """The stored asks (as of the last derive), for reading surfaces."""
    return [ask._asdict() for ask in rows.load_stored_asks(db)]


def _mass_fingerprints(sent: list[tuple[int, datetime, int]]) -> set[tuple[int, datetime]]:
    """(fingerprint, time) of each ask whose text went to MASS_CONTACTS+ contacts within MASS_DAYS days.

    One pass per fingerprint over its sends in time order, the window of sends within
    MASS_DAYS either side kept as a count per contact: a template sent to thousands is
    judged in time linear in its sends, not in their square.
    """
    by_fp: dict[int, list[tuple[datetime, int]]] = {}
    for contact_id, at, fp in sent:
        by_fp.setdefault(fp, []).append((at, contact_id))
    window = timedelta(days=MASS_DAYS)
    out: set[tuple[int, datetime]] = set()
    for fp, items in by_fp.items():
        if len({c for _, c in items}) < MASS_CONTACTS:
            continue
        items.sort()
        inside: dict[int, int] = {}  # contact -> sends of it in [at - window, at + window]
        lo = hi = 0
        for at, _ in items:
            while hi < len(items) and items[hi][0] - at <= window:
                inside[items[hi][1]] = inside.get(items[hi][1], 0) + 1
                hi += 1
            while at - items[lo][0] > window:
                left = items[lo][1]
                inside[left] -= 1
                if not inside[left]:
                    del inside[left]
                lo += 1
            if len(inside) >= MASS_CONTACTS:
                out.add((fp, at))
    return out


def with_buckets(report: dict[str, Any], db: Any, config: Config, dimension: str,
                 now: datetime | None = None) -> dict[str, Any]:
    """``stats --json`` with ``by`` = ``dimension`` and one entry per bucket of the user's measured asks."""
    return {**report, "by": dimension, "buckets": buckets(db, config, dimension, now)}


def render_buckets(report: dict[str, Any]) -> str:
    """The buckets as a small table under the overall figures."""
    rows = [[b["bucket"], str(b["asks"]), str(b["replied"]), f"{b['reply_rate']:.0%}",
             "-" if b["median_first_response_hours"] is None else f"{b['median_first_response_hours']:.1f}"]
            for b in report["buckets"]]
    if not rows:
        return ("\n\nNo measured asks yet: your sent messages are measured at sync time "
                "([privacy] analyze_outreach).")
    header = [f"asks by {report['by']}", "asks", "replied", "rate", "median h"]
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in [header, *rows]]
    note = f"(buckets with fewer than {what_works.MIN_ASKS} asks say little yet)"
    return "\n\n" + "\n".join(lines) + "\n" + note
