"""Tell the user when a reminder falls due: a desktop notification and/or a short email.

Both channels are off by default (``[notify] desktop`` / ``email``). The daemon
calls ``notify_due`` after every sync; each reminder is announced once
(``reminders.notified_at`` records it), and only when at least one channel
delivered, so a channel that is down is tried again after the next sync.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from datetime import datetime

from syncagent.config import Config
from syncagent.safe_text import for_markup, for_terminal, shorten
from syncagent.timeutil import iso, utcnow

log = logging.getLogger(__name__)

_LABEL = {"thank_you": "Thank-you", "follow_up": "Follow-up", "check_in": "Check-in",
          "close_loop": "Close the loop", "next_contact": "Next contact"}
# A notification is a glance, and its body is a stranger's text: names and reasons are cut,
# and only the first few reminders are listed.
NAME_CHARS = 60
REASON_CHARS = 160
MAX_LINES = 8


def pending(db, config: Config, now: datetime | None = None) -> list[dict]:
    """Overdue open reminders not announced yet; a stale one never is (a first sync must not flood).

    Only stored rows: ``notified_at`` is how each is announced once, and the daemon
    reconciles the table after every sync, before it notifies.
    """
    from syncagent.pipeline import reminders

    return [r for r in reminders.listing(db, config, now, due_only=True)
            if r["id"] is not None and not r["notified_at"] and not r["stale"]]


def compose(items: list[dict]) -> tuple[str, str]:
    """(title, body) as plain text: one line per reminder, e.g. 'Thank-you: Priya Shah - Priya Shah replied 1 day ago; ...'.

    Names and reasons come from mail: their control characters are shown, not
    obeyed, and they are cut to a glanceable length (markup is escaped by ``desktop``).
    """
    n = len(items)
    title = f"syncagent: {n} reminder{'s' if n != 1 else ''} due"
    lines = [f"{_LABEL[i['kind']]}: {for_terminal(shorten(i['contact_name'], NAME_CHARS))} - "
             f"{for_terminal(shorten(i['reason'], REASON_CHARS))}" for i in items[:MAX_LINES]]
    if n > MAX_LINES:
        lines.append(f"... and {n - MAX_LINES} more.")
    lines.append("See them with `syncagent reminders`.")
    return title, "\n".join(lines)


def notify_due(db, config: Config, now: datetime | None = None) -> int:
    """Announce newly overdue reminders on the configured channels; returns how many were announced."""
    if not (config.notify.desktop or config.notify.email):
        return 0
    now = now or utcnow()
    items = pending(db, config, now)
    if not items:
        return 0
    title, body = compose(items)
    delivered = False
    if config.notify.desktop:
        delivered |= desktop(title, body)
    if config.notify.email:
        delivered |= email(config, title, body)
    if not delivered:
        return 0
    ids = [i["id"] for i in items]
    from syncagent.store.notices import save_reminders_notified

    save_reminders_notified(db, ids, iso(now))
    log.info("announced %d due reminder(s)", len(ids))
    return len(ids)


def desktop(title: str, body: str) -> bool:
    """org.freedesktop.Notifications through notify-send, else gdbus; needs a session bus.

    The body is markup for the notification server (the freedesktop spec's
    body-markup: <b>, <a href>, <img>), so it is escaped: a name like
    ``<a href=...>`` is shown as typed. The summary is plain text.
    """
    title, body = for_terminal(title), for_markup(body, multiline=True, quote=False)
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        log.warning("desktop notifications are on but there is no session bus (DBUS_SESSION_BUS_ADDRESS); "
                    "under systemd --user it is set when you are logged in")
        return False
    if shutil.which("notify-send"):
        cmd = ["notify-send", "--app-name=syncagent", title, body]
    elif shutil.which("gdbus"):
        cmd = ["gdbus", "call", "--session", "--dest", "org.freedesktop.Notifications",
               "--object-path", "/org/freedesktop/Notifications",
               "--method", "org.freedesktop.Notifications.Notify",
               "syncagent", "0", "", title, body, "[]", "{}", "-1"]
    else:
        log.warning("desktop notifications are on but neither notify-send nor gdbus is installed "
                    "(apt-get install libnotify-bin)")
        return False
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("desktop notification failed: %s", exc)
        return False
    if done.returncode != 0:
        log.warning("desktop notification failed: %s", (done.stderr or done.stdout).strip()[:200])
        return False
    return True


def email(config: Config, title: str, body: str) -> bool:
    """A short plain-text mail through [smtp] (syncagent.notify.mailer)."""
    try:
        from syncagent.notify import mailer

        smtp = config.smtp
        # To the digest's address, else to yourself (the account you send from).
        to = config.digest.email_to or (smtp.from_address or smtp.username if smtp else None)
        mailer.send(config, title, body, to=to)
        return True
    except Exception as exc:  # SMTP down, bad credentials, mailer missing: try again next sync
        log.warning("reminder email failed: %s", exc)
        return False
