"""`syncagent sync`: one pass over every account."""

from __future__ import annotations

import sys

import click

from syncagent.cli import pass_ctx


@click.command()
@click.option("--account", help="Sync only this account (its `name` in the config).")
@click.option("--full", is_flag=True, help="Ignore saved positions, re-read everything (duplicates nothing) and re-derive every table.")
@pass_ctx
def sync(ctx, account, full):
    """Pull new mail from every account into the ledger, then update reminders.

    \b
    Examples:
      syncagent sync
      syncagent sync --account personal --full
    """
    from syncagent.pipeline.sync import sync_all
    from syncagent.sources import imap
    from syncagent.store import lock

    imap.allow_worker_process()

    config = ctx.config
    with lock.held(config.database):
        db = ctx.db()
        with _Progress(enabled=sys.stdout.isatty() and not ctx.quiet) as progress:
            results = sync_all(db, config, account=account, full=full, progress=progress, log_failures=False)
    for r in results:
        if r.ok or len(results) > 1:  # a lone failure is said once, as the error sentence
            ctx.echo(r.line())
        for note in r.notes:
            ctx.echo(f"Warning: {note}", err=True)
    if any(r.ok for r in results):
        from syncagent.contacts.suggest import untracked_hint

        hint = untracked_hint(db, [a for acc in config.accounts for a in acc.addresses])
        if hint:
            ctx.echo(hint)
    failed = [r for r in results if not r.ok]
    if failed:
        from syncagent.errors import SyncagentError

        if len(failed) == len(results) == 1:
            raise SyncagentError(failed[0].error)
        raise SyncagentError(f"{len(failed)} of {len(results)} accounts failed to sync; see the lines above.")


class _Progress:
    """A click progress bar per folder on a terminal; nothing otherwise (logs say enough)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.key = None

    def __enter__(self):
        return self if self.enabled else None

    def __exit__(self, *exc):
        self._close()

    def _close(self):
        if self.bar is not None:
            self.bar.render_finish()
            self.bar = None

    def __call__(self, account, folder, done, total):
        from syncagent.safe_text import for_terminal

        key = (account, folder)
        if key != self.key:
            self._close()
            self.key = key
            if total:
                self.bar = click.progressbar(length=total, label=for_terminal(f"{account} {folder}"), file=sys.stdout)
                self.bar.render_progress()
        if self.bar is not None:
            self.bar.pos = min(done, self.bar.length)
            self.bar.render_progress()
