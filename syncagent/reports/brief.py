"""A brief before a meeting: one screen about a relationship, as things stood at an instant.

``build`` gathers it from what every other surface reads (the contact, the
ledger's events through the same state machine, the reminders owed, the
meetings, the introductions) and returns a JSON-ready dict; ``render`` prints it.
Nothing here writes, so a brief at any ``now`` is a pure evaluation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from syncagent.config import Config
from syncagent.errors import InputError
from syncagent.ledger import story as story_mod
from syncagent.ledger.turns import IN, MEETING, OUT, compute, message_pk, to_utc
from syncagent.store import relationships as rel
from syncagent.store.summary import load_summary_row
from syncagent.timeutil import iso

RECENT = 3  # subjects shown each way


def resolve(db: Database, person: str) -> dict[str, Any]:
    """The one contact ``person`` names (an address or a name); InputError when none or several do."""
    found = rel.find_contacts(db, person)
    if not found:
        raise InputError(f"No tracked contact matches {person!r}; run `syncagent contacts list` to see who is tracked.")
    if len(found) > 1:
        names = ", ".join(f"{c['name']} (#{c['id']})" for c in found[:5])
        raise InputError(f"{person!r} matches {len(found)} contacts ({names}); give their email address instead.")
    return found[0]


def build(db: Database, config: Config, person: str, now: datetime, *, stored: bool = False) -> dict[str, Any]:
    """The brief about the contact ``person`` names, as of ``now``.

    ``stored``: what is owed is read from the reminders the last sync stored (what
    ``syncagent reminders`` lists at the clock) instead of evaluated at ``now`` over
    every contact, which at a million messages takes minutes and most of a gigabyte.
    """
    from syncagent.pipeline import reminders
    from syncagent.pipeline.ledger import contact_events

    now = to_utc(now)
    contact = resolve(db, person)
    cid = contact["id"]
    events = contact_events(db, now, [cid]).get(cid, [])
    owed = reminders.stored(db, config, now) if stored else reminders.listing(db, config, now)
    led = compute(events, now)
    messages = rel.load_messages(db, [message_pk(e.key) for e in led.events if e.kind != MEETING])
    steps = []
    for step in story_mod.story(led.events):
        item: dict[str, Any] = {"at": iso(step.at), "what": step.what, "label": step.label, "subject": step.subject,
                                "ref": step.ref}
        if step.response_seconds is not None:
            item["response_hours"] = round(step.response_seconds / 3600, 2)
        steps.append(item)
    summary = load_summary_row(db, cid)
    upcoming = [m for m in rel.load_meetings(db, cid) if (m["start_at"] or "") > iso(now)]
    return {
        "now": iso(now),
        "contact": {
            "id": cid, "name": contact["name"], "emails": rel.load_emails(db, cid),
            "company": contact["company"], "title": contact["title"], "segment": contact["segment"],
            "tags": contact["tags"], "notes": contact["notes"],
            "responsiveness": summary.get("responsiveness"),
        },
        "state": led.state,
        "messages_sent": led.messages_sent,
        "messages_received": led.messages_received,
        "first_outreach_at": iso(led.first_outreach_at) if led.first_outreach_at else None,
        "story": steps,
        "introductions": [
            {"at": i["at"], "introducer_name": i["introducer_name"], "introducer_address": i["introducer_address"],
             "introduced_contact_id": i["contact_id"], "introducer_contact_id": i["introducer_contact_id"]}
            for i in rel.load_introductions(db, cid)
            if (i["at"] or "") <= iso(now)
        ],
        "owed": [
            {k: r[k] for k in ("id", "kind", "due_at", "reason", "overdue_seconds")}
            for r in owed
            if r["contact_id"] == cid
        ],
        "upcoming_meetings": [{"summary": m["summary"], "start_at": m["start_at"], "end_at": m["end_at"]}
                              for m in upcoming],
        "recent_from_you": _recent(led.events, OUT, messages),
        "recent_from_them": _recent(led.events, IN, messages),
    }


def _recent(events, kind: str, messages: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    picked = [e for e in events if e.kind == kind][-RECENT:]
    out = []
    for event in reversed(picked):
        row = messages.get(message_pk(event.key), {})
        out.append({"at": iso(event.at), "subject": event.subject, "snippet": row.get("snippet")})
    return out


def render(brief: dict[str, Any], tz: ZoneInfo, clean=lambda text: text) -> str:
    """One screen of text. ``clean`` makes strangers' text safe for where it is shown."""
    c = brief["contact"]

    def day(text: str | None) -> str:
        if not text:
            return "?"
        from syncagent.timeutil import parse_iso

        local = parse_iso(text).astimezone(tz)
        return f"{local:%a} {local.day} {local:%b %Y}"

    def said(text: str | None) -> str:
        return f"'{clean(text)}'" if text else "(no subject)"

    who = clean(c["name"])
    about = ", ".join(clean(x) for x in (c["title"], c["company"]) if x)
    lines = [f"{who}" + (f" — {about}" if about else "") + f" <{clean(', '.join(c['emails']))}>"]
    facts = []
    if c["segment"]:
        facts.append(f"segment {clean(c['segment'])}")
    if c["tags"]:
        facts.append(f"tags {clean(c['tags'])}")
    if c["responsiveness"]:
        facts.append(c["responsiveness"])
    facts.append(f"state {brief['state'] or 'no history'}")
    facts.append(f"{brief['messages_sent']} sent, {brief['messages_received']} received")
    lines.append("  " + " · ".join(facts))
    if c["notes"]:
        lines.append(f"  notes: {clean(c['notes'])}")
    lines.append("")
    lines.append("The story")
    if not brief["story"]:
        lines.append("  No mail or meetings with them yet.")
    for step in brief["story"]:
        extra = f" after {_hours(step['response_hours'])}" if "response_hours" in step else ""
        lines.append(f"  {day(step['at'])}  {step['label']}{extra}: {said(step['subject'])}")
    for intro in brief["introductions"]:
        by = clean(intro["introducer_name"] or intro["introducer_address"])
        lines.append(f"  {day(intro['at'])}  introduction by {by}")
    if brief["upcoming_meetings"]:
        lines.append("")
        lines.append("Coming up")
        for m in brief["upcoming_meetings"]:
            lines.append(f"  {day(m['start_at'])}  {said(m['summary'])}")
    lines.append("")
    lines.append("Owed now")
    if not brief["owed"]:
        lines.append("  Nothing.")
    for r in brief["owed"]:
        lines.append(f"  #{r['id'] if r['id'] is not None else '-'} {r['kind'].replace('_', '-')}: {clean(r['reason'])}")
    for title, key in (("Last from you", "recent_from_you"), ("Last from them", "recent_from_them")):
        if brief[key]:
            lines.append("")
            lines.append(title)
            for m in brief[key]:
                snippet = f" — {clean(m['snippet'][:80])}" if m.get("snippet") else ""
                lines.append(f"  {day(m['at'])}  {said(m['subject'])}{snippet}")
    return "\n".join(lines)


def _hours(hours: float) -> str:
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def summary(brief: dict[str, Any]) -> str:
    """One line about a person for a list of meetings: who, where things stand, the last step, what is owed.

    Plain text with strangers' text as it is: the surface that shows it escapes it.
    """
    c = brief["contact"]
    parts = [c["name"] + (f" ({c['company']})" if c["company"] else "")]
    facts = [brief["state"] or "no history yet"]
    if c["responsiveness"]:
        facts.append(c["responsiveness"])
    facts.append(f"{brief['messages_sent']} sent, {brief['messages_received']} received")
    parts.append(", ".join(facts))
    if brief["story"]:
        last = brief["story"][-1]
        parts.append(f"last: {last['label']} {last['at'][:10]}" + (f" '{last['subject']}'" if last["subject"] else ""))
    if brief["owed"]:
        parts.append("owed: " + "; ".join(r["kind"].replace("_", "-") for r in brief["owed"]))
    return " · ".join(parts)
