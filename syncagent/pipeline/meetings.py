"""Meetings from calendar invitations (the text/calendar parts stored in ``calendar_parts``).

What an invitation says and which one wins are the pure rules of
``parse.calendar``: per event (UID, RECURRENCE-ID) the highest SEQUENCE wins
(a tie to the later message), a CANCEL covering it marks it ``cancelled``.
The ledger counts a meeting at its ``end_at`` and ignores cancelled ones.

This stage keeps ``meetings``, ``meeting_people`` and ``meeting_contacts``
up to date at the cost of what changed: ``update`` parses only the parts of
messages stored since the last pass (an id watermark in ``pipeline_state``,
committed with the result), stores their events in ``invitations`` and
re-resolves only the UIDs they name. ``rebuild`` parses every stored part
again; ``update`` falls back to it on a new database, a forced pass, a change of
the configured time zone (floating times and all-day dates are read in it), or
when a calendar part arrived for a message stored before (a second copy
brought it). When the contacts' addresses changed, every meeting is relinked
to its contacts (one statement, no parsing). Either way the tables end up as
parsing every invitation would leave them, and meeting ids stay put.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from syncagent.parse.calendar import Invitation, meeting_order, parse_invitation, resolve, zone
from syncagent.store import meetings as store
from syncagent.store.db import transaction
from syncagent.store.state import load_max_message, load_stage_state, save_stage_state

log = logging.getLogger(__name__)

_STATE = "meetings"


@dataclass
class MeetingChanges:
    """What one pass changed. ``full``: every meeting was re-derived (the sets are then empty: treat all as changed).

    ``meetings``: ids of the meetings added, re-resolved or removed in this pass
    (a superset of those whose row differs); ``contacts``: the contacts linked to
    any of them, before or after. ``relinked``: the contacts changed, so any
    meeting's contacts may have.
    """

    full: bool = False
    meetings: set[int] = field(default_factory=set)
    contacts: set[int] = field(default_factory=set)
    relinked: bool = False


def update(db, default_tz: str = "UTC", *, full: bool = False) -> MeetingChanges:
    """Bring the meetings up to date with the invitations stored since the last pass, in one transaction.

    ``default_tz`` (the config's timezone) places floating times and all-day dates.
    """
    with transaction(db, "meetings") as conn:
        state = load_stage_state(conn, _STATE)
        top, parts = load_max_message(conn), store.load_calendar_part_count(conn)
        contacts = store.load_contacts_fingerprint(conn)
        new = [] if state is None or full else list(store.load_calendar_parts(conn, int(state["message"])))
        if (full or state is None or state.get("tz") != default_tz
                or int(state.get("parts", -1)) + len(new) != parts):
            _rebuild(conn, default_tz)
            save_stage_state(conn, _STATE, {"message": top, "parts": parts, "tz": default_tz, "contacts": contacts})
            return MeetingChanges(full=True)
        changes = MeetingChanges()
        if new:
            tz = zone(default_tz)
            events = [e for message, ics, date in new for e in parse_invitation(ics, message, date, tz)]
            store.save_invitations(conn, events)
            uids = {e.uid for e in events}
            before = store.load_meeting_ids(conn, uids)
            meetings = resolve(store.load_invitations(conn, uids))
            wanted = {(m.uid, m.recurrence_id) for m in meetings}
            gone = [i for key, i in before.items() if key not in wanted]
            changes.contacts |= store.load_meeting_contacts(conn, before.values())
            ids = store.save_meetings(conn, meetings, gone)
            changes.meetings = {*ids, *gone}
            changes.contacts |= store.load_meeting_contacts(conn, ids)
        if contacts != state.get("contacts"):
            store.save_meeting_contacts(conn)
            changes.relinked = True
        save_stage_state(conn, _STATE, {"message": top, "parts": parts, "tz": default_tz, "contacts": contacts})
        return changes


def rebuild(db, default_tz: str = "UTC") -> int:
    """Recompute meetings from every stored invitation in one transaction; return how many there are."""
    with transaction(db, "meetings") as conn:
        state = {"message": load_max_message(conn), "parts": store.load_calendar_part_count(conn),
                 "tz": default_tz, "contacts": store.load_contacts_fingerprint(conn)}
        count = _rebuild(conn, default_tz)
        save_stage_state(conn, _STATE, state)
        return count


def _rebuild(conn, default_tz: str) -> int:
    tz = zone(default_tz)
    events: list[Invitation] = []
    for message, ics, message_date in store.load_calendar_parts(conn):
        events.extend(parse_invitation(ics, message, message_date, tz))
    store.save_invitations(conn, events, replace=True)  # before resolve() sets the winners' status
    meetings = resolve(events)
    wanted = {(m.uid, m.recurrence_id) for m in meetings}
    gone = [i for key, i in store.load_meeting_ids(conn).items() if key not in wanted]
    store.save_meetings(conn, sorted(meetings, key=meeting_order), gone)
    return len(meetings)
