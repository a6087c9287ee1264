"""One sync pass: each account's source into the store, then the derived stages."""

from __future__ import annotations

import gc
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass

from syncagent.config import Account, Config
from syncagent.errors import SyncagentError
from syncagent.model import Batch
from syncagent.pipeline import heap
from syncagent.store import db as store

log = logging.getLogger(__name__)

GC_THRESHOLD = 50_000  # net new container objects between young-generation collections during a pass


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
    """The read-only view of stored cursors that a source receives.

    ``settle`` is called before each read, so a read never runs beside a batch still
    being saved (it sees every batch handed over before it).
    """

    def __init__(self, db, account: str, settle: Callable[[], None] = lambda: None):
        self.db, self.account, self.settle = db, account, settle

    def folder_state(self, folder):
        self.settle()
        return store.folder_state(self.db, self.account, folder)

    def known_locations(self, folder):
        self.settle()
        return store.known_locations(self.db, self.account, folder)

    def known_count(self, folder):
        self.settle()
        return store.known_count(self.db, self.account, folder)

    def gmail_state(self):
        self.settle()
        return store.gmail_state(self.db, self.account)


class _Saver:
    """Saves one batch at a time on a thread of its own while the source reads and parses the next.

    SQLite does its work without holding the interpreter lock, so on a second core the
    writing overlaps the parsing. Each batch is still one transaction with its cursor, and
    batches are committed strictly in order: a kill anywhere leaves a resumable database.
    Nothing else uses the connection while a batch is being saved (``wait`` comes first).
    A connection that may not be used from another thread is written inline instead.
    """

    def __init__(self, db, account: Account):
        self.db, self.account = db, account
        self.pending: tuple[Batch, Future[int]] | None = None
        self.pool: ThreadPoolExecutor | None = ThreadPoolExecutor(max_workers=1, thread_name_prefix="save")
        try:
            self.pool.submit(db.conn.execute, "SELECT 1").result()
        except sqlite3.ProgrammingError:  # made with check_same_thread: this thread only
            self.pool.shutdown()
            self.pool = None

    def _save(self, batch: Batch) -> int:
        return store.save_batch(self.db, self.account.name, self.account.addresses, batch)

    def submit(self, batch: Batch) -> None:
        """Start saving a batch (after ``finish`` of the one before)."""
        assert self.pending is None, "one batch at a time, in order"
        if self.pool is None:
            self.pending = (batch, _done(self._save(batch)))
        else:
            self.pending = (batch, self.pool.submit(self._save, batch))

    def wait(self) -> None:
        """Until the batch being saved is committed or rolled back (its outcome stays for ``finish``)."""
        if self.pending is not None:
            futures_wait([self.pending[1]])

    def finish(self) -> tuple[Batch, int] | None:
        """The batch being saved and its count once committed; raises what saving it raised."""
        if self.pending is None:
            return None
        batch, future = self.pending
        self.pending = None
        return batch, future.result()

    def close(self) -> None:
        self.wait()
        if self.pool is not None:
            self.pool.shutdown()


def _done(value: int) -> Future[int]:
    future: Future[int] = Future()
    future.set_result(value)
    return future


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
    saver = _Saver(db, account)
    done_per_folder: dict[str | None, int] = {}

    def committed(done: tuple[Batch, int] | None) -> bool:
        """Count a committed batch and report it; True when asked to stop."""
        nonlocal new
        if done is None:
            return False
        batch, added = done
        new += added
        done_per_folder[batch.folder] = done_per_folder.get(batch.folder, 0) + len(batch.items)
        if progress:
            progress(account.name, batch.folder, done_per_folder[batch.folder], batch.total)
        return bool(should_stop and should_stop())

    # A pass allocates a few hundred short-lived records per message, nearly all freed by
    # reference counting; the default collector threshold (700) ran a young-generation
    # collection every few messages, a tenth of a first sync's time. Restored after the pass.
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], GC_THRESHOLD), *thresholds[1:])
    try:
        try:
            source = open_source(account, resync_every=resync_every)
            try:
                stop = False
                for batch in source.batches(DbState(db, account.name, saver.wait), full=full):
                    # This batch was read and parsed while the one before was being saved.
                    if committed(saver.finish()):
                        stop = True  # this one is left for the next pass, as if never read
                        break
                    saver.submit(batch)
                stop = stop or committed(saver.finish())
                if stop:
                    status, error = "interrupted", "stopped before the end; the next sync continues from here"
            finally:
                notes = tuple(getattr(source, "notes", ()))
                source.close()
        finally:
            saver.close()  # whatever stopped the pass, the batch being saved is committed first
            if saver.pending is not None and saver.pending[1].exception() is None:
                new += saver.pending[1].result()
            gc.set_threshold(*thresholds)
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
    heap.release()  # what the reader and saver threads freed, before the derived stages build on it
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
    if store.has_outgoing(db, account.name):
        return None  # the answer of nearly every sync, read from an index: the mail is counted only when not
    total = store.message_count(db, account.name)
    if total < OWN_MAIL_MINIMUM:
        return None
    if account.kind in ("mbox", "maildir") and store.has_outgoing(db, None):
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
        # --full is what a user reaches for when something looks wrong: it re-derives every
        # table, not only what the cheap pass would think changed.
        pipeline.after_sync(db, config, now=now, force=full)
    return results
