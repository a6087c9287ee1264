"""`syncagent reminders`: what is owed (thank-yous, follow-ups, check-ins), and the user's choices."""

from __future__ import annotations

import click

from syncagent.cli import pass_ctx
from syncagent.cli.options import now_option

_LABEL = {"thank_you": "thank-you", "follow_up": "follow-up", "check_in": "check-in",
          "close_loop": "close loop", "next_contact": "next try"}
_KINDS = tuple(_LABEL)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--due", is_flag=True, help="Only reminders due by now (overdue ones).")
@click.option("--stale", is_flag=True, help="Only stale ones: overdue by more than [reminders] stale_after_days.")
@now_option()
@click.pass_context
def reminders(click_ctx, as_json, due, stale, now):
    """Open reminders: thank-yous owed, follow-ups due, check-ins to make.

    Overdue reminders come first (thank-yous, then follow-ups, then check-ins),
    each with how long it has been due and why; upcoming ones follow. Those
    overdue by more than [reminders] stale_after_days (30) are stale: one line
    counts them after the rest, --stale lists them, --json lists them with
    "stale": true. Mark reminders done, dismiss or snooze them by id or by
    --kind, --stale and --before: the choice sticks across syncs, and a new
    reply or message raises a new reminder.

    \b
    Examples:
      syncagent reminders                    # the table
      syncagent reminders --due --json       # only what is due now, as JSON
      syncagent reminders --stale            # the old ones a first sync found
      syncagent reminders --now 2026-12-01T09:00:00Z
      syncagent reminders done 12            # I did it (outside email)
      syncagent reminders dismiss 12 14      # not needed
      syncagent reminders dismiss --stale    # all the stale ones at once
      syncagent reminders snooze 12 --until 2026-12-01
    """
    if click_ctx.invoked_subcommand is not None:
        return
    from syncagent.pipeline import reminders as rem
    from syncagent.timeutil import utcnow

    ctx = click_ctx.obj  # the shared syncagent.cli.Context
    db = ctx.db(reading=True)
    if now is None:
        # The rows the last sync derived at the clock: a read, unless nothing was ever derived.
        _derive_once(ctx, db)
        items = rem.stored(db, ctx.config, utcnow(), due_only=due)
    else:
        # A replay: evaluated in memory, nothing written (an obligation no sync stored has id null).
        items = rem.listing(db, ctx.config, now, due_only=due)
    if stale:
        items = [i for i in items if i["stale"]]
    if as_json:
        from syncagent.safe_text import for_json

        click.echo(for_json(items))
        return
    days = ctx.config.reminders.stale_after_days
    ctx.echo(_stale_table(items, days) if stale else _table(items, ctx.config.tz, days))
    if not items and not stale:
        from syncagent.contacts.suggest import untracked_hint

        hint = untracked_hint(db, [a for acc in ctx.config.accounts for a in acc.addresses])
        if hint:
            ctx.echo(hint)


def _derive_once(ctx, db) -> None:
    """No pass has derived the reminders yet (contacts added, no sync since): run the derived stages."""
    from syncagent.pipeline import stages

    if not stages.derived(db):
        stages.after_sync(db, ctx.config)


def _days(days: float) -> str:
    return f"{days:g} day" + ("" if days == 1 else "s")


def _table(items: list[dict], tz, stale_after_days: float) -> str:
    if not items:
        return "Nothing owed: no open reminders."
    from syncagent.timeutil import parse_iso

    fresh = [i for i in items if not i["stale"]]
    stale = len(items) - len(fresh)
    lines = []
    for title, group in (("Overdue", [i for i in fresh if i["overdue_seconds"] >= 0]),
                         ("Upcoming", [i for i in fresh if i["overdue_seconds"] < 0])):
        if not group:
            continue
        lines.append(f"{title} ({len(group)})")
        for item in group:
            due_local = parse_iso(item["due_at"]).astimezone(tz)
            when = (f"{_span(item['overdue_seconds'])} overdue" if item["overdue_seconds"] >= 0
                    else f"due in {_span(-item['overdue_seconds'])}, {due_local:%a} {due_local.day} {due_local:%b %H:%M}")
            lines.extend(_item(item, when))
        lines.append("")
    if stale:
        # Many stale ones (a first sync of years of mail) would bury what is due this week.
        lines.append(f"{stale} older obligation{'s' if stale != 1 else ''}, overdue by more than "
                     f"{_days(stale_after_days)}: `syncagent reminders --stale`")
        lines.append("")
    lines.append("Act on one: syncagent reminders done|dismiss|snooze ID")
    return "\n".join(lines)


def _stale_table(items: list[dict], stale_after_days: float) -> str:
    if not items:
        return f"No stale reminders: none is overdue by more than {_days(stale_after_days)}."
    lines = [f"Overdue by more than {_days(stale_after_days)} ({len(items)})"]
    for item in items:
        lines.extend(_item(item, f"{_span(item['overdue_seconds'])} overdue"))
    lines += ["", "Act on them all: syncagent reminders done|dismiss|snooze --stale"]
    return "\n".join(lines)


def _item(item: dict, when: str) -> list[str]:
    from syncagent.safe_text import for_terminal

    who = for_terminal(item["contact_name"] + (f" <{item['contact_email']}>" if item["contact_email"] else ""))
    # No id: a replayed instant's obligation that no sync stored (nothing to act on).
    ident = f"#{item['id']}" if item["id"] is not None else "-"
    return [f"  {ident:<5} {_LABEL[item['kind']]:<10} {who}", f"        {when} · {for_terminal(item['reason'])}"]


def _span(seconds: int) -> str:
    if seconds < 3600:
        n, unit = max(seconds // 60, 0), "minute"
    elif seconds < 2 * 86400:
        n, unit = seconds // 3600, "hour"
    else:
        n, unit = seconds // 86400, "day"
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _selection(func):
    """IDs and the selectors every action takes."""
    for option in reversed([
        click.argument("ids", metavar="[ID]...", nargs=-1, type=int),
        click.option("--kind", type=click.Choice(_KINDS), help="Every open reminder of this kind."),
        click.option("--stale", is_flag=True, help="Every stale reminder (overdue by more than stale_after_days)."),
        click.option("--before", "before_text", metavar="DATE",
                     help="Every open reminder due before DATE (ISO date or date-time, your time zone)."),
    ]):
        func = option(func)
    return func


def _apply(ctx, action: str, ids, kind, stale, before_text, until=None) -> tuple[int, list[int]]:
    """Apply ``action`` to the ids given, or to the open reminders the selectors pick (all of them at once)."""
    from syncagent.pipeline import reminders as rem

    selectors = kind is not None or stale or before_text is not None
    if ids and selectors:
        raise click.UsageError("Give reminder ids or --kind/--stale/--before, not both.")
    if not ids and not selectors:
        raise click.UsageError("Give one or more reminder ids, or pick them with --kind, --stale or --before.")
    db = ctx.db()
    if not ids:
        before = rem.parse_until(before_text, ctx.config.tz, "--before") if before_text else None
        from syncagent.timeutil import parse_iso

        # What `syncagent reminders` lists right now.
        _derive_once(ctx, db)
        ids = [i["id"] for i in rem.stored(db, ctx.config)
               if (kind is None or i["kind"] == kind) and (not stale or i["stale"])
               and (before is None or parse_iso(i["due_at"]) < before)]
        if not ids:
            return 0, []
    return rem.mark_many(db, ids, action, until=until), list(ids)


def _count(n: int) -> str:
    return f"{n} reminder{'s' if n != 1 else ''}"


@reminders.command()
@_selection
@pass_ctx
def done(ctx, ids, kind, stale, before_text):
    """Mark reminders done (you did it some other way); they stay done across syncs.

    \b
    Examples:
      syncagent reminders done 12
      syncagent reminders done 12 14 15
      syncagent reminders done --kind check_in --before 2026-11-01
    """
    n, picked = _apply(ctx, "done", ids, kind, stale, before_text)
    ctx.echo(f"Marked reminder {picked[0]} done." if ids and n == 1 else
             f"Marked {_count(n)} done." if n else "No open reminder matches; nothing changed.")


@reminders.command()
@_selection
@pass_ctx
def dismiss(ctx, ids, kind, stale, before_text):
    """Dismiss reminders: not needed, they will not come back (a new reply raises a new one).

    \b
    Examples:
      syncagent reminders dismiss 12
      syncagent reminders dismiss --stale     # everything overdue by more than stale_after_days
    """
    n, picked = _apply(ctx, "dismiss", ids, kind, stale, before_text)
    ctx.echo(f"Dismissed reminder {picked[0]}." if ids and n == 1 else
             f"Dismissed {_count(n)}." if n else "No open reminder matches; nothing changed.")


@reminders.command()
@_selection
@click.option("--until", "until_text", metavar="DATE",
              help="ISO date or date-time in your time zone (default: 3 days from now).")
@pass_ctx
def snooze(ctx, ids, kind, stale, before_text, until_text):
    """Hide reminders until DATE (default: 3 days); they come back after that.

    \b
    Examples:
      syncagent reminders snooze 12
      syncagent reminders snooze 12 --until 2026-12-01
      syncagent reminders snooze 12 14 --until 2026-12-01T09:00
      syncagent reminders snooze --kind follow_up --until 2026-12-01
    """
    from datetime import timedelta

    from syncagent.pipeline import reminders as rem
    from syncagent.timeutil import utcnow

    tz = ctx.config.tz
    until = rem.parse_until(until_text, tz) if until_text else utcnow() + timedelta(days=3)
    n, picked = _apply(ctx, "snooze", ids, kind, stale, before_text, until)
    local = until.astimezone(tz)
    when = f"until {local:%a} {local.day} {local:%b %Y %H:%M} ({ctx.config.timezone})"
    ctx.echo(f"Snoozed reminder {picked[0]} {when}." if ids and n == 1 else
             f"Snoozed {_count(n)} {when}." if n else "No open reminder matches; nothing changed.")
