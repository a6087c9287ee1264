"""A brief before every meeting: sent through the configured channels ahead of its start.

For each confirmed meeting from an invitation that starts within ``[notify]
brief_hours_before`` hours, each tracked contact in it gets their brief
(``reports.brief``) sent once, on the channels reminders use. ``brief_notices``
records what went out, keyed by the meeting's identity and start time, so a
moved meeting is announced again. Strangers' text is made safe by the channel.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from syncagent.config import Config
from syncagent.safe_text import for_terminal
from syncagent.store import notices
from syncagent.timeutil import iso, utcnow

log = logging.getLogger(__name__)

MAX_LINES = 14  # a notification is a glance; the full brief is one command away


def due(db: Any, config: Config, now: datetime) -> list[notices.DueBrief]:
    """(meeting, contact) pairs whose brief is due at ``now`` and was not sent yet."""
    hours = config.notify.brief_hours_before
    if hours <= 0:
        return []
    return notices.load_unsent_briefs(db, iso(now), iso(now + timedelta(hours=hours)))


def compose(db: Any, config: Config, item: notices.DueBrief, now: datetime, *,
            stored: bool = False) -> tuple[str, str]:
    """(title, body) in plain text: the meeting, then the first lines of the person's brief
    (``stored``: what is owed as the last sync stored it)."""
    from syncagent.reports import brief

    start = datetime.fromisoformat(item["start_at"].replace("Z", "+00:00")).astimezone(config.tz)
    title = f"Brief: {for_terminal(item['name'])}, {start:%a} {start.day} {start:%b %H:%M}"
    text = brief.render(brief.build(db, config, f"{item['contact_id']}", now, stored=stored), config.tz,
                        clean=for_terminal)
    lines = text.splitlines()
    body = "\n".join(lines[:MAX_LINES] + (["…", f"syncagent brief {item['contact_id']}"] if len(lines) > MAX_LINES
                                          else []))
    return title, body


def notify_briefs(db: Any, config: Config, now: datetime | None = None) -> int:
    """Send the briefs due now on the configured channels; returns how many went out."""
    from syncagent.notify import announce

    if not (config.notify.desktop or config.notify.email):
        return 0
    at_clock = now is None  # the daemon, just after a sync: the stored reminders are current
    now = now or utcnow()
    sent = 0
    for item in due(db, config, now):
        title, body = compose(db, config, item, now, stored=at_clock)
        delivered = False
        if config.notify.desktop:
            delivered |= announce.desktop(title, body)
        if config.notify.email:
            delivered |= announce.email(config, title, body)
        if not delivered:
            continue  # tried again after the next sync
        notices.save_brief_sent(db, item, iso(now))
        sent += 1
    if sent:
        log.info("sent %d meeting brief(s)", sent)
    return sent
