"""`syncagent stats`: reply rate and first-response times, overall and per segment."""

from __future__ import annotations

import click

from syncagent.cli import echo, pass_ctx
from syncagent.cli.options import now_option


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of a table.")
@click.option("--by", type=click.Choice(["segment"]), help="Also break the figures down by contact segment.")
@now_option()
@pass_ctx
def stats(ctx, as_json, by, now):
    """Reply rate and response times of your outreach.

    Counts the contacts you wrote to (reached), those who replied to an ask,
    the reply rate, and the median and 90th-percentile time to their first
    reply in hours; all time and for contacts first reached in the last 90
    days. Figures come from the ledger as of the last sync; with --now they
    are computed afresh for that instant (nothing is written).

    \b
    Examples:
      syncagent stats
      syncagent stats --by segment
      syncagent stats --json --now 2026-12-01T00:00:00Z
    """
    from syncagent.pipeline import ledger as ledger_store
    from syncagent.pipeline import stats as st
    from syncagent.timeutil import utcnow

    db = ctx.db(reading=True)
    if now is not None:
        reached = st.from_ledgers(db, ledger_store.ledgers(db, now))
    else:
        now = utcnow()
        if _never_computed(db):
            ledger_store.recompute(db, now)
        reached = st.from_tables(db)
    report = st.summarize(reached, now, by)
    if as_json:
        from syncagent.safe_text import for_json

        click.echo(for_json(report))
    else:
        echo(st.render(report))


def _never_computed(db) -> bool:
    """Contacts but no ledger rows at all: the ledger stage has not run since they were added."""
    return db.execute(
        "SELECT EXISTS (SELECT 1 FROM contacts) AND NOT EXISTS (SELECT 1 FROM contact_ledger)"
    ).fetchone()[0] == 1
