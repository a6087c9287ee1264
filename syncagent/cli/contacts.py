"""`syncagent contacts`: import, add and list the people the ledger tracks."""

from __future__ import annotations

import click

from syncagent.cli import echo, pass_ctx


@click.group()
def contacts():
    """The people you track: only mail with them counts in the ledger.

    \b
    Example:
      syncagent contacts import ~/Downloads/Connections.csv
      syncagent contacts add "Jane Doe" jane@example.com --company Acme
      syncagent contacts list
    """


def _after_change(ctx, db) -> None:
    """Contacts decide which mail counts, so the derived stages are recomputed at once."""
    from syncagent.pipeline import stages as pipeline

    pipeline.after_sync(db, ctx.config)


@contacts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@pass_ctx
def import_(ctx, file):
    """Import contacts from a CSV, a LinkedIn Connections.csv or a vCard (.vcf) file.

    A CSV needs a header row with `name` and `email` (or `emails`; several
    addresses in one cell separated by ';'), and may have `company`, `title`,
    `segment`, `tags`, `notes` and `cadence_days` (days between check-ins for
    this contact). Importing again updates the contacts it finds by any of
    their addresses and never makes duplicates. Rows that cannot be used are
    listed with the reason.

    \b
    Example:
      syncagent contacts import contacts.csv
      syncagent contacts import google-contacts.vcf
    """
    from syncagent.contacts.importing import import_file
    from syncagent.safe_text import for_terminal

    db = ctx.db()
    report = import_file(db, file)
    if report.added or report.updated:
        _after_change(ctx, db)
    echo(report.summary())
    for skipped in report.skipped:
        echo(f"  skipped {for_terminal(skipped)}")


@contacts.command("add")
@click.argument("name")
@click.argument("emails", nargs=-1, required=True, metavar="EMAIL...")
@click.option("--company", help="Where they work.")
@click.option("--title", help="Their job title.")
@click.option("--segment", help="A group for statistics, e.g. alumni, recruiters.")
@click.option("--tags", help="Comma-separated tags.")
@click.option("--notes", help="Free text.")
@click.option("--cadence-days", type=click.FloatRange(min=0, min_open=True),
              help="Check in with this contact every N days (overrides [reminders] check_in_after_days).")
@pass_ctx
def add(ctx, name, emails, company, title, segment, tags, notes, cadence_days):
    """Add a contact, or update the one that already has one of these addresses.

    \b
    Example:
      syncagent contacts add "Jane Doe" jane@example.com jane@home.example --segment alumni
      syncagent contacts add "Jane Doe" jane@example.com --cadence-days 30
    """
    from syncagent.contacts import book as store

    item = store.ContactInput(
        name=name, addresses=list(emails), company=company, title=title, segment=segment,
        tags=tags, notes=notes, cadence_days=cadence_days,
    )
    db = ctx.db()
    outcome, contact_id = store.add(db, item)
    if outcome != "unchanged":
        _after_change(ctx, db)
    row = store.get(db, contact_id)
    shown = f"{row['name']} <{row['email']}>"
    echo({"added": f"Added contact {contact_id}: {shown}",
                "updated": f"Updated contact {contact_id}: {shown}",
                "unchanged": f"Contact {contact_id} unchanged: {shown}"}[outcome])


@contacts.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of contacts with all their fields.")
@pass_ctx
def list_(ctx, as_json):
    """List contacts: id, name, first address, company, segment and ledger state.

    \b
    Example:
      syncagent contacts list
      syncagent contacts list --json | jq '.[] | select(.segment == "alumni")'
    """
    from syncagent.contacts import book as store
    from syncagent.safe_text import for_json, for_terminal

    rows = store.list_contacts(ctx.db(reading=True))
    if as_json:
        click.echo(for_json(rows))
        return
    if not rows:
        echo("No contacts yet; add some with `syncagent contacts import FILE` or `syncagent contacts add`.")
        return
    headers = ["id", "name", "email", "company", "segment"]
    if "state" in rows[0]:
        headers.append("state")
    table = [[for_terminal(r.get(h)) for h in headers] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    for line in [headers, *table]:
        echo("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
