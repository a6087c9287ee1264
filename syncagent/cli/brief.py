"""`syncagent brief`: one screen about a relationship, to read before a meeting."""

from __future__ import annotations

import click

from syncagent.cli import pass_ctx
from syncagent.cli.options import now_option


@click.command()
@click.argument("person", metavar="NAME|EMAIL")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@now_option()
@pass_ctx
def brief(ctx, person, as_json, now):
    """One screen about a relationship: who they are, the story so far, what is owed.

    PERSON is one of their addresses or their name (or a unique part of it).
    Shows company, title, segment, tags, notes and how responsive they are;
    the story in order (first outreach, follow-ups, each reply with how long
    it took, meetings, introductions, thank-yous); what you owe now; and the
    last three subjects each way. Nothing is written.

    \b
    Examples:
      syncagent brief "Priya Shah"
      syncagent brief priya@acme.example --json
    """
    from syncagent.reports import brief as brief_mod
    from syncagent.safe_text import for_json, for_terminal
    from syncagent.timeutil import utcnow

    # At the clock, what is owed is what `syncagent reminders` lists; --now evaluates that instant.
    data = brief_mod.build(ctx.db(reading=True), ctx.config, person, now or utcnow(), stored=now is None)
    click.echo(for_json(data) if as_json else brief_mod.render(data, ctx.config.tz, clean=for_terminal))
