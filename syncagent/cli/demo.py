"""`syncagent demo`: the whole pipeline on the bundled sample mailbox."""

from __future__ import annotations

import sys

import click

from syncagent.cli import echo, pass_ctx
from syncagent.cli.options import now_option

SOON_DAYS = 14  # upcoming reminders shown; the rest are counted
KIND_LABEL = {"thank_you": "thank-you", "follow_up": "follow-up", "check_in": "check-in",
              "close_loop": "close loop", "next_contact": "next try"}


@click.command()
@now_option("Evaluate as if the clock read this instant (default: the sample's reference date, 2026-11-13T21:00:00Z).")
@click.option("--reset", is_flag=True, help="Delete the demo directory first and start from scratch.")
@pass_ctx
def demo(ctx, now, reset):
    """Run the whole pipeline on a bundled sample mailbox: no config, no network.

    It writes its own config, database and digest under
    ~/.local/share/syncagent/demo (your own config and database are never
    touched), imports 40 sample contacts, syncs six months of sample mail,
    and prints the ledger, the reminders owed and where the digest is.
    Running it again gives the same result.

    \b
    Example:
      syncagent demo
      syncagent demo --now 2026-12-01T14:00:00Z
      syncagent serve --demo      # then explore it in Datasette
    """
    from syncagent.cli.sync import _Progress
    from syncagent.setup import demo as demo_mod
    if reset:
        demo_mod.reset()
    with _Progress(enabled=sys.stdout.isatty() and not ctx.quiet) as progress:
        result = demo_mod.run(now=now, progress=progress)
    if not ctx.quiet:
        _print(result)


def _what_works(dimensions: list[dict]) -> str:
    """The dimensions whose buckets (of at least MIN_ASKS asks) differ, best and worst, as one phrase."""
    from syncagent.ledger.what_works import MIN_ASKS

    parts = []
    for d in (d for d in dimensions if d["dimension"] in ("questions", "connection", "mass", "words")):
        solid = [b for b in d["buckets"] if b["asks"] >= MIN_ASKS]
        if len(solid) < 2:
            continue
        best, worst = max(solid, key=lambda b: b["reply_rate"]), min(solid, key=lambda b: b["reply_rate"])
        parts.append(f"{best['bucket']} {_pct(best['reply_rate'])} vs {worst['bucket']} {_pct(worst['reply_rate'])}")
    return "; ".join(parts[:3])


def _print(r) -> None:
    from zoneinfo import ZoneInfo

    from syncagent.safe_text import for_terminal
    from syncagent.setup.demo import DEMO_TIMEZONE

    tz = ZoneInfo(DEMO_TIMEZONE)
    echo(f"Demo directory: {r.directory} (your own config and database are untouched)")
    echo(r.imported)
    for line in r.sync_lines:
        echo(line)
    echo("")
    local_now = r.now.astimezone(tz)
    echo(f"Ledger as of {local_now:%a %d %b %Y %H:%M} ({DEMO_TIMEZONE})", bold=True)
    overall = r.stats["overall"]["all_time"]
    echo(f"  {r.contacts} contacts, {overall['reached']} reached out to, {overall['replied']} replied "
         f"({_pct(overall['reply_rate'])}), median first reply {_hours(overall['median_first_response_hours'])}")
    echo(f"  {'segment':<10} {'reached':>7} {'replied':>7} {'rate':>5} {'median reply':>13}")
    for g in r.stats["groups"]:
        a = g["all_time"]
        echo(f"  {for_terminal(g['segment']):<10} {a['reached']:>7} {a['replied']:>7} {_pct(a['reply_rate']):>5} "
             f"{_hours(a['median_first_response_hours']):>13}")
    classes = r.responsiveness
    echo(f"  responsiveness: {classes.get('booster', 0)} boosters (replied within 3 business days), "
         f"{classes.get('obligate', 0)} obligates (later), {classes.get('curmudgeon', 0)} curmudgeons (not at all)")
    targets = [c for c in r.companies if c["tracked"] > 1]
    if targets:
        echo(f"  {len(r.companies)} companies; with several people: "
             + ", ".join(f"{for_terminal(c['company'])} {c['replied']}/{c['reached']} replied" for c in targets))
    if r.holidays:
        echo(f"  {r.holidays[0].upper()}{r.holidays[1:]}")
    contrast = _what_works(r.what_works)
    if contrast:
        echo(f"  what gets replies: {contrast}")
    echo("")
    due = [x for x in r.reminders if x["overdue_seconds"] >= 0]
    upcoming = [x for x in r.reminders if x["overdue_seconds"] < 0]
    echo(f"Reminders: {len(due)} due, {len(upcoming)} coming up", bold=True)
    soon = [x for x in upcoming if -x["overdue_seconds"] <= SOON_DAYS * 86400]
    for x in due + soon:
        when = _parse(x["due_at"]).astimezone(tz)
        flag = "due" if x["overdue_seconds"] >= 0 else "soon"
        echo(f"  {x['id']:>3} {flag:<4} {KIND_LABEL.get(x['kind'], x['kind']):<9} {when:%d %b}  "
             f"{_cut(for_terminal(x['contact_name'] or x['contact_email'] or '?'), 20):<20} {_cut(for_terminal(x['reason']), 110)}")
    if len(upcoming) > len(soon):
        echo(f"  ... and {len(upcoming) - len(soon)} more later than {SOON_DAYS} days from now (see `reminders`)")
    echo("")
    echo("Digest written to:")
    for p in r.digest_paths:
        echo(f"  {p}")
    echo("")
    echo(f"Try: syncagent --config {r.config_path} reminders")
    echo(f"     syncagent --config {r.config_path} brief \"Renée Fontaine\"     # before a meeting")
    echo(f"     syncagent --config {r.config_path} draft-check FILE          # a draft against your reply rates")
    echo(f"     syncagent --config {r.config_path} stats --by questions   # what gets replies")
    echo("Explore it: syncagent serve --demo")


def _parse(text: str):
    from syncagent.timeutil import parse_iso

    return parse_iso(text)


def _pct(rate) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _hours(h) -> str:
    if h is None:
        return "-"
    return f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} days"


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
