"""`syncagent reminders`: what is owed (thank-yous, follow-ups, check-ins), and the user's choices."""

from __future__ import annotations

import click

from syncagent.cli import pass_ctx
from syncagent.cli.options import now_option

_LABEL = {"thank_you": "thank-you", "follow_up": "follow-up", "check_in": "check-in",
          "close_loop": "close loop", "next_contact": "next try"}



@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--due", is_flag=True, help="Only reminders due by now (overdue ones).")
@now_option()
@click.pass_context
def reminders(click_ctx, as_json, due, now):
    """Open reminders: thank-yous owed, follow-ups due, check-ins to make.

    Overdue reminders come first (thank-yous, then follow-ups, then check-ins),
    each with how long it has been due and why; upcoming ones follow. Mark one
    done, dismiss it or snooze it by its id: the choice sticks across syncs,
    and a new reply or message raises a new reminder.

    \b
    Examples:
      syncagent reminders                    # the table
      syncagent reminders --due --json       # only what is due now, as JSON
      syncagent reminders --now 2026-12-01T09:00:00Z
      syncagent reminders done 12            # I did it (outside email)
      syncagent reminders dismiss 12         # not needed
      syncagent reminders snooze 12 --until 2026-12-01
    """
    if click_ctx.invoked_subcommand is not None:
        return
    from syncagent.pipeline import reminders as rem
    from syncagent.timeutil import utcnow

    ctx = click_ctx.obj  # the shared syncagent.cli.Context
    db = ctx.db(reading=True)
    if now is None:
        now = utcnow()
        items = rem.current(db, ctx.config, due_only=due, now=now)
    else:
        # A replay: evaluated in memory, nothing written (an obligation no sync stored has id null).
        items = rem.listing(db, ctx.config, now, due_only=due)
    if as_json:
        from syncagent.safe_text import for_json

        click.echo(for_json(items))
        return
    ctx.echo(_table(items, ctx.config.tz, now))
    if not items:
        from syncagent.contacts.suggest import untracked_hint

        hint = untracked_hint(db, [a for acc in ctx.config.accounts for a in acc.addresses])
        if hint:
            ctx.echo(hint)


def _table(items: list[dict], tz, now) -> str:
    if not items:
        return "Nothing owed: no open reminders."
    from syncagent.safe_text import for_terminal
    from syncagent.timeutil import parse_iso

    overdue = [i for i in items if i["overdue_seconds"] >= 0]
    upcoming = [i for i in items if i["overdue_seconds"] < 0]
    lines = []
    for title, group in (("Overdue", overdue), ("Upcoming", upcoming)):
        if not group:
            continue
        lines.append(f"{title} ({len(group)})")
        for item in group:
            who = for_terminal(item["contact_name"] + (f" <{item['contact_email']}>" if item["contact_email"] else ""))
            due_local = parse_iso(item["due_at"]).astimezone(tz)
            when = (f"{_span(item['overdue_seconds'])} overdue" if item["overdue_seconds"] >= 0
                    else f"due in {_span(-item['overdue_seconds'])}, {due_local:%a} {due_local.day} {due_local:%b %H:%M}")
            # No id: a replayed instant's obligation that no sync stored (nothing to act on).
            ident = f"#{item['id']}" if item["id"] is not None else "-"
            lines.append(f"  {ident:<5} {_LABEL[item['kind']]:<10} {who}")
            lines.append(f"        {when} · {for_terminal(item['reason'])}")
        lines.append("")
    lines.append("Act on one: syncagent reminders done|dismiss|snooze ID")
    return "\n".join(lines)


def _span(seconds: int) -> str:
    if seconds < 3600:
        n, unit = max(seconds // 60, 0), "minute"
    elif seconds < 2 * 86400:
        n, unit = seconds // 3600, "hour"
    else:
        n, unit = seconds // 86400, "day"
    return f"{n} {unit}" + ("" if n == 1 else "s")


@reminders.command()
@click.argument("reminder_id", metavar="ID", type=int)
@pass_ctx
def done(ctx, reminder_id):
    """Mark reminder ID done (you did it some other way); it stays done across syncs.

    \b
    Example:
      syncagent reminders done 12
    """
    from syncagent.pipeline import reminders as rem

    row = rem.mark(ctx.db(), reminder_id, "done")
    ctx.echo(f"Marked reminder {row['id']} done.")


@reminders.command()
@click.argument("reminder_id", metavar="ID", type=int)
@pass_ctx
def dismiss(ctx, reminder_id):
    """Dismiss reminder ID: it is not needed and will not come back (a new reply raises a new one).

    \b
    Example:
      syncagent reminders dismiss 12
    """
    from syncagent.pipeline import reminders as rem

    row = rem.mark(ctx.db(), reminder_id, "dismiss")
    ctx.echo(f"Dismissed reminder {row['id']}.")


@reminders.command()
@click.argument("reminder_id", metavar="ID", type=int)
@click.option("--until", "until_text", metavar="DATE",
              help="ISO date or date-time in your time zone (default: 3 days from now).")
@pass_ctx
def snooze(ctx, reminder_id, until_text):
    """Hide reminder ID until DATE (default: 3 days); it comes back after that.

    \b
    Examples:
      syncagent reminders snooze 12
      syncagent reminders snooze 12 --until 2026-12-01
      syncagent reminders snooze 12 --until 2026-12-01T09:00
    """
    from syncagent.pipeline import reminders as rem
    from syncagent.timeutil import parse_iso

    tz = ctx.config.tz
    until = rem.parse_until(until_text, tz) if until_text else None
    row = rem.mark(ctx.db(), reminder_id, "snooze", until=until)
    local = parse_iso(row["snoozed_until"]).astimezone(tz)
    ctx.echo(f"Snoozed reminder {row['id']} until {local:%a} {local.day} {local:%b %Y %H:%M} ({ctx.config.timezone}).")
