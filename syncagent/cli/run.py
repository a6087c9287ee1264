"""`syncagent run`: the always-on service (sync, reminders, notifications, weekly digest)."""

from __future__ import annotations

import click

from syncagent.cli import pass_ctx


@click.command()
@pass_ctx
def run(ctx):
    """Run as a service: sync now and every [sync] interval_minutes, keep
    reminders current, send notifications, write the weekly digest.

    IMAP accounts also watch INBOX with IDLE (read-only), so new mail is
    synced within seconds. Failed syncs are retried with backoff and never
    stop the service.
    SIGTERM or Ctrl-C stops it after the current transaction (exit 0). Only
    one syncagent may write at a time: a second `run` or `sync` is refused.
    Under systemd (Type=notify) it reports READY, STATUS and watchdog pings;
    see "Running as a service" in the README.

    \b
    Examples:
      syncagent run
      syncagent -v run                       # more detail in the log
      systemctl --user enable --now syncagent
    """
    import logging

    from syncagent.daemon.service import run as run_daemon
    from syncagent.errors import ConfigError
    from syncagent.sources import imap

    imap.allow_worker_process()

    if not ctx.verbose and not ctx.quiet:
        logging.getLogger().setLevel(logging.INFO)  # a service's log is its interface
    config = ctx.config
    if not config.accounts:
        raise ConfigError(f"{config.path} has no [[accounts]]; add one (see config.example.toml) before `syncagent run`.")
    run_daemon(config)  # returns 0 after SIGTERM/SIGINT
