"""The digest as Markdown and as self-contained HTML (inline styles, table layout).

Mail clients drop <style> blocks and external resources, so every style is an
attribute and the chart is inline SVG. The HTML is also well-formed XML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from syncagent.digest import charts
from syncagent.digest.data import DigestData
from syncagent.ledger.obligations import KINDS
from syncagent.ledger.what_works import MIN_ASKS
from syncagent.reports.brief import summary as brief_summary
from syncagent.safe_text import for_markdown, for_markup
from syncagent.timeutil import parse_iso

KIND_TITLES = {"thank_you": "Thank-yous", "follow_up": "Follow-ups", "check_in": "Check-ins",
               "close_loop": "Closing the loop with introducers", "next_contact": "Next person to try"}
KIND_SINGULAR = {"thank_you": "thank-you", "follow_up": "follow-up", "check_in": "check-in",
                 "close_loop": "close the loop", "next_contact": "next contact"}
IMPORT_HINT = ("See the people you exchanged mail with and track them with `syncagent contacts suggest`, or import "
               "contacts with `syncagent contacts import FILE` (a CSV, LinkedIn's Connections.csv or a vCard).")
FONT = "font-family:Helvetica,Arial,sans-serif;"


# --- words and numbers ---------------------------------------------------------

def duration(seconds: float) -> str:
    """A rounded human span: "40 minutes", "5 hours", "3 days"."""
    seconds = abs(seconds)
    if seconds < 3600:
        n, unit = max(1, round(seconds / 60)), "minute"
    elif seconds < 2 * 86400:
        n, unit = round(seconds / 3600), "hour"
    else:
        n, unit = round(seconds / 86400), "day"
    return f"{n} {unit}{'' if n == 1 else 's'}"


def hours(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1:
        return f"{round(value * 60)} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} days"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{round(value * 100)}%"


def count(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}".rstrip("0").rstrip(".")  # 1, 1.5, 0.25


def subject(data: DigestData) -> str:
    owed = len(data.owed)
    return f"syncagent digest {data.week}: {owed} owed, {data.this_week.replies} replies, {data.this_week.messages_sent} sent"


def _when(item: dict) -> str:
    s = item["overdue_seconds"]
    return f"{duration(s)} overdue" if s >= 0 else f"due in {duration(s)}"


def _local_day(iso_text: str, tz: str) -> str:
    return parse_iso(iso_text).astimezone(ZoneInfo(tz)).strftime("%a %d %b")


def _local_time(iso_text: str | None, tz: str) -> str:
    if not iso_text:
        return "time unknown"
    local = parse_iso(iso_text).astimezone(ZoneInfo(tz))
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def _person(item: dict) -> str:
    name = item.get("contact_name") or item.get("name") or "(unnamed)"
    company = item.get("company")
    return f"{name} ({company})" if company else name


def _title(data: DigestData) -> str:
    span = f"{data.first_day:%a %d %b} – {data.last_day:%a %d %b %Y}"
    return f"Your networking week {data.week} ({span})"


def _number_rows(data: DigestData) -> list[tuple[str, str, str]]:
    w = data.this_week
    return [
        ("Outreach sent", count(w.messages_sent), count(data.average("messages_sent"))),
        ("Replies received", count(w.replies), count(data.average("replies"))),
        ("Reply rate (new asks answered)", percent(w.reply_rate), percent(data.average("reply_rate"))),
        ("Median response time", hours(w.median_response_hours), hours(data.average("median_response_hours"))),
        ("Meetings", count(w.meetings), count(data.average("meetings"))),
    ]


def _generated(data: DigestData) -> str:
    local = data.now.astimezone(ZoneInfo(data.timezone))
    return f"As of {local:%a %d %b %Y %H:%M} ({data.timezone})."


def _stale_line(data) -> str:
    n, days = data.stale, data.stale_after_days
    return (f"Also {n} older obligation{'s' if n != 1 else ''}, overdue by more than {days:g} "
            f"day{'s' if days != 1 else ''}: syncagent reminders --stale")


def responsiveness_line(counts: dict) -> str:
    """How the people you wrote to first answered that first message."""
    return (f"Of the people you wrote to first: {counts.get('booster', 0)} boosters (answered within 3 business "
            f"days), {counts.get('obligate', 0)} obligates (answered later), {counts.get('curmudgeon', 0)} "
            "curmudgeons (no answer yet after the follow-up delay).")


# --- the digest as data: sections of blocks that both formatters read -------------

@dataclass(frozen=True)
class Text:
    text: str
    muted: bool = False  # grey in HTML; plain in Markdown


@dataclass(frozen=True)
class Note:
    text: str  # an aside: italic in Markdown, grey in HTML


@dataclass(frozen=True)
class Hint:
    text: str  # our own words with `commands` in backticks: code in both formats


@dataclass(frozen=True)
class Heading:
    text: str  # a heading inside a section
    detail: str | None = None  # after a comma, outside the emphasis in Markdown


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric_from: int | None = None  # columns from this one on are numbers, aligned right


@dataclass(frozen=True)
class Listing:
    """People or items: in Markdown a list of "lead: detail" lines, in HTML the table."""

    items: list[tuple[str, str | None]]
    table: Table
    bold: bool = False
    numbered: bool = False


@dataclass(frozen=True)
class Chart:
    """A table that HTML draws (inline SVG) and captions, and Markdown shows as the table."""

    table: Table
    svg: str
    caption: str


Block = Text | Note | Hint | Heading | Table | Listing | Chart


@dataclass(frozen=True)
class Section:
    title: str | None
    blocks: list[Block] = field(default_factory=list)


def sections(data: DigestData) -> list[Section]:
    """What the digest says, in order, whatever it is written in."""
    if data.is_new_user:
        return [Section(None, [Text("Nothing owed this week: you are not tracking anyone yet."), Hint(IMPORT_HINT)])]
    tz = data.timezone
    owed: list[Block] = [] if data.owed else [Text("Nothing owed this week. Well done.")]
    for kind in KINDS:
        items = [r for r in data.owed if r["kind"] == kind]
        if items:
            owed += [Heading(KIND_TITLES[kind]), Listing(
                [(_person(r), _when(r) + (f' · last: "{r["last_subject"]}"' if r.get("last_subject") else ""))
                 for r in items],
                Table(["Person", "Overdue", "Last message"],
                      [[_person(r), duration(r["overdue_seconds"]), r.get("last_subject") or "–"] for r in items]),
                bold=True)]
    if data.stale:
        owed.append(Text(_stale_line(data), muted=True))
    out = [Section("What you owe now", owed)]
    upcoming: list[Block] = [Listing(
        [(_person(r), f"{KIND_SINGULAR.get(r['kind'], r['kind'])} {_when(r)} ({_local_day(r['due_at'], tz)})")
         for r in data.upcoming],
        Table(["Person", "Owed", "Due"], [[_person(r), KIND_SINGULAR.get(r["kind"], r["kind"]),
                                           f"{_local_day(r['due_at'], tz)} ({_when(r)})"] for r in data.upcoming]),
    )] if data.upcoming else [Text("Nothing else falls due this week.")]
    out.append(Section("Coming up in the next 7 days", upcoming))
    if data.meetings:
        meetings: list[Block] = []
        for m in data.meetings:
            briefs = [brief_summary(p["brief"]) for p in m["people"]]
            meetings += [Heading(m["summary"] or "Meeting", _local_time(m["start_at"], tz)),
                         Listing([(b, None) for b in briefs], Table(["Brief"], [[b] for b in briefs]))]
        out.append(Section("Meetings in the next 7 days", meetings))
    numbers: list[Block] = [Text("A quiet week: no outreach, no replies, no meetings. A short, specific note to one "
                                 "warm contact is a good start.")] if data.is_quiet_week else []
    numbers.append(Table(["", "This week", "Previous 4 weeks (average)"], [list(r) for r in _number_rows(data)], 1))
    out.append(Section("The week in numbers", numbers))
    out.append(Section("Reply rate by segment", [Table(
        ["Segment", "Reached", "Replied", "Reply rate", "Median first response"],
        [[s["segment"], str(s["reached"]), str(s["replied"]), percent(s["reply_rate"]),
          hours(s["median_first_response_hours"])] for s in data.segments], 1,
    )] if data.segments else [Text("No outreach yet, so no reply rates.")]))
    if data.responsiveness:
        out.append(Section("Responsiveness", [Text(responsiveness_line(data.responsiveness))]))
    if data.what_works:
        out.append(Section("What gets replies", [
            Note(f"Your own asks, by what they were like; buckets of at least {MIN_ASKS} asks."),
            *(Table([f"By {w['dimension']}", "Asks", "Reply rate", "Median first response"],
                    [[b["bucket"], str(b["asks"]), percent(b["reply_rate"]), hours(b["median_first_response_hours"])]
                     for b in w["buckets"]], 1) for w in data.what_works)]))
    out.append(Section("Fastest to answer this week", [Listing(
        [(_person(p), hours(p["hours"])) for p in data.fastest],
        Table(["Person", "Response time"], [[_person(p), hours(p["hours"])] for p in data.fastest], 1),
        numbered=True,
    )] if data.fastest else [Text("No replies this week yet.")]))
    out.append(Section("Going quiet", [Listing(
        [(_person(p), p["why"]) for p in data.quiet], Table(["Person", "Why"], [[_person(p), p["why"]] for p in data.quiet]),
    )] if data.quiet else [Text("Nobody is drifting away.")]))
    history = [(w.week, w.messages_sent, w.replies) for w in data.history]
    out.append(Section("Outreach and replies, last 12 weeks", [Chart(
        Table(["Week", "Sent", "Replies"], [[week, str(sent), str(replies)] for week, sent, replies in history], 1),
        charts.outreach_vs_replies(history),
        # Some mail clients (Gmail) drop inline SVG: the caption still carries the gist.
        _history_caption(data),
    )]))
    return out


# --- Markdown ------------------------------------------------------------------

def markdown(data: DigestData) -> str:
    out = [f"# {_title(data)}", "", f"_{_generated(data)}_", ""]
    for section in sections(data):
        if section.title:
            out += [f"## {section.title}", ""]
        for block in section.blocks:
            out += [*_md_block(block), ""]
    return "\n".join(out)


def _md_block(block: Block) -> list[str]:
    """One block as Markdown lines; every text but our own hints is escaped."""
    md = _md_escape
    if isinstance(block, Text):
        return [md(block.text)]
    if isinstance(block, Note):
        return [f"_{md(block.text)}_"]
    if isinstance(block, Hint):
        return [block.text]
    if isinstance(block, Heading):
        return [f"**{md(block.text)}**" + (f", {md(block.detail)}" if block.detail else "")]
    if isinstance(block, Listing):
        lines = []
        for i, (lead, detail) in enumerate(block.items, 1):
            mark = f"{i}." if block.numbered else "-"
            shown = f"**{md(lead)}**" if block.bold else md(lead)
            lines.append(f"{mark} {shown}" + (f": {md(detail)}" if detail is not None else ""))
        return lines
    table = block.table if isinstance(block, Chart) else block
    right = table.numeric_from

    def row(cells: list[str]) -> str:
        return "|" + "|".join(f" {md(c)} " if c else " " for c in cells) + "|"

    return [row(table.headers),
            "|" + "|".join("---:" if right is not None and i >= right else "---" for i in range(len(table.headers))) + "|",
            *(row(r) for r in table.rows)]


def _md_escape(text: str) -> str:
    """Names and subjects as visible text, never Markdown markup or control characters."""
    return for_markdown(text)


def escape(text: str) -> str:
    """Every text put into the HTML, ours or a stranger's, goes through here."""
    return for_markup(text)


# --- HTML ----------------------------------------------------------------------

def html(data: DigestData) -> str:
    body: list[str] = [_h1(_title(data)), _p(_generated(data), muted=True)]
    for section in sections(data):
        if section.title:
            body.append(_h2(section.title))
        body += [_html_block(block) for block in section.blocks]
    inner = "".join(body)
    return (
        "<!DOCTYPE html>\n"
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{escape(_title(data))}</title></head>"
        f'<body style="margin:0;padding:0;background:#f4f4f4;{FONT}">'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:#f4f4f4;">'
        '<tr><td align="center" style="padding:16px;">'
        '<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" '
        'style="max-width:600px;width:100%;background:#ffffff;border:1px solid #dddddd;">'
        f'<tr><td style="padding:20px 24px;color:#222222;font-size:14px;line-height:1.45;{FONT}">{inner}</td></tr>'
        "</table>"
        f'<p style="color:#888888;font-size:11px;{FONT}">Written by syncagent from your own mailbox; nothing was sent to anyone but you.</p>'
        "</td></tr></table></body></html>\n"
    )


def _html_block(block: Block) -> str:
    if isinstance(block, Text):
        return _p(block.text, muted=block.muted)
    if isinstance(block, Note):
        return _p(block.text, muted=True)
    if isinstance(block, Hint):
        return _p(_code_hint(block.text))
    if isinstance(block, Heading):
        return _h3(block.text + (f", {block.detail}" if block.detail else ""))
    if isinstance(block, Chart):
        return f'<div style="margin:8px 0 4px 0;">{block.svg}</div>' + _p(block.caption, muted=True)
    table = block.table if isinstance(block, Listing) else block
    return _table(table.headers, table.rows, numeric_from=table.numeric_from)


def _history_caption(data: DigestData) -> str:
    sent = sum(w.messages_sent for w in data.history)
    replies = sum(w.replies for w in data.history)
    first, last = data.history[0].week, data.history[-1].week
    return f"{first} to {last}: {sent} messages sent, {replies} replies received."


def _h1(text: str) -> str:
    return f'<h1 style="font-size:20px;margin:0 0 4px 0;color:#1d3557;{FONT}">{escape(text)}</h1>'


def _h2(text: str) -> str:
    return f'<h2 style="font-size:16px;margin:22px 0 8px 0;color:#1d3557;border-bottom:1px solid #e5e5e5;padding-bottom:4px;{FONT}">{escape(text)}</h2>'


def _h3(text: str) -> str:
    return f'<h3 style="font-size:14px;margin:12px 0 4px 0;color:#444444;{FONT}">{escape(text)}</h3>'


def _p(text: str, muted: bool = False) -> str:
    colour = "#777777" if muted else "#222222"
    return f'<p style="margin:6px 0;color:{colour};{FONT}">{escape(text) if "<code" not in text else text}</p>'


def _code_hint(text: str) -> str:
    """Backticked commands in the hint become <code>; everything else is escaped."""
    pieces = text.split("`")
    return "".join(
        f'<code style="background:#f0f0f0;padding:1px 4px;">{escape(p)}</code>' if i % 2 else escape(p)
        for i, p in enumerate(pieces)
    )


def _table(headers: list[str], rows: list[list[str]], numeric_from: int | None = None) -> str:
    def cell(tag: str, text: str, i: int) -> str:
        align = "right" if numeric_from is not None and i >= numeric_from else "left"
        weight = "bold" if tag == "th" else "normal"
        return (f'<{tag} align="{align}" style="padding:4px 8px;border-bottom:1px solid #eeeeee;text-align:{align};'
                f'font-weight:{weight};font-size:13px;{FONT}">{escape(str(text))}</{tag}>')

    head = "".join(cell("th", h, i) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", c, i) for i, c in enumerate(r)) + "</tr>" for r in rows)
    return (f'<table role="presentation" cellpadding="0" cellspacing="0" border="0" width="100%" '
            f'style="border-collapse:collapse;margin:4px 0 8px 0;"><tr style="background:#f7f7f7;">{head}</tr>{body}</table>')
