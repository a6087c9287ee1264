"""`syncagent stats`: reply rate and first-response times, overall and per segment."""

from __future__ import annotations

import click

from syncagent.cli import pass_ctx
from syncagent.cli.options import now_option

# The dimensions of syncagent.ledger.what_works, kept here as data so `--help` imports nothing more.
WHAT_WORKS = ("words", "questions", "personalized", "mass", "connection", "weekday", "hour")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of a table.")
@click.option("--by", type=click.Choice(["segment", "responsiveness", *WHAT_WORKS]),
              help="Also break the figures down: by contact segment, by responsiveness class, or your asks by "
                   "what they were like (words, questions, personalized, mass, connection, weekday, hour).")
@now_option()
@pass_ctx
def stats(ctx, as_json, by, now):
    """Reply rate and response times of your outreach.

    Counts the contacts you wrote to (reached), those who replied to an ask,
    the reply rate, and the median and 90th-percentile time to their first
    reply in hours; all time and for contacts first reached in the last 90
    days. Figures are those stored by the last sync (the digest, the demo and
    Datasette show the same ones); with --now they are computed afresh for that
    instant by the same definitions, and nothing is written.

    \b
    Examples:
      syncagent stats
      syncagent stats --by segment
      syncagent stats --by responsiveness
      syncagent stats --by words           # reply rate of your asks by their length
      syncagent stats --json --now 2026-12-01T00:00:00Z
    """
    from syncagent.pipeline import stats as st

    db = ctx.db(reading=True)
    if now is None and not st.stored(db):
        _derive(ctx, db)
    report = st.read_report(db, ctx.config, by, now)
    if as_json:
        from syncagent.safe_text import for_json

        click.echo(for_json(report))
    else:
        from syncagent.pipeline import outreach

        ctx.echo(st.render(report) + (outreach.render_buckets(report) if by in WHAT_WORKS else ""))


def _derive(ctx, db) -> None:
    """The derived stage has not stored figures yet (no sync since the contacts were added): run it."""
    from syncagent.pipeline import stages

    stages.after_sync(db, ctx.config, force=True)
