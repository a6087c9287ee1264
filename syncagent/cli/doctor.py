"""`syncagent doctor`: check the config, the accounts, the database, the service and Datasette."""

from __future__ import annotations

import click

from syncagent.cli import echo, pass_ctx


@click.command()
@click.option("--offline", is_flag=True, help="Do not contact IMAP servers (check files only).")
@pass_ctx
def doctor(ctx, offline):
    """Check the set-up and say what to fix, one line per check.

    It loads the config, logs in to each IMAP account (read-only: capabilities
    and folder list), looks at Gmail token files, the database (schema, size,
    last sync of each account), the systemd user unit and Datasette. Lines
    start with "ok", "!!" (a problem, with its fix) or "--" (a note). The exit
    code is 1 when anything needs fixing.

    \b
    Example:
      syncagent doctor
      syncagent --config ~/other.toml doctor --offline
    """
    from syncagent.errors import SyncagentError
    from syncagent.setup import doctor as doctor_mod

    checks = doctor_mod.run(ctx.config_path, network=not offline)
    for check in checks:
        if check.status == doctor_mod.PROBLEM or not ctx.quiet:  # -q: only what needs fixing
            echo(check.line())
    problems = [c for c in checks if c.status == doctor_mod.PROBLEM]
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        raise SyncagentError(f"{len(problems)} {noun} found; fix the lines marked !! above and run `syncagent doctor` again.")
    ctx.echo("Everything looks fine.")
