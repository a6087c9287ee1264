"""The asks the user sent, with their measures and outcomes: what ``stats --by words`` and friends count.

An ask is an outgoing message that started a new ask in a contact's ledger (the
story's ``outreach`` steps). Its measures are the numbers stored at sync time in
``outreach``; its outcome is the ledger's reply to the run it started. Mass mail
is decided here, across contacts: the same fingerprint sent to at least
``MASS_CONTACTS`` contacts within ``MASS_DAYS`` days.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from syncagent.config import Config
from syncagent.ledger import story as story_mod
from syncagent.ledger import what_works
from syncagent.ledger.what_works import Ask
from syncagent.store import outreach as rows

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
    measures = rows.load_measures(db)
    asks: list[tuple[int, datetime, int, rows.Measures, Any]] = []  # contact, at, message, measures, reply
    for contact_id, led in ledgers.items():
        replies = {r.asked_at: r for r in led.replies}
        for step in story_mod.story(led.events):
            if step.what != story_mod.OUTREACH:
                continue
            pk = int(step.ref.rpartition(":")[2])
            if pk in measures:
                asks.append((contact_id, step.at, pk, measures[pk], replies.get(step.at)))
    mass = _mass_fingerprints([(cid, at, m.fingerprint) for cid, at, _, m, _ in asks])
    tz = config.tz
    out = []
    for contact_id, at, pk, (words, questions, connection, personalized, fp), reply in asks:
        local = at.astimezone(tz)
        out.append((pk, contact_id, at, Ask(words, questions, bool(personalized), (fp, at) in mass, bool(connection),
                                            local.weekday(), local.hour, reply is not None,
                                            reply.seconds if reply else None)))
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


def buckets(db: Any, config: Config, dimension: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """Reply rate and median first response per bucket of ``dimension``: stored, or at ``now`` computed afresh."""
    if now is not None:
        return what_works.figures(load_asks(db, config, now), dimension)
    return [dict(b) for b in rows.load_buckets(db, dimension)]


def stored(db: Any) -> list[dict[str, Any]]:
    """The stored asks (as of the last derive), for reading surfaces."""
    return [ask._asdict() for ask in rows.load_stored_asks(db)]


def _mass_fingerprints(sent: list[tuple[int, datetime, int]]) -> set[tuple[int, datetime]]:
    """(fingerprint, time) of each ask whose text went to MASS_CONTACTS+ contacts within MASS_DAYS days."""
    by_fp: dict[int, list[tuple[datetime, int]]] = {}
    for contact_id, at, fp in sent:
        by_fp.setdefault(fp, []).append((at, contact_id))
    window = timedelta(days=MASS_DAYS)
    out: set[tuple[int, datetime]] = set()
    for fp, items in by_fp.items():
        if len({c for _, c in items}) < MASS_CONTACTS:
            continue
        for at, _ in items:
            near = {c for t, c in items if abs(t - at) <= window}
            if len(near) >= MASS_CONTACTS:
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
