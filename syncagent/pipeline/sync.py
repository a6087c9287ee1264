"""One sync pass: each account's source into the store, then the derived stages."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from syncagent.config import Account, Config
from syncagent.errors import SyncagentError
from syncagent.store import db as store

log = logging.getLogger(__name__)


@dataclass
class SyncResult:
    account: str
    new_messages: int
    seconds: float
    error: str | None = None
    # Sentences about a pass that otherwise went fine (a configured folder missing): warnings.
    notes: tuple[str, ...] = ()
    interrupted: bool = False  # stopped on request before the source was read to the end

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        if self.error:
            return f"{self.account}: failed after {self.seconds:.1f} s: {self.error}"
        noun = "message" if self.new_messages == 1 else "messages"
        line = f"{self.account}: {self.new_messages:,} new {noun} in {self.seconds:.1f} s"
        if self.notes:
            line += f" ({len(self.notes)} warning{'s' if len(self.notes) > 1 else ''})"
        return line


class DbState:
    """The read-only view of stored cursors that a source receives."""

    def __init__(self, db, account: str):
        self.db, self.account = db, account

    def folder_state(self, folder):
        return store.folder_state(self.db, self.account, folder)

    def known_locations(self, folder):
        return store.known_locations(self.db, self.account, folder)

    def known_count(self, folder):
        return store.known_count(self.db, self.account, folder)

    def gmail_state(self):
        return store.gmail_state(self.db, self.account)


# progress(account, folder, done, total) is called after each committed batch.
Progress = Callable[[str, str | None, int, int | None], None]


def sync_account(db, account: Account, *, full: bool = False, progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None, log_failure: bool = True,
                 resync_every: float = 600.0) -> SyncResult:
    """Sync one account; the outcome is recorded in ``sync_runs`` whatever happens."""
    from syncagent.sources import open_source

    started = time.monotonic()
    try:
        run_id = store.start_run(db, account.name)
    except sqlite3.Error as exc:  # locked by another program, or the disk is full
        failure = str(store.write_error(exc, "nothing was synced"))
        log.log(logging.ERROR if log_failure else logging.INFO, "%s: %s", account.name, failure)
        return SyncResult(account.name, 0, time.monotonic() - started, failure)
    new = 0
    status, error = "ok", None
    notes: tuple[str, ...] = ()
    try:
        source = open_source(account, resync_every=resync_every)
        try:
            done_per_folder: dict[str | None, int] = {}
            for batch in source.batches(DbState(db, account.name), full=full):
                new += store.save_batch(db, account.name, account.addresses, batch)
                done_per_folder[batch.folder] = done_per_folder.get(batch.folder, 0) + len(batch.items)
                if progress:
                    progress(account.name, batch.folder, done_per_folder[batch.folder], batch.total)
                if should_stop and should_stop():
                    status, error = "interrupted", "stopped before the end; the next sync continues from here"
                    break
        finally:
            notes = tuple(getattr(source, "notes", ()))
            source.close()
    except SyncagentError as exc:
        status, error = "failed", str(exc)
    except KeyboardInterrupt:
        store.finish_run(db, run_id, "interrupted", new, "interrupted by the user")
        raise
    except Exception as exc:
        log.debug("unexpected error syncing %s", account.name, exc_info=True)
        # The exception's text may quote what a server or a file held: the sentence names only its kind.
        status, error = "failed", (f"unexpected {exc.__class__.__name__}; run `syncagent -vv sync` for the "
                                   "details and report it")
    if status == "failed":
        notes = ()  # the error says what matters
    try:
        store.finish_run(db, run_id, status, new, error, notes)
    except sqlite3.Error as exc:
        status, error = "failed", str(store.write_error(exc, "the messages committed so far are kept"))
    result = SyncResult(account.name, new, time.monotonic() - started, error if status == "failed" else None,
                        notes, interrupted=status == "interrupted")
    for note in notes:  # once per pass; the CLI prints them itself
        log.log(logging.WARNING if log_failure else logging.INFO, "%s: %s", account.name, note)
    if status == "failed":
        # The CLI reports failures itself as one sentence; the daemon's log is its report.
        log.log(logging.ERROR if log_failure else logging.INFO, "%s", result.line())
    else:
        log.info("%s", result.line())
    return result


# Below this many messages a mailbox with nothing sent is plausible (a new address, an inbox-only test).
OWN_MAIL_MINIMUM = 20


def own_mail_warning(db, account: Account) -> str | None:
    """The sentence when a mailbox of some size has no message from the account's own addresses, else None.

    Then every message counted as incoming: no follow-up is ever owed and the
    reply rate is meaningless, almost always because ``addresses`` misses the
    address (or alias) the mail is sent from. An IMAP or Gmail account reads
    the sent mail too, so it is judged alone; a local file may be one folder
    (an INBOX export beside a Sent one), so it is judged only when no account
    of the database has outgoing mail.
    """
    outgoing, total = store.direction_counts(db, account.name)
    if outgoing or total < OWN_MAIL_MINIMUM:
        return None
    if account.kind in ("mbox", "maildir") and store.direction_counts(db, None)[0]:
        return None
    mine = ", ".join(account.addresses) or "none are set"
    return (f"{account.name}: 0 of {total:,} messages are from your addresses ({mine}), so all of them count as "
            f"incoming and no follow-up is ever owed; add the address you send from to `addresses` of account "
            f"{account.name!r} (your Sent folder shows it).")


def sync_all(db, config: Config, *, account: str | None = None, full: bool = False,
             progress: Progress | None = None, should_stop=None, now=None,
             log_failures: bool = True) -> list[SyncResult]:
    accounts = [config.account(account)] if account else list(config.accounts)
    if not accounts:
        from syncagent.errors import ConfigError

        raise ConfigError(f"{config.path} has no [[accounts]]; add one (see config.example.toml) or run `syncagent init`.")
    results = []
    for a in accounts:
        if should_stop and should_stop():
            break  # the accounts not started yet are read by the next pass
        results.append(sync_account(db, a, full=full, progress=progress, should_stop=should_stop,
                                    log_failure=log_failures, resync_every=config.sync.interval_minutes * 60))
    for acct, result in zip(accounts, results):
        warning = own_mail_warning(db, acct) if result.ok else None
        if warning:  # judged once every account is in: a local Sent file may come after its INBOX
            result.notes += (warning,)
            log.log(logging.WARNING if log_failures else logging.INFO, "%s", warning)  # the daemon's report
    from syncagent.pipeline import stages as pipeline

    # A pass stopped on request holds part of the mail (INBOX without Sent, one account of
    # two): reminders derived from it would be made and then settled by the rest, rows an
    # uninterrupted pass never has. The next pass derives from everything instead.
    if (should_stop and should_stop()) or any(r.interrupted for r in results):
        log.info("stopped before every account was read; the ledger and reminders are updated by the next pass")
        return results
    # Reminders fall due with the clock, so the ledger stages run even when no mail was new;
    # when every account failed nothing changed, and the cause (a locked or full database,
    # an unreachable server) would only fail them too.
    if any(r.ok for r in results):
        pipeline.after_sync(db, config, now=now)
    return results
