"""The weekly digest: gather the week's numbers, write Markdown and HTML, optionally mail them.

``build`` makes the digest of one ISO week (weeks run Monday to Sunday in
``config.timezone``) as it stood at ``now``; ``run_weekly`` is the daemon's job.
Everything is computed from the database at ``now`` with the pure ledger
(``syncagent.ledger.turns``), so ``--now`` replays any past instant without writing
derived tables. Reminders come from ``syncagent.pipeline.reminders.listing``.
"""

from __future__ import annotations

import logging
import re
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from syncagent.errors import InputError, SyncagentError
from syncagent.ledger import turns as ledger
from syncagent.timeutil import iso, parse_iso, utcnow

log = logging.getLogger(__name__)

HISTORY_WEEKS = 12  # the chart's span
COMPARE_WEEKS = 4  # "compared with the average of the previous four weeks"
FASTEST = 5
QUIET_SILENT_DAYS = 60  # replied before, silent this long: going quiet
QUIET_CHECK_IN_WINDOW_DAYS = 30  # ACKED and the check-in falls due within this window
KIND_ORDER = ("thank_you", "follow_up", "check_in")


@dataclass
class WeekStats:
    """One ISO week's activity with tracked contacts, as it stood at ``now``."""

    week: str
    start: datetime  # UTC instant of Monday 00:00 local
    end: datetime  # UTC instant of the next Monday 00:00 local
    outreach: int = 0  # outgoing non-automatic messages to contacts
    replies: int = 0  # replies received (answers to an unanswered ask)
    asks: int = 0  # new asks started this week
    answered: int = 0  # ... of which answered by now
    response_seconds: list[int] = field(default_factory=list)
    meetings: int = 0

    @property
    def reply_rate(self) -> float | None:
        return self.answered / self.asks if self.asks else None

    @property
    def median_hours(self) -> float | None:
        return statistics.median(self.response_seconds) / 3600 if self.response_seconds else None


@dataclass
class DigestData:
    week: str
    first_day: date
    last_day: date
    now: datetime
    timezone: str
    contacts: int
    owed: list[dict]
    upcoming: list[dict]
    this_week: WeekStats
    previous: list[WeekStats]  # the COMPARE_WEEKS weeks before, oldest first
    history: list[WeekStats]  # HISTORY_WEEKS weeks ending with this one, oldest first
    segments: list[dict]
    fastest: list[dict]
    quiet: list[dict]

    @property
    def is_new_user(self) -> bool:
        return self.contacts == 0

    @property
    def is_quiet_week(self) -> bool:
        w = self.this_week
        return not (self.owed or self.upcoming or w.outreach or w.replies or w.meetings)

    def average(self, attr: str) -> float | None:
        """The mean of a count over the previous weeks; rates and medians pool the weeks."""
        weeks = self.previous
        if not weeks:
            return None
        if attr == "reply_rate":
            asks = sum(w.asks for w in weeks)
            return sum(w.answered for w in weeks) / asks if asks else None
        if attr == "median_hours":
            pooled = [s for w in weeks for s in w.response_seconds]
            return statistics.median(pooled) / 3600 if pooled else None
        return sum(getattr(w, attr) for w in weeks) / len(weeks)


@dataclass(frozen=True)
class DigestResult:
    week: str
    markdown_path: Path
    html_path: Path
    sent_to: str | None
    data: DigestData


# --- weeks -------------------------------------------------------------------

def parse_week(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d{4})-?W(\d{1,2})\s*", text, flags=re.I)
    if m:
        year, week = int(m.group(1)), int(m.group(2))
        try:
            date.fromisocalendar(year, week, 1)
            return year, week
        except ValueError:
            pass
    raise InputError(f"{text!r} is not an ISO week; write it as YYYY-Www, for example 2026-W48.")


def week_label(year: int, week: int) -> str:
    return f"{year}-W{week:02d}"


def week_of(instant: datetime, tz) -> tuple[int, int]:
    y, w, _ = instant.astimezone(tz).isocalendar()
    return y, w


def week_bounds(year: int, week: int, tz) -> tuple[datetime, datetime]:
    """UTC instants of local Monday 00:00 and the next Monday 00:00."""
    monday = date.fromisocalendar(year, week, 1)
    start = datetime.combine(monday, time(0), tzinfo=tz)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def shift_week(year: int, week: int, delta: int) -> tuple[int, int]:
    y, w, _ = (date.fromisocalendar(year, week, 1) + timedelta(weeks=delta)).isocalendar()
    return y, w


# --- loading -----------------------------------------------------------------

def _contacts(db) -> dict[int, dict]:
    rows = db.execute("SELECT id, name, company, segment, cadence_days FROM contacts").fetchall()
    return {r[0]: {"id": r[0], "name": r[1], "company": r[2], "segment": r[3], "cadence_days": r[4]} for r in rows}


def _asks(events: tuple[ledger.Event, ...]) -> list[datetime]:
    """The first outgoing message of every unanswered run: when each ask started."""
    state, starts = None, []
    for e in events:
        nxt = ledger.TRANSITIONS[state][e.kind]
        if nxt == ledger.ASKED and state != ledger.ASKED:
            starts.append(e.at)
        state = nxt
    return starts


def _reminders(db, config, now: datetime, events: dict) -> list[dict]:
    """Open reminders at ``now`` (the reminders module reads stored choices: done, dismissed, snoozed)."""
    from syncagent.pipeline import reminders

    return list(reminders.listing(db, config, now, events=events))


# --- gathering ---------------------------------------------------------------

def gather(db, config, *, week: str | None = None, now: datetime | None = None) -> DigestData:
    """Everything the digest says, computed at ``now`` (default: the clock)."""
    now = (now or utcnow()).astimezone(timezone.utc)
    tz = config.tz
    year, wk = parse_week(week) if week else week_of(now, tz)
    contacts = _contacts(db)
    from syncagent.pipeline.ledger import contact_events

    events = contact_events(db, now)
    ledgers = {cid: ledger.compute(evs, now) for cid, evs in events.items() if cid in contacts}

    weeks = [shift_week(year, wk, -i) for i in range(HISTORY_WEEKS - 1, -1, -1)]
    stats = [WeekStats(week_label(y, w), *week_bounds(y, w, tz)) for y, w in weeks]
    _fill_weeks(db, stats, ledgers, now)
    this = stats[-1]

    owed, upcoming = _split_reminders(_reminders(db, config, now, events), ledgers, now)
    return DigestData(
        week=this.week,
        first_day=date.fromisocalendar(year, wk, 1),
        last_day=date.fromisocalendar(year, wk, 7),
        now=now,
        timezone=config.timezone,
        contacts=len(contacts),
        owed=owed,
        upcoming=upcoming,
        this_week=this,
        previous=stats[-1 - COMPARE_WEEKS:-1],
        history=stats,
        segments=_segments(contacts, ledgers),
        fastest=_fastest(contacts, ledgers, this),
        quiet=_quiet(config, contacts, ledgers, now, {r["contact_id"] for r in owed + upcoming}),
    )


def _week_index(stats: list[WeekStats], at: datetime) -> int | None:
    for i, w in enumerate(stats):
        if w.start <= at < w.end:
            return i
    return None


def _fill_weeks(db, stats: list[WeekStats], ledgers: dict, now: datetime) -> None:
    lo, hi = iso(stats[0].start), iso(min(stats[-1].end, now + timedelta(seconds=1)))
    # Outreach counts messages, not recipients: one mail to three contacts is one.
    sent = db.execute(
        """SELECT DISTINCT m.message_id, m.date FROM messages m
             JOIN message_addresses a ON a.message = m.id AND a.role IN ('to', 'cc', 'bcc')
             JOIN contact_emails ce ON ce.address = a.address
            WHERE m.direction = 'outgoing' AND m.automatic = 0 AND m.date >= ? AND m.date < ?""",
        [lo, hi],
    ).fetchall()
    for _, when in sent:
        i = _week_index(stats, parse_iso(when))
        if i is not None:
            stats[i].outreach += 1
    met = db.execute(
        "SELECT DISTINCT mt.id, mt.end_at FROM meetings mt JOIN meeting_contacts mc ON mc.meeting = mt.id "
        "WHERE mt.end_at >= ? AND mt.end_at < ? AND mt.status = 'confirmed'",
        [lo, hi],
    ).fetchall()
    for _, end in met:
        i = _week_index(stats, parse_iso(end))
        if i is not None:
            stats[i].meetings += 1
    for led in ledgers.values():
        for r in led.replies:
            i = _week_index(stats, r.replied_at)
            if i is not None:
                stats[i].replies += 1
                stats[i].response_seconds.append(r.seconds)
        answered = {r.asked_at for r in led.replies}
        for asked in _asks(led.events):
            i = _week_index(stats, asked)
            if i is not None:
                stats[i].asks += 1
                stats[i].answered += asked in answered


def _split_reminders(items: list[dict], ledgers: dict, now: datetime) -> tuple[list[dict], list[dict]]:
    """Owed now (due) and coming up in the next seven days, each in the digest's order."""
    owed, upcoming = [], []
    horizon = now + timedelta(days=7)
    for item in items:
        item = dict(item)
        due = parse_iso(item["due_at"])
        item["overdue_seconds"] = int((now - due).total_seconds())
        if not item.get("last_subject"):
            item["last_subject"] = _last_subject(ledgers.get(item["contact_id"]))
        if due <= now:
            owed.append(item)
        elif due <= horizon:
            upcoming.append(item)
    rank = {k: i for i, k in enumerate(KIND_ORDER)}
    owed.sort(key=lambda r: (rank.get(r["kind"], 9), -r["overdue_seconds"], r["contact_name"] or ""))
    upcoming.sort(key=lambda r: (r["due_at"], rank.get(r["kind"], 9), r["contact_name"] or ""))
    return owed, upcoming


def _last_subject(led) -> str | None:
    if led is None:
        return None
    for e in reversed(led.events):
        if e.kind != ledger.MEETING and e.subject:
            return e.subject
    return None


def _segments(contacts: dict, ledgers: dict) -> list[dict]:
    """Reply rate (contacts who ever replied / contacts asked) and median response by segment."""
    groups: dict[str, dict] = {}
    for cid, led in ledgers.items():
        asks = _asks(led.events)
        if not asks:
            continue
        seg = contacts[cid]["segment"] or "(no segment)"
        g = groups.setdefault(seg, {"segment": seg, "contacted": 0, "replied": 0, "seconds": []})
        g["contacted"] += 1
        g["replied"] += bool(led.replies)
        g["seconds"].extend(r.seconds for r in led.replies)
    out = []
    for g in groups.values():
        seconds = g.pop("seconds")
        g["rate"] = g["replied"] / g["contacted"]
        g["median_hours"] = statistics.median(seconds) / 3600 if seconds else None
        out.append(g)
    out.sort(key=lambda g: (-g["rate"], g["segment"]))
    return out


def _fastest(contacts: dict, ledgers: dict, week: WeekStats) -> list[dict]:
    best: dict[int, int] = {}
    for cid, led in ledgers.items():
        for r in led.replies:
            if week.start <= r.replied_at < week.end:
                best[cid] = min(best.get(cid, r.seconds), r.seconds)
    ranked = sorted(best.items(), key=lambda kv: (kv[1], contacts[kv[0]]["name"]))[:FASTEST]
    return [{**contacts[cid], "hours": s / 3600} for cid, s in ranked]


def _quiet(config, contacts: dict, ledgers: dict, now: datetime, listed: set[int]) -> list[dict]:
    """Relationships cooling off that no reminder above covers yet."""
    out = []
    for cid, led in ledgers.items():
        if cid in listed or led.last_interaction_at is None:
            continue
        # A contact's own cadence overrides the default, as it does for check-in reminders.
        check_in = timedelta(days=contacts[cid]["cadence_days"] or config.reminders.check_in_after_days)
        silent_days = (now - led.last_interaction_at).days
        if led.state == ledger.ACKED and led.last_message is not None:
            due = led.last_message.at + check_in
            days_left = (due - now).days
            if 0 <= days_left <= QUIET_CHECK_IN_WINDOW_DAYS:
                out.append({**contacts[cid], "silent_days": silent_days,
                            "why": f"check-in due in {days_left} days"})
                continue
        if led.replies and silent_days > QUIET_SILENT_DAYS:
            out.append({**contacts[cid], "silent_days": silent_days,
                        "why": f"replied before, silent for {silent_days} days"})
    out.sort(key=lambda r: (-r["silent_days"], r["name"]))
    return out


# --- writing -----------------------------------------------------------------

def build(db, config, *, week: str | None = None, now: datetime | None = None, send: bool = False) -> DigestResult:
    """Gather, write ``<week>.md`` and ``<week>.html`` (rewriting them), record them, maybe mail them."""
    from syncagent.digest import render as digest_render

    data = gather(db, config, week=week, now=now)
    markdown = digest_render.markdown(data)
    html = digest_render.html(data)
    out_dir = Path(config.digest.output_dir).expanduser()
    try:
        from syncagent.files import private_dir

        private_dir(out_dir)
        md_path = _write(out_dir / f"{data.week}.md", markdown)
        html_path = _write(out_dir / f"{data.week}.html", html)
    except OSError as exc:
        raise SyncagentError(
            f"Cannot write the digest to {out_dir}: {exc.strerror or exc}; check digest.output_dir and its permissions."
        ) from None
    generated = iso(utcnow())
    db.execute(
        "INSERT INTO digests (week, generated_at, markdown_path, html_path) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (week) DO UPDATE SET generated_at = excluded.generated_at, "
        "markdown_path = excluded.markdown_path, html_path = excluded.html_path",
        [data.week, generated, str(md_path), str(html_path)],
    )
    sent_to = None
    if send:
        sent_to = deliver(db, config, data, markdown, html)
    log.info("digest %s written to %s", data.week, out_dir)
    return DigestResult(data.week, md_path, html_path, sent_to, data)


def deliver(db, config, data: DigestData, markdown: str, html: str) -> str:
    """Mail the digest to ``digest.email_to`` and/or store it in ``digest.imap_folder``; record it."""
    from syncagent.digest import render as digest_render
    from syncagent.notify import mailer

    subject = digest_render.subject(data)
    targets = []
    if config.digest.email_to:
        mailer.send(config, subject, markdown, html=html, to=config.digest.email_to)
        targets.append(config.digest.email_to)
    if config.digest.imap_folder:
        targets.append("imap:" + mailer.append_to_imap(config, subject, markdown, html))
    if not targets:
        raise SyncagentError("There is nowhere to send the digest; set email_to (with an [smtp] table) or imap_folder under [digest] in the config.")
    sent_to = ", ".join(targets)
    db.execute("UPDATE digests SET sent_at = ?, sent_to = ? WHERE week = ?", [iso(utcnow()), sent_to, data.week])
    return sent_to


def run_weekly(db, config, now: datetime | None = None) -> DigestResult:
    """The daemon's job: the digest of the last COMPLETED week (the one before ``now``'s week).

    It runs on ``digest.weekday`` at ``digest.time`` (Monday 08:00 by default), when the
    current week has barely started, so the finished week is the one worth reading;
    what is owed and coming up is still as of ``now``. Mailed when email_to is set,
    stored in a mailbox folder when imap_folder is set.
    """
    now = (now or utcnow()).astimezone(timezone.utc)
    y, w = shift_week(*week_of(now, config.tz), -1)
    send = bool(config.digest.email_to or config.digest.imap_folder)
    return build(db, config, week=week_label(y, w), now=now, send=send)


def _write(path: Path, text: str) -> Path:
    """Write atomically (a reader never sees half a digest), mode 0600: it names people."""
    from syncagent.files import write_private

    return write_private(path, text)
