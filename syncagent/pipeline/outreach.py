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
from syncagent.ledger.what_works import Ask

MASS_CONTACTS = 3
MASS_DAYS = 7


def load_asks(db: Any, config: Config, now: datetime | None = None, ledgers: dict | None = None) -> list[Ask]:
    """Every measured ask at ``now`` (default: the clock), with its outcome, as ``what_works.Ask``."""
    from syncagent.pipeline import ledger as ledger_stage
    from syncagent.timeutil import utcnow

    now = now or utcnow()
    if ledgers is None:
        ledgers = ledger_stage.ledgers(db, now)
    measures = {row[0]: row[1:] for row in db.execute(
        "SELECT message, words, questions, connection, personalized, fingerprint FROM outreach")}
    asks: list[tuple[int, datetime, int, tuple, Any]] = []  # contact, at, message, measures, reply
    for contact_id, led in ledgers.items():
        replies = {r.asked_at: r for r in led.replies}
        for step in story_mod.story(led.events):
            if step.what != story_mod.OUTREACH:
                continue
            pk = int(step.ref.rpartition(":")[2])
            if pk in measures:
                asks.append((contact_id, step.at, pk, measures[pk], replies.get(step.at)))
    mass = _mass_fingerprints([(cid, at, m[4]) for cid, at, _, m, _ in asks])
    tz = config.tz
    out = []
    for _contact, at, _, (words, questions, connection, personalized, fp), reply in asks:
        local = at.astimezone(tz)
        out.append(Ask(words, questions, bool(personalized), (fp, at) in mass, bool(connection),
                       local.weekday(), local.hour, reply is not None, reply.seconds if reply else None))
    return out


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
