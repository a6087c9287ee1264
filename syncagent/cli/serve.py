"""`syncagent serve`: explore the ledger in Datasette."""

from __future__ import annotations

import click

from syncagent.cli import pass_ctx


@click.command()
@click.option("--port", "-p", default=8001, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback also needs --i-know-this-is-public.")
@click.option("--i-know-this-is-public", "public", is_flag=True,
              help="Allow a --host other machines can reach (your contacts and mail headers become readable there).")
@click.option("--demo", is_flag=True, help="Serve the demo database built by `syncagent demo` instead of yours.")
@click.option("--no-sql", "no_sql", is_flag=True,
              help="Turn off arbitrary SQL queries (tables, facets, search and the bundled queries still work).")
@click.option("--print-metadata", is_flag=True,
              help="Print the bundled Datasette metadata (JSON) for your database and exit, for `datasette -m`.")
@pass_ctx
def serve(ctx, port, host, public, demo, no_sql, print_metadata):
    """Explore the database in Datasette on http://127.0.0.1:8001/, with table
    descriptions, facets, full-text search over subjects and ready-made queries
    (thank-yous owed, follow-ups due, reply rate by segment, ...).

    It is read-only and answers only requests addressed to the address it
    listens on (other web pages cannot reach it through DNS rebinding).
    Arbitrary SQL (read-only, SELECT only) is on for you; --no-sql turns it off.

    \b
    Example:
      syncagent serve
      syncagent serve --demo --port 8002
      syncagent serve --no-sql
      syncagent serve --print-metadata > metadata.json
      datasette ~/.local/share/syncagent/syncagent.db -m metadata.json
    """
    from syncagent.safe_text import for_json
    from syncagent.serve import datasette as serve_mod

    if print_metadata:
        db_path = serve_mod.demo_db_path() if demo else _database_or_default(ctx)
        click.echo(for_json(serve_mod.load_metadata(db_path)))
        return
    db_path = serve_mod.demo_db_path() if demo else ctx.config.database
    serve_mod.check_host(host, public)
    if not db_path.exists():
        from syncagent.errors import SyncagentError

        if demo:
            raise SyncagentError(f"There is no demo database at {db_path}; run `syncagent demo` first.")
        # Serving a mistyped path would create an empty database and show an empty ledger as if it were yours.
        raise SyncagentError(f"There is no database at {db_path}; run `syncagent sync` to create it, or fix "
                             f"`path` in [database] of {ctx.config.path} if it is mistyped.")
    ctx.echo(f"Serving {db_path} on http://{'[' + host + ']' if ':' in host else host}:{port}/ (Ctrl+C to stop)")
    serve_mod.serve(db_path, host=host, port=port, public=public, allow_sql=not no_sql)


def _database_or_default(ctx):
    """The configured database; without a usable config, the default path (only its name matters here)."""
    from pathlib import Path

    from syncagent.config import DEFAULT_DB
    from syncagent.errors import ConfigError

    try:
        return ctx.config.database
    except ConfigError:
        return Path(DEFAULT_DB).expanduser()
