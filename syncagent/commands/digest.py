"""`syncagent digest`: write (and optionally mail) the weekly digest."""

from __future__ import annotations

import click

from syncagent.cli import pass_ctx


@click.command()
@click.option("--week", metavar="YYYY-Www", help="ISO week to summarise (default: the week containing --now, in your timezone).")
@click.option("--now", "now_text", metavar="ISO", help="Evaluate as if the clock read this instant (default: now).")
@click.option("--send", is_flag=True, help="Also deliver it: mail to digest.email_to through [smtp], and store it in digest.imap_folder when set.")
@pass_ctx
def digest(ctx, week, now_text, send):
    """Write the weekly digest as Markdown and HTML under digest.output_dir.

    It lists what you owe now (thank-yous, follow-ups, check-ins), what is coming
    up, the week in numbers against the previous four weeks, reply rates by
    segment, the fastest responders, contacts going quiet and a 12-week chart.
    Running it again rewrites the same two files.

    \b
    Example:
      syncagent digest
      syncagent digest --week 2026-W47 --send
    """
    from syncagent import digest as digest_mod
    from syncagent.errors import InputError
    from syncagent.timeutil import parse_iso

    now = None
    if now_text:
        try:
            now = parse_iso(now_text)
        except ValueError:
            raise InputError(f"--now {now_text!r} is not an ISO 8601 instant; write it like 2026-11-20T17:00:00Z.") from None
    config = ctx.config
    if week:
        digest_mod.parse_week(week)  # a bad week fails before the database is opened
    db = ctx.db()
    result = digest_mod.build(db, config, week=week, now=now, send=send)
    click.echo(str(result.markdown_path))
    click.echo(str(result.html_path))
    if result.sent_to:
        click.echo(f"Sent to {result.sent_to}.")
