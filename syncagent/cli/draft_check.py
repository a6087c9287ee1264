"""`syncagent draft-check`: a draft against the advice and your own reply rates."""

from __future__ import annotations

import click

from syncagent.cli import pass_ctx


@click.command("draft-check")
@click.argument("source", metavar="FILE|-", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--to", "to", metavar="EMAIL", help="The contact it is for: checks it uses their name or company.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@pass_ctx
def draft_check(ctx, source, to, as_json):
    """Check a draft before sending: length, questions, subject, connection, personalization.

    FILE (or - for standard input) holds an optional `Subject:` line, then the
    text. Each line compares the draft with the usual advice for a first email
    and, once you have sent enough outreach, with what your own mail earned
    ("your asks with under 75 words were answered 48% of the time"). Reads
    nothing but the ledger's numbers; nothing is written.

    \b
    Examples:
      syncagent draft-check draft.txt
      pbpaste | syncagent draft-check - --to priya@acme.example
    """
    from syncagent.reports import draft_check as dc

    draft = _read(source)

    first_name = company = None
    asks: list = []
    known: list[str] = []
    if ctx.config_exists() and ctx.config.database.exists():  # no history yet: the advice alone
        from syncagent.pipeline import outreach as outreach_stage
        from syncagent.store import relationships as rel
        from syncagent.store.contacts import load_names

        db = ctx.db(reading=True)
        asks = outreach_stage.load_asks(db, ctx.config)
        known = [name for _, name in load_names(db)]
        if to:
            found = rel.find_contacts(db, to)
            if found:
                first_name = found[0]["name"].split()[0] if found[0]["name"] else None
                company = found[0]["company"]
    result = dc.check(draft, asks, first_name=first_name, company=company, known_names=known)
    from syncagent.safe_text import for_json, for_terminal

    click.echo(for_json(result) if as_json else for_terminal(dc.render(result), multiline=True))


def _read(source: str) -> str:
    import sys

    from syncagent.errors import InputError

    if source == "-":
        return sys.stdin.read()
    try:
        with open(source, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError as exc:
        raise InputError(f"Cannot read the draft {source}: {exc.strerror}; give a text file, or - for standard input.") from None
