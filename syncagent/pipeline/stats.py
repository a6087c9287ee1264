"""The stored figures: reply rate and response times overall, per segment and per week.

The definitions are ``syncagent.ledger.figures``; this module is their database
side. The ledger stage stores them (``store``, ``store_weeks``, run inside
``ledger.recompute``'s transaction; ``refresh`` when only the clock moved), and
every surface reads them back with ``load``/``load_weeks``: ``stats``, the
digest, the demo and Datasette's queries. A read at another instant (``--now``)
goes through ``evaluate`` instead: the same functions over ledgers computed in
memory, nothing written.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from syncagent.ledger import figures
from syncagent.ledger.figures import NO_SEGMENT, PERIODS, ReplyFigures, WeekFigures
from syncagent.ledger.turns import Ledger, to_utc
from syncagent.store import stats as sql
from syncagent.store.db import transaction
from syncagent.timeutil import iso, parse_iso

__all__ = ["NO_SEGMENT", "evaluate", "load", "load_weeks", "refresh", "render", "report", "store", "store_weeks"]

RECENT_DAYS = figures.RECENT_DAYS
LABELS = {"all_time": "all time", "last_90_days": f"last {RECENT_DAYS} days"}
percentile = figures.percentile
Reached = figures.Outreach

_FIGURES = sql.FIGURES  # the column order of overall_stats and segment_stats


# --- what the figures are computed from ----------------------------------------

def from_tables(db) -> list[figures.Outreach]:
    """The reached contacts as the stored ledger tables (last recompute) have them."""
    rows = sql.load_reached(db)
    # The store's own "...Z" text: fromisoformat reads it directly (parse_iso also takes what people type).
    return [figures.Outreach(figures.segment_label(seg), to_utc(datetime.fromisoformat(first)), seconds)
            for seg, first, seconds in rows]


def stored_figures(db, now: datetime) -> ReplyFigures:
    """The reply figures at ``now`` over the stored contact_ledger rows, in SQL but for the medians:
    what every pass stores (the 90-day window moves with the clock, the rows only with the mail)."""
    now = to_utc(now)
    since = iso(now - timedelta(days=figures.RECENT_DAYS))
    rows = sql.load_reached_recent(db, since, iso(now))
    return figures.tally(((figures.segment_label(seg), bool(recent), seconds) for seg, recent, seconds in rows), now)


def from_ledgers(db, ledgers: dict[int, Ledger]) -> list[figures.Outreach]:
    """The reached contacts from ledgers computed in memory."""
    segments = sql.load_segments(db)
    found = (figures.outreach(segments.get(cid), figures.of_contact(led)) for cid, led in sorted(ledgers.items()))
    return [o for o in found if o is not None]


def evaluate(db, now: datetime, ledgers: dict[int, Ledger] | None = None) -> ReplyFigures:
    """The reply figures at ``now`` without reading or writing the stored ones.

    ``ledgers`` are those at ``now`` when the caller has them; else they are computed.
    """
    from syncagent.pipeline import ledger as ledger_store

    now = to_utc(now)
    if ledgers is None:
        ledgers = ledger_store.ledgers(db, now)
    return figures.reply_figures(from_ledgers(db, ledgers), now)


def evaluate_weeks(db, now: datetime, tz, ledgers: dict[int, Ledger] | None = None) -> dict[str, WeekFigures]:
    """The weekly figures at ``now`` (weeks in ``tz``), computed in memory, nothing written."""
    from syncagent.pipeline import ledger as ledger_store

    if ledgers is None:
        ledgers = ledger_store.ledgers(db, now)
    return figures.weeks(ledgers.values(), tz)


# --- storing -------------------------------------------------------------------

def store(conn, result: ReplyFigures) -> None:
    """Make overall_stats and segment_stats hold ``result`` (inside the caller's transaction)."""
    computed_at = iso(result.now)
    sql.save_figures(
        conn,
        [(p, *(result.overall[p][k] for k in _FIGURES), computed_at) for p in PERIODS],
        [(name, p, *(group[p][k] for k in _FIGURES), computed_at) for name, group in result.segments for p in PERIODS],
    )


def store_weeks(conn, weeks: dict[str, WeekFigures], timezone: str, computed_at: str) -> None:
    """Make weekly_stats hold ``weeks`` (their bounds in ``timezone``)."""
    sql.save_all_weeks(
        conn,
        [
            (w.week, iso(w.start), iso(w.end), timezone, w.messages_sent, w.asks, w.answered, w.reply_rate,
             w.replies, w.median_response_hours, w.meetings, computed_at)
            for w in sorted(weeks.values(), key=lambda w: w.start)
        ],
    )


def refresh(db, now: datetime) -> ReplyFigures:
    """Re-store the reply figures at ``now`` from the stored ledger (the clock moved, nothing else did).

    Only the 90-day window depends on the clock alone; the weekly figures do not.
    """
    result = figures.reply_figures(from_tables(db), to_utc(now))
    with transaction(db, "figures") as conn:
        store(conn, result)
    return result


# --- reading -------------------------------------------------------------------

def by_responsiveness(db, config, now: datetime | None = None) -> ReplyFigures:
    """The reply figures grouped by responsiveness class ("(none)": pending or they wrote first).

    Without ``now``: from the stored ledger rows, at the instant they were computed;
    with it, computed in memory at that instant (nothing written).
    """
    if now is None:
        rows = sql.load_reached_by_class(db)
        outs = [figures.Outreach(figures.segment_label(cls), parse_iso(first), seconds) for cls, first, seconds in rows]
        last = load(db)
        return figures.reply_figures(outs, last.now if last else to_utc(datetime.now(timezone.utc)))
    from syncagent.pipeline import ledger as ledger_store
    from syncagent.pipeline import networking

    now = to_utc(now)
    ledgers = ledger_store.ledgers(db, now)
    classes = networking.derive(db, config, now, ledgers).responsiveness
    found = (figures.outreach(classes.get(cid), figures.of_contact(led)) for cid, led in sorted(ledgers.items()))
    return figures.reply_figures([o for o in found if o is not None], now)


def stored(db) -> bool:
    """Has the ledger stage stored the figures at least once?"""
    return sql.count_figures(db)


def load(db) -> ReplyFigures | None:
    """The reply figures as last stored, at the instant they were computed; None if never."""
    rows = sql.load_overall(db)
    if not rows:
        return None
    overall = {row[0]: dict(zip(_FIGURES, row[1:-1])) for row in rows}
    now = parse_iso(rows[0][-1])
    groups: dict[str, dict] = {}
    for name, period, *values in sql.load_segment_figures(db):
        groups.setdefault(name, {})[period] = dict(zip(_FIGURES, values))
    names = sorted(groups, key=figures.segment_order)
    return ReplyFigures(now=now, overall=overall, segments=tuple((n, groups[n]) for n in names))


def load_weeks(db, timezone: str, labels: Iterable[str]) -> dict[str, WeekFigures] | None:
    """The stored weekly figures of ``labels`` (weeks with no activity are absent); None when the
    stored weeks were cut in another time zone (the next sync re-derives them)."""
    zones = sql.load_week_zones(db)
    if zones - {timezone}:
        return None
    wanted = set(labels)
    rows = sql.load_stored_week_rows(db)  # one row per active week: a few hundred at most
    out: dict[str, WeekFigures] = {}
    for week, start, end, sent, asks, answered, replies, meetings in rows:
        if week not in wanted:
            continue
        # The replies table is the per-reply truth the weekly medians were taken from;
        # the times are read back so several weeks can be pooled.
        seconds = tuple(sql.load_reply_times(db, start, end))
        out[week] = WeekFigures(week, parse_iso(start), parse_iso(end), sent, asks, answered, replies, seconds, meetings)
    return out


# --- the report `stats` prints ---------------------------------------------------

def report(result: ReplyFigures, by: str | None = None) -> dict:
    """The stable object printed by ``stats --json``.

    ``{"now", "by", "overall": {"all_time": G, "last_90_days": G}, "groups": [{"segment", "all_time",
    "last_90_days"}]}`` where G is ``{"reached", "replied", "reply_rate", "median_first_response_hours",
    "p90_first_response_hours"}``; ``groups`` is empty unless ``by == "segment"``.
    """
    if by not in (None, "segment", "responsiveness"):
        raise ValueError(f"unknown grouping {by!r}")
    out: dict = {"now": iso(result.now), "by": by, "overall": {p: dict(result.overall[p]) for p in PERIODS}, "groups": []}
    if by is not None:  # result.segments holds the groups of ``by`` (see by_responsiveness)
        out["groups"] = [{by: name, **{p: dict(g[p]) for p in PERIODS}} for name, g in result.segments]
    return out


def read_report(db, config, by: str | None = None, now: datetime | None = None) -> dict:
    """What ``stats --json`` prints: the stored figures, or at ``now`` the same definitions afresh (no writes).

    ``by`` is "segment", "responsiveness", a dimension of the user's asks (``ledger.what_works``), or None.
    """
    from syncagent.ledger import what_works
    from syncagent.pipeline import outreach
    from syncagent.timeutil import utcnow

    if by == "responsiveness":
        result = by_responsiveness(db, config, now)
    elif now is None and stored(db):
        loaded = load(db)
        assert loaded is not None  # stored() has just said the figures are there
        result = loaded
    else:
        result = evaluate(db, now or utcnow())
    report_ = report(result, by if by in ("segment", "responsiveness") else None)
    if by in what_works.DIMENSIONS:
        report_ = outreach.with_buckets(report_, db, config, by, now)
    return report_


def summarize(reached: list[figures.Outreach], now: datetime, by: str | None = None) -> dict:
    """``report`` of the figures over ``reached`` at ``now``."""
    return report(figures.reply_figures(reached, now), by)


def render(report: dict) -> str:
    """A small aligned table of the report for people (segment names made safe for a terminal)."""
    from syncagent.safe_text import for_terminal

    by = report.get("by") or "segment"
    header = [by, "period", "reached", "replied", "rate", "median h", "p90 h"]
    rows = [["(all)", LABELS[key], *_cells(report["overall"][key])] for key in PERIODS]
    for group in report["groups"]:
        rows += [[for_terminal(group[by]), LABELS[key], *_cells(group[key])] for key in PERIODS]
    if not report["groups"]:
        header, rows = header[1:], [r[1:] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    text_cols = 2 if report["groups"] else 1  # left-aligned labels, right-aligned figures

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < text_cols else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([f"Replies to outreach as of {report['now']}", line(header), *map(line, rows)])


def _cells(group: dict) -> list[str]:
    rate = group["reply_rate"]
    return [
        str(group["reached"]),
        str(group["replied"]),
        "-" if rate is None else f"{rate:.0%}",
        _fmt(group["median_first_response_hours"]),
        _fmt(group["p90_first_response_hours"]),
    ]


def _fmt(hours: float | None) -> str:
    return "-" if hours is None else f"{hours:.1f}"
