"""The `syncagent` command: a thin click group whose commands load on demand.

Each command lives in ``syncagent/cli/<name>.py`` and calls one function of
the package; importing them lazily keeps ``syncagent --version`` fast.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from syncagent import __version__

# name -> "module:attribute". Kept as data so `--help` and `--version` import nothing else.
COMMANDS = {
    "sync": "syncagent.cli.sync:sync",
    "run": "syncagent.cli.run:run",
    "contacts": "syncagent.cli.contacts:contacts",
    "reminders": "syncagent.cli.reminders:reminders",
    "stats": "syncagent.cli.stats:stats",
    "companies": "syncagent.cli.companies:companies",
    "digest": "syncagent.cli.digest:digest",
    "serve": "syncagent.cli.serve:serve",
    "auth": "syncagent.cli.auth:auth",
    "demo": "syncagent.cli.demo:demo",
    "init": "syncagent.cli.init:init",
    "doctor": "syncagent.cli.doctor:doctor",
    "brief": "syncagent.cli.brief:brief",
    "mcp": "syncagent.cli.mcp:mcp",
    "draft-check": "syncagent.cli.draft_check:draft_check",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                return None  # a command not built yet
            raise


class Context:
    """What every command needs: where the config is, and how loud to be."""

    def __init__(self, config_path, verbose: int, quiet: bool):
        self.config_path = config_path
        self.verbose = verbose
        self.quiet = quiet
        self._config = None

    def echo(self, message: object = "", *, err: bool = False, bold: bool = False) -> None:
        """What a command says on success, through ``echo``: silenced by -q (errors and asked-for JSON never are)."""
        if not self.quiet:
            echo(message, err=err, bold=bold)

    @property
    def config(self):
        if self._config is None:
            from syncagent import config

            self._config = config.load(self.config_path)
        return self._config

    def config_exists(self) -> bool:
        """Is there a config file to read (commands that also work without one ask first)?"""
        from pathlib import Path

        from syncagent import config

        return (Path(self.config_path).expanduser() if self.config_path else config.default_path()).is_file()

    def db(self, *, reading: bool = False):
        """The database; ``reading=True`` for commands that only show it (missing: refused; read-only: still shown)."""
        from syncagent.store.db import open_db, open_for_reading

        if reading:
            return open_for_reading(self.config.database, config_path=self.config.path)
        return open_db(self.config.database)


pass_ctx = click.make_pass_decorator(Context)


def echo(text: object = "", *, err: bool = False, bold: bool = False) -> None:
    """Print a line of output. Every command prints through this (JSON through ``safe_text.for_json``):
    names, subjects, folder names and server replies inside it are strangers' text, so nothing in
    it reaches the terminal as a control character or escape sequence (``safe_text.for_terminal``)."""
    from syncagent.safe_text import for_terminal

    line = for_terminal(text, multiline=True)
    click.echo(click.style(line, bold=True) if bold else line, err=err)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncagent")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="SYNCAGENT_CONFIG",
              help="Config file (default ~/.config/syncagent/config.toml).")
@click.option("-v", "--verbose", count=True, help="Show the log (-v: what happens, with tracebacks of errors; -vv: debug).")
@click.option("-q", "--quiet", is_flag=True,
              help="Print only errors, and the data asked for (--json, digest's file paths); exit codes still tell.")
@click.pass_context
def cli(ctx, config_path, verbose, quiet):
    """Keep a networking ledger from your mailbox: who you wrote to, who replied
    and how fast, and the thank-yous, follow-ups and check-ins you owe.

    \b
    Example:
      syncagent demo            # try it on a bundled sample mailbox
      syncagent sync            # pull new mail into the ledger
      syncagent reminders --due # what is owed now
    """
    from syncagent.logs import setup

    setup(verbose, quiet)
    ctx.obj = Context(config_path, verbose, quiet)


def main(argv=None) -> None:
    """Entry point: one sentence on stderr and exit 1 for a SyncagentError, never a traceback."""
    from syncagent.errors import SyncagentError

    try:
        cli.main(args=argv, prog_name="syncagent", standalone_mode=False)
    except click.exceptions.Abort:
        echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SyncagentError as exc:
        logging.getLogger("syncagent").info("error detail", exc_info=True)
        echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # the last line of defence: still one sentence
        if logging.getLogger().isEnabledFor(logging.INFO):
            raise
        import sqlite3

        if isinstance(exc, sqlite3.Error):
            from syncagent.store.db import write_error

            echo(f"Error: {write_error(exc, 'nothing more was saved')}", err=True)
            sys.exit(1)
        echo(
            f"Error: unexpected {exc.__class__.__name__}: {exc}; run again with -v for the details and report it.",
            err=True,
        )
        sys.exit(1)
    else:
        sys.exit(0)
