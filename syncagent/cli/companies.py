"""`syncagent companies`: target companies, who is tracked and reached there, who replied, what is owed."""

from __future__ import annotations

import click

from syncagent.cli import echo, pass_ctx
from syncagent.cli.options import now_option


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of companies instead of a table.")
@now_option()
@pass_ctx
def companies(ctx, as_json, now):
    """Target companies: people tracked, reached, replied, reply rate, and what is owed there.

    A company is the contacts' `company`, trimmed and compared without regard
    to case. When nobody at a company answered within
    `[reminders] next_contact_after_business_days` of your latest new ask
    there, `syncagent reminders` suggests the next person to try (3B7).
    Figures are as of the last sync (the `companies` view); with --now they
    are computed for that instant (nothing is written).

    \b
    Examples:
      syncagent companies
      syncagent companies --json --now 2026-12-01T00:00:00Z
    """
    from syncagent.pipeline import networking
    from syncagent.safe_text import for_json, for_terminal

    db = ctx.db(reading=True)
    rows = networking.company_rows(db, ctx.config, now)
    if as_json:
        click.echo(for_json(rows))
        return
    if not rows:
        echo("No companies yet: give your contacts a company (`contacts add --company`, or a company column "
             "in `contacts import`).")
        return
    headers = ["company", "tracked", "reached", "replied", "rate", "owed"]
    table = [[for_terminal(r["company"]), str(r["tracked"]), str(r["reached"]), str(r["replied"]),
              "-" if r["reply_rate"] is None else f"{r['reply_rate']:.0%}",
              f"{r['owed']} ({r['owed_kinds']})" if r["owed"] else "-"] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    for line in [headers, *table]:
        echo("  ".join(c.ljust(w) if i == 0 or i == len(headers) - 1 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(line, widths))).rstrip())
