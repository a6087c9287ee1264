"""The weekly digest: gather the week's numbers, write Markdown and HTML, optionally mail them.

``build`` makes the digest of one ISO week (weeks run Monday to Sunday in
``config.timezone``) as it stood at ``now``; ``run_weekly`` is the daemon's job.
The figures (the week in numbers, reply rate by segment) are the ones the last
sync stored (``syncagent.pipeline.stats``), the same ``stats`` and Datasette show;
with an explicit ``now`` (``--now``) they are computed at that instant by the same
definitions (``syncagent.ledger.figures``) without writing derived tables.
Reminders are the stored ones (``syncagent.pipeline.reminders.stored``, what ``reminders`` lists),
or with ``--now`` evaluated by ``syncagent.pipeline.reminders.listing``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from syncagent.errors import InputError, SyncagentError
from syncagent.ledger import figures
from syncagent.ledger import turns as ledger
from syncagent.ledger.figures import WeekFigures, shift_week, week_bounds, week_label, week_of
from syncagent.ledger.obligations import KINDS
from syncagent.store import contacts as contact_rows
from syncagent.store import digest as digests
from syncagent.store.summary import load_responsiveness
from syncagent.timeutil import iso, parse_iso, utcnow

log = logging.getLogger(__name__)

HISTORY_WEEKS = 12  # the chart's span
COMPARE_WEEKS = 4  # "compared with the average of the previous four weeks"
FASTEST = 5
QUIET_SILENT_DAYS = 60  # replied before, silent this long: going quiet
QUIET_CHECK_IN_WINDOW_DAYS = 30  # ACKED and the check-in falls due within this window
KIND_ORDER = KINDS  # the reminders listing's order: thank-yous first, suggestions last


# The week's figures are defined once, with every other figure.
WeekStats = WeekFigures
__all__ = ["WeekStats", "shift_week", "week_bounds", "week_label", "week_of"]


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
    responsiveness: dict = field(default_factory=dict)  # booster/obligate/curmudgeon -> contacts
    stale: int = 0  # open reminders overdue by more than stale_after_days: counted, not listed
    stale_after_days: float = 30
    # What gets replies: per dimension of your asks, the buckets with at least MIN_ASKS asks.
    what_works: list[dict] = field(default_factory=list)
    # Meetings starting in the 7 days after now, each with the brief of every tracked person in it.
    meetings: list[dict] = field(default_factory=list)

    @property
    def is_new_user(self) -> bool:
        return self.contacts == 0

    @property
    def is_quiet_week(self) -> bool:
        w = self.this_week
        return not (self.owed or self.upcoming or w.messages_sent or w.replies or w.meetings)

    def average(self, attr: str) -> float | None:
        """The mean of a count over the previous weeks; rates and medians pool the weeks."""
        weeks = self.previous
        if not weeks:
            return None
        if attr == "reply_rate":
            return figures.pooled_reply_rate(weeks)
        if attr == "median_response_hours":
            return figures.pooled_median_hours(weeks)
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


# --- loading -----------------------------------------------------------------

def _reminders(db, config, now: datetime, events: dict | None) -> list[dict]:
    """Open reminders at ``now`` (the reminders module reads stored choices: done, dismissed, snoozed):
    evaluated from ``events``, or as the last sync stored them (what ``syncagent reminders`` lists)."""
    from syncagent.pipeline import reminders

    if events is None:
        return reminders.stored(db, config, now)
    return list(reminders.listing(db, config, now, events=events))


@dataclass(frozen=True)
class Standing:
    """What "going quiet" reads of one contact's ledger."""

    contact_id: int
    state: str | None
    last_interaction_at: datetime | None
    last_message_at: datetime | None
    replied: bool


def _standings_of(ledgers: dict) -> list[Standing]:
    return [Standing(cid, led.state, led.last_interaction_at, led.last_message.at if led.last_message else None,
                     bool(led.replies)) for cid, led in ledgers.items()]


def _stored_standings(db) -> list[Standing]:
    def at(text: str | None) -> datetime | None:
        return parse_iso(text) if text else None

    return [Standing(cid, state, at(last), at(last_message), replied)
            for cid, state, last, last_message, replied in digests.load_quiet_inputs(db)]


# --- gathering ---------------------------------------------------------------

def gather(db, config, *, week: str | None = None, now: datetime | None = None) -> DigestData:
    """Everything the digest says, computed at ``now`` (default: the clock)."""
    from syncagent.pipeline import stats as stored
    from syncagent.pipeline.ledger import contact_events

    replay = now is not None
    now = (now or utcnow()).astimezone(timezone.utc)
    tz = config.tz
    year, wk = parse_week(week) if week else week_of(now, tz)
    contacts = contact_rows.load_basics(db)
    weeks = [shift_week(year, wk, -i) for i in range(HISTORY_WEEKS - 1, -1, -1)]
    labels = [week_label(y, w) for y, w in weeks]
    # Without --now the digest shows what the last sync stored, as every other surface does, and
    # reads no mail: every contact's events at a million messages are hundreds of megabytes.
    reply = stored.load(db) if not replay and stored.stored(db) else None
    weekly = stored.load_weeks(db, config.timezone, labels) if reply is not None else None
    from_store = reply is not None and weekly is not None  # weekly: None when cut in another zone
    events: dict | None = None
    ledgers: dict = {}
    if reply is None or weekly is None:
        events = contact_events(db, now)
        ledgers = {cid: ledger.compute(evs, now) for cid, evs in events.items() if cid in contacts}
        reply = stored.evaluate(db, now, ledgers)
        weekly = figures.weeks(ledgers.values(), tz)
    stats = [weekly.get(label) or figures.empty_week(y, w, tz) for label, (y, w) in zip(labels, weeks)]
    this = stats[-1]

    items = _reminders(db, config, now, events)
    owed, upcoming = _split_reminders([r for r in items if not r["stale"]], ledgers, now)
    if from_store:
        week_replies = digests.load_week_reply_seconds(db, iso(this.start), iso(this.end))
        standings = _stored_standings(db)
    else:
        week_replies = [(cid, r.seconds) for cid, led in ledgers.items() for r in led.replies
                        if this.start <= r.replied_at < this.end]
        standings = _standings_of(ledgers)
    if replay:
        from syncagent.pipeline import networking

        classes = list(networking.derive(db, config, now, ledgers).responsiveness.values())
    else:  # as the last sync stored them (contact_summary)
        classes = load_responsiveness(db)
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
        segments=_segments(reply),
        fastest=_fastest(contacts, week_replies),
        quiet=_quiet(config, contacts, standings, now, {r["contact_id"] for r in owed + upcoming}),
        responsiveness={k: classes.count(k) for k in ("booster", "obligate", "curmudgeon") if k in classes},
        stale=sum(r["stale"] for r in items),
        stale_after_days=config.reminders.stale_after_days,
        what_works=_what_works(db, config, now if replay else None, ledgers),
        meetings=_meetings(db, config, now, stored=from_store),
    )


def _what_works(db, config, now: datetime | None, ledgers: dict) -> list[dict]:
    """Per dimension, the buckets of at least MIN_ASKS asks: stored, or at a replayed ``now`` computed afresh."""
    from syncagent.ledger import what_works as ww
    from syncagent.pipeline import outreach

    asks = outreach.load_asks(db, config, now, ledgers) if now is not None else None
    out = []
    for dim in ww.DIMENSIONS:
        rows = ww.figures(asks, dim) if asks is not None else outreach.buckets(db, config, dim)
        solid = [b for b in rows if b["asks"] >= ww.MIN_ASKS]
        if len(solid) >= 2:  # one bucket alone compares with nothing
            out.append({"dimension": dim, "buckets": solid})
    return out


def _meetings(db, config, now: datetime, *, stored: bool) -> list[dict]:
    """The coming week's meetings, each tracked attendee with their brief (``stored``: owed as stored)."""
    from datetime import timedelta

    from syncagent.reports import brief
    from syncagent.store.relationships import load_upcoming_meetings

    out = []
    for m in load_upcoming_meetings(db, iso(now), iso(now + timedelta(days=7))):
        people = [{"name": c["name"], "company": c["company"],
                   "brief": brief.build(db, config, str(c["contact_id"]), now, stored=stored)}
                  for c in m["contacts"]]
        out.append({"summary": m["summary"], "start_at": m["start_at"], "people": people})
    return out


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


def _segments(reply: figures.ReplyFigures) -> list[dict]:
    """The stored all-time reply figures of every segment, highest reply rate first."""
    out = [{"segment": name, **group["all_time"]} for name, group in reply.segments]
    out.sort(key=lambda g: (-(g["reply_rate"] or 0), figures.segment_order(g["segment"])))
    return out


def _fastest(contacts: dict, week_replies: list[tuple[int, int]]) -> list[dict]:
    """The quickest responders of the week: each contact's fastest reply received in it."""
    best: dict[int, int] = {}
    for cid, seconds in week_replies:
        if cid in contacts:
            best[cid] = min(best.get(cid, seconds), seconds)
    ranked = sorted(best.items(), key=lambda kv: (kv[1], contacts[kv[0]]["name"]))[:FASTEST]
    return [{**contacts[cid], "hours": figures.hours(s)} for cid, s in ranked]


def _quiet(config, contacts: dict, standings: list[Standing], now: datetime, listed: set[int]) -> list[dict]:
    """Relationships cooling off that no reminder above covers yet."""
    out = []
    for st in standings:
        cid = st.contact_id
        if cid in listed or cid not in contacts or st.last_interaction_at is None:
            continue
        # A contact's own cadence overrides the default, as it does for check-in reminders.
        check_in = timedelta(days=contacts[cid]["cadence_days"] or config.reminders.check_in_after_days)
        silent_days = (now - st.last_interaction_at).days
        if st.state == ledger.ACKED and st.last_message_at is not None:
            due = st.last_message_at + check_in
            days_left = (due - now).days
            if 0 <= days_left <= QUIET_CHECK_IN_WINDOW_DAYS:
                out.append({**contacts[cid], "silent_days": silent_days,
                            "why": f"check-in due in {days_left} days"})
                continue
        if st.replied and silent_days > QUIET_SILENT_DAYS:
            out.append({**contacts[cid], "silent_days": silent_days,
                        "why": f"replied before, silent for {silent_days} days"})
    out.sort(key=lambda r: (-r["silent_days"], r["name"]))
    return out


# --- writing -----------------------------------------------------------------

def build(db, config, *, week: str | None = None, now: datetime | None = None, send: bool = False,
          record: bool = True) -> DigestResult:
    """Gather, write ``<week>.md`` and ``<week>.html`` (rewriting them), record them, maybe mail them.

    ``record=False`` (a replay with ``--now``) leaves the ``digests`` table alone.
    """
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
    if record:
        digests.save_digest_written(db, data.week, generated, str(md_path), str(html_path))
    sent_to = None
    if send:
        sent_to = deliver(db, config, data, markdown, html, record=record)
    log.info("digest %s written to %s", data.week, out_dir)
    return DigestResult(data.week, md_path, html_path, sent_to, data)


def deliver(db, config, data: DigestData, markdown: str, html: str, record: bool = True) -> str:
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
    if record:
        digests.save_digest_sent(db, data.week, iso(utcnow()), sent_to)
    return sent_to


def run_weekly(db, config, now: datetime | None = None) -> DigestResult:
    """The daemon's job: the digest of the last COMPLETED week (the one before ``now``'s week).

    It runs on ``digest.weekday`` at ``digest.time`` (Monday 08:00 by default), when the
    current week has barely started, so the finished week is the one worth reading;
    what is owed and coming up is still as of ``now`` (default: the clock, reading what the last
    sync stored; an explicit ``now`` evaluates at that instant). Mailed when email_to is set,
    stored in a mailbox folder when imap_folder is set.
    """
    at = (now or utcnow()).astimezone(timezone.utc)
    y, w = shift_week(*week_of(at, config.tz), -1)
    send = bool(config.digest.email_to or config.digest.imap_folder)
    # No ``now``: the digest shows what the last sync stored, as ``syncagent digest`` does.
    return build(db, config, week=week_label(y, w), now=now, send=send)


def _write(path: Path, text: str) -> Path:
    """Write atomically (a reader never sees half a digest), mode 0600: it names people."""
    from syncagent.files import write_private

    return write_private(path, text)
