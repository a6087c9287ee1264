"""`syncagent digest`: write (and optionally mail) the weekly digest."""

from __future__ import annotations

import click

from syncagent.cli import echo, pass_ctx
from syncagent.cli.options import now_option


@click.command()
@click.option("--week", metavar="YYYY-Www", help="ISO week to summarise (default: the week containing --now, in your timezone).")
@now_option()
@click.option("--send", is_flag=True, help="Also deliver it: mail to digest.email_to through [smtp], and store it in digest.imap_folder when set.")
@pass_ctx
def digest(ctx, week, now, send):
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
    from syncagent.digest import data as digest_mod
    config = ctx.config
    if week:
        digest_mod.parse_week(week)  # a bad week fails before the database is opened
    db = ctx.db(reading=True)
    # --now replays an instant: the files are written, the database is not.
    result = digest_mod.build(db, config, week=week, now=now, send=send, record=now is None)
    # The two paths are the command's result (scripts read them), so -q keeps them.
    echo(str(result.markdown_path))
    echo(str(result.html_path))
    if result.sent_to:
        ctx.echo(f"Sent to {result.sent_to}.")
