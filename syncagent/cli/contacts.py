"""`syncagent contacts`: import, add and list the people the ledger tracks."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from syncagent.cli import pass_ctx
from syncagent.cli.options import now_option

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar


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
    with _ImportProgress(enabled=sys.stderr.isatty() and not ctx.quiet) as progress:
        report = import_file(db, file, progress=progress)
    if report.note:
        ctx.echo(f"Warning: {report.note}; check those contacts' names.", err=True)
    if report.added or report.updated:
        _after_change(ctx, db)
    ctx.echo(report.summary())
    for skipped in report.skipped:
        ctx.echo(f"  skipped {for_terminal(skipped)}")


class _ImportProgress:
    """A progress bar on stderr for imports big enough to take a while; nothing when not on a terminal."""

    MIN_RECORDS = 2000

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar: ProgressBar[int] | None = None

    def __enter__(self):
        return self if self.enabled else None

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.render_finish()

    def __call__(self, done: int, total: int) -> None:
        if total < self.MIN_RECORDS:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="Importing contacts", file=sys.stderr)
        self.bar.update(done - self.bar.pos)


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
    ctx.echo({"added": f"Added contact {contact_id}: {shown}",
                "updated": f"Updated contact {contact_id}: {shown}",
                "unchanged": f"Contact {contact_id} unchanged: {shown}"}[outcome])


@contacts.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of contacts with all their fields.")
@now_option()
@pass_ctx
def list_(ctx, as_json, now):
    """List contacts: id, name, first address, company, segment, ledger state and responsiveness.

    Responsiveness is booster (replied to your first message within 3 business
    days), obligate (replied later), curmudgeon (no reply after the follow-up
    delay) or empty (pending, or they wrote first). With --now both are
    computed for that instant (nothing is written).

    \b
    Example:
      syncagent contacts list
      syncagent contacts list --json | jq '.[] | select(.segment == "alumni")'
      syncagent contacts list --json --now 2026-12-01T00:00:00Z
    """
    from syncagent.contacts import book as store
    from syncagent.safe_text import for_json, for_terminal

    db = ctx.db(reading=True)
    rows = store.list_contacts(db)
    if now is not None:
        from syncagent.pipeline import networking

        states = networking.states_at(db, ctx.config, now)
        for row in rows:
            row["state"], row["responsiveness"] = states.get(row["id"], (None, None))
    if as_json:
        click.echo(for_json(rows))
        return
    if not rows:
        ctx.echo("No contacts yet; `syncagent contacts suggest` lists the people you exchanged mail with, or add "
                 "them with `syncagent contacts import FILE` or `syncagent contacts add`.")
        return
    headers = ["id", "name", "email", "company", "segment"]
    if "state" in rows[0]:
        headers += ["state", "responsiveness"]
    table = [[for_terminal(r.get(h)) for h in headers] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    for line in [headers, *table]:
        ctx.echo("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())


@contacts.command("suggest")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of the suggestions with all their fields.")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True,
              help="Show at most N suggestions (0: all).")
@click.option("--add", "add_numbers", is_flag=True, help="Add the suggestions whose numbers follow as contacts.")
@click.option("--add-all", is_flag=True, help="Add every suggestion with at least --min-exchanges exchanges.")
@click.option("--min-exchanges", type=click.IntRange(min=0), default=None,
              help="Only people with at least K two-way exchanges (default 1 with --add-all).")
@click.argument("numbers", nargs=-1, type=click.IntRange(min=1), metavar="[N]...")
@pass_ctx
def suggest(ctx, as_json, limit, add_numbers, add_all, min_exchanges, numbers):
    """Suggest people to track: those you exchanged personal mail with.

    The ledger counts only mail with your contacts. This lists the people in
    your stored mail who are not contacts yet, most two-way exchanges
    (min of messages sent and received) first, then the most recent. Mailing
    lists, automatic mail and messages to more than 10 people are left out. The
    company is guessed from the address's domain (not for free-mail providers
    such as gmail.com).

    \b
    Example:
      syncagent contacts suggest
      syncagent contacts suggest --add 1 3
      syncagent contacts suggest --add-all --min-exchanges 2
    """
    from syncagent.contacts import suggest as suggest_mod
    from syncagent.errors import InputError
    from syncagent.safe_text import for_json

    if numbers and not add_numbers:
        raise click.UsageError("Numbers are only taken after --add, e.g. `syncagent contacts suggest --add 1 3`.")
    if add_numbers and not numbers:
        raise click.UsageError("--add needs the numbers of the suggestions to add, e.g. --add 1 3.")
    if add_numbers and add_all:
        raise click.UsageError("Give either --add N... or --add-all, not both.")
    config = ctx.config
    own = [a for account in config.accounts for a in account.addresses]
    db = ctx.db()
    found = suggest_mod.suggestions(db, own)
    if add_numbers or add_all:
        if add_numbers:
            try:
                chosen = suggest_mod.pick(found, numbers)
            except ValueError as exc:
                span = f"1 to {len(found)}" if found else "there are none now"
                raise InputError(f"There is no suggestion {exc.args[0]} ({span}); run `syncagent contacts suggest` "
                                 "to see the numbers.") from None
        else:
            chosen = suggest_mod.with_exchanges(found, 1 if min_exchanges is None else min_exchanges)
        done = suggest_mod.accept(db, chosen)
        if done.added or done.merged:
            _after_change(ctx, db)
        if as_json:
            click.echo(for_json({"added": [s.as_dict() for s in done.added],
                                 "merged": [s.as_dict() for s in done.merged]}))
            return
        n = len(done.added)
        ctx.echo(f"Added {n} {'contact' if n == 1 else 'contacts'} from your mail.")
        for s in done.added:
            ctx.echo(f"  {suggest_mod.shown(s.name or s.address, 40)} <{s.address}>")
        for s in done.merged:
            ctx.echo(f"Added {s.address} to contact {s.same_name_as} ({suggest_mod.shown(s.name, 40)}), "
                     "who has the same name.")
        if done.added or done.merged:
            ctx.echo("Their mail now counts in the ledger: see `syncagent reminders` and `syncagent stats`.")
        return
    if min_exchanges is not None:
        found = suggest_mod.with_exchanges(found, min_exchanges)
    if as_json:
        click.echo(for_json([s.as_dict() for s in found]))
        return
    if not found:
        from syncagent.store.mail import has_messages

        stored = has_messages(db)
        ctx.echo("No one to suggest: every person you exchanged personal mail with is already a contact."
                 if stored else "No one to suggest yet: no mail is stored; run `syncagent sync` first.")
        return
    shown_rows = found if not limit else found[:limit]
    noun = "person" if len(found) == 1 else "people"
    ctx.echo(f"{len(found)} {noun} you exchanged personal mail with, not tracked yet (most two-way exchanges first):")
    headers = ["#", "name", "address", "company", "exchanges", "last message"]
    table = [[str(s.number), suggest_mod.shown(s.name, 28) + (f" (contact {s.same_name_as}?)" if s.same_name_as else ""),
              s.address, suggest_mod.shown(s.company, 20),
              f"{s.exchanges} ({s.sent} sent, {s.received} received)",
              f"{s.last_at[:10]}  {suggest_mod.shown(s.last_subject, 40)}".rstrip()] for s in shown_rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    for line in [headers, *table]:
        ctx.echo("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    if len(found) > len(shown_rows):
        ctx.echo(f"... and {len(found) - len(shown_rows)} more (`--limit 0` shows all).")
    top = found[0].exchanges
    example = " ".join(str(s.number) for s in found[:2])
    ctx.echo(f"Track them with `syncagent contacts suggest --add {example}`"
             + (f", or everyone with at least {min(top, 2)} exchanges with "
                f"`syncagent contacts suggest --add-all --min-exchanges {min(top, 2)}`." if top else "."))
