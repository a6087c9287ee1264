"""The always-on service behind `syncagent run`: sync on a schedule, notify, the weekly digest.

APScheduler 3's BlockingScheduler drives three jobs that call the same library
functions the CLI does:

* ``sync``: every account at start and every ``[sync] interval_minutes`` (with a
  little jitter), through ``sync.sync_all``, which also recomputes the ledger
  and reminders. A failed pass (server down, network gone) is logged with its
  reason and retried sooner, with exponential backoff capped at the interval,
  for as long as it takes: the daemon never ends because a server is away.
  The job reschedules itself (a one-shot date trigger each time) so the next
  delay can depend on how this pass went.
* ``digest``: on ``[digest] weekday``/``time`` in the user's zone, calling
  ``digest.run_weekly`` (imported when the job runs).
* IMAP IDLE (``idle.py``): a thread per IMAP account watches INBOX and calls
  ``wake`` when mail arrives, which moves the next sync to now.
* ``watchdog``: when systemd asked for one (WatchdogSec=), pings WATCHDOG=1
  only while work progresses: a sync that has not committed a batch for a
  whole watchdog period stops the pings, so systemd restarts a hung process.

SIGTERM/SIGINT set a stop flag that the sync checks after every committed
batch; a pass stopped that way skips the derived stages (ledger, reminders),
which would otherwise be computed from part of the mailbox, and the next pass
derives from everything. A helper thread shuts the scheduler down (shutting down from the
signal handler itself could deadlock on the executor's lock). The main thread
then waits for the pass in progress, at most ``STOP_TIMEOUT`` seconds; a pass
stuck in a network call past that is abandoned (its open transaction is
rolled back by SQLite; the next start continues from the last commit) and the
process exits 0.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from datetime import datetime, timedelta

from syncagent.config import Config
from syncagent.daemon import sdnotify
from syncagent.timeutil import utcnow

log = logging.getLogger(__name__)

STOP_TIMEOUT = 3.0  # seconds the pass in progress gets to reach its next commit after SIGTERM
BACKOFF_FIRST = 15.0  # seconds before the first retry of a failed pass (capped at the interval)
DIGEST_GRACE = 12 * 3600  # a digest missed by a suspended laptop still runs within 12 h


class Daemon:
    def __init__(self, config: Config):
        from apscheduler.schedulers.blocking import BlockingScheduler

        self.config = config
        self.stop = threading.Event()
        self.failures = 0  # consecutive failed passes
        self.work = threading.Lock()  # one pass (sync or digest) at a time on the database
        self.syncing_since: float | None = None
        self.last_progress = time.monotonic()
        self.stall_logged = False
        self.early = threading.Event()  # IDLE announced new mail during a pass: go again at once
        self.scheduler = BlockingScheduler(
            timezone=config.tz,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        )

    # --- timing ---------------------------------------------------------------

    @property
    def interval(self) -> float:
        return self.config.sync.interval_minutes * 60

    def next_delay(self, ok: bool) -> float:
        """Seconds until the next pass: the interval (+- jitter), or a backoff after failures."""
        if not ok:
            return min(self.interval, BACKOFF_FIRST * 2 ** max(self.failures - 1, 0))
        # Jitter spreads load but never more than a quarter of the interval.
        spread = min(self.config.sync.jitter_seconds, self.interval / 4)
        return self.interval + random.uniform(-spread, spread)

    # --- jobs -----------------------------------------------------------------

    def sync_job(self) -> None:
        ok, summary = False, "sync skipped"
        try:
            with self.work:
                if self.stop.is_set():
                    return
                self.syncing_since = self.last_progress = time.monotonic()
                self.early.clear()
                sdnotify.notify("STATUS=Syncing")
                ok, summary = self._sync_once()
        except Exception as exc:  # the daemon outlives any one pass
            log.error("sync failed: %s", exc)
            log.debug("sync failure detail", exc_info=True)
            summary = f"sync failed: {exc}"
        finally:
            self.syncing_since = None
            self.last_progress = time.monotonic()
            if not self.stop.is_set():
                self._after_pass(ok, summary)  # always: the chain of one-shot triggers must not break

    def _after_pass(self, ok: bool, summary: str) -> None:
        self.failures = 0 if ok else self.failures + 1
        delay = 0.5 if ok and self.early.is_set() else self.next_delay(ok)
        when = utcnow() + timedelta(seconds=delay)
        self._schedule_sync(when)
        local = when.astimezone(self.config.tz)
        if ok:
            status = f"{summary}; next sync at {local:%H:%M:%S}"
        else:
            status = f"{summary}; retrying at {local:%H:%M:%S} (attempt {self.failures + 1})"
            log.warning("retrying in %.0f s (%d failed in a row)", delay, self.failures)
        sdnotify.notify("WATCHDOG=1", f"STATUS={status}")

    def _sync_once(self) -> tuple[bool, str]:
        from syncagent.pipeline.sync import sync_all
        from syncagent.store.db import open_db

        db = open_db(self.config.database)
        try:
            results = sync_all(db, self.config, should_stop=self.stop.is_set, progress=self._progress)
            if not self.stop.is_set():
                self._notify(db)
        finally:
            db.conn.close()
        failed = [r for r in results if not r.ok]
        new = sum(r.new_messages for r in results)
        stamp = datetime.now(self.config.tz).strftime("%H:%M:%S")
        if failed:
            return False, f"{stamp}: " + "; ".join(r.line() for r in failed)
        return True, f"Synced at {stamp}: {new} new message{'s' if new != 1 else ''}"

    def _progress(self, *_args) -> None:
        self.last_progress = time.monotonic()
        sdnotify.notify("WATCHDOG=1")

    def _notify(self, db) -> None:
        try:
            from syncagent.notify import announce as notify

            notify.notify_due(db, self.config)
        except Exception as exc:  # a notification channel failing must not fail the sync
            log.warning("could not send reminder notifications: %s", exc)
        try:
            from syncagent.notify import briefs

            briefs.notify_briefs(db, self.config)
        except Exception as exc:
            log.warning("could not send meeting briefs: %s", exc)

    def digest_job(self) -> None:
        try:
            from syncagent.digest.data import run_weekly
        except ImportError as exc:
            log.warning("the weekly digest is not available (%s); skipping it", exc)
            return
        from syncagent.store.db import open_db

        with self.work:
            if self.stop.is_set():
                return
            self.last_progress = time.monotonic()
            try:
                db = open_db(self.config.database)
                try:
                    run_weekly(db, self.config)
                finally:
                    db.conn.close()
                log.info("weekly digest written")
            except Exception as exc:
                log.error("the weekly digest failed: %s", exc)
                log.debug("digest failure detail", exc_info=True)

    def watchdog_job(self, period: float) -> None:
        stalled = time.monotonic() - self.last_progress
        if self.syncing_since is None or stalled < period:
            self.stall_logged = False
            sdnotify.notify("WATCHDOG=1")
        elif not self.stall_logged:  # once per stall, not every tick
            self.stall_logged = True
            log.warning("the sync has made no progress for %.0f s; withholding watchdog pings", stalled)

    def wake(self, account: str | None = None) -> None:
        """New mail announced (IMAP IDLE): sync now, or right after the pass in progress."""
        self.early.set()
        if self.syncing_since is None and not self.stop.is_set():
            self._schedule_sync(utcnow())

    def _schedule_sync(self, when: datetime) -> None:
        from apscheduler.triggers.date import DateTrigger

        # misfire_grace_time=None: a pass delayed by suspend or a busy pool still runs;
        # dropping a one-shot trigger would stop syncing for good.
        self.scheduler.add_job(self.sync_job, DateTrigger(run_date=when), id="sync", name="sync",
                               replace_existing=True, misfire_grace_time=None)

    # --- life cycle -----------------------------------------------------------

    def request_stop(self, signum=None, _frame=None) -> None:
        if not self.stop.is_set():
            log.info("stopping (%s): finishing the current transaction",
                     signal.Signals(signum).name if signum else "requested")
        self.stop.set()

    def _stopper(self) -> None:
        self.stop.wait()
        sdnotify.notify("STOPPING=1", "STATUS=Stopping")
        try:
            self.scheduler.shutdown(wait=False)
        except Exception:  # already stopped
            pass

    def run(self) -> int:
        from apscheduler.triggers.interval import IntervalTrigger

        from syncagent.store import lock
        from syncagent.store.db import open_db

        held = lock.acquire(self.config.database)
        try:
            db = open_db(self.config.database)  # migrate now: a broken database fails at start
            _close_stale_runs(db.conn)  # we hold the lock: any 'running' pass died with its process
            db.conn.close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self.request_stop)
            threading.Thread(target=self._stopper, name="syncagent-stopper", daemon=True).start()
            self._schedule_sync(utcnow())
            self.scheduler.add_job(self.digest_job, digest_trigger(self.config), id="digest",
                                   name="weekly digest", misfire_grace_time=DIGEST_GRACE)
            period = sdnotify.watchdog_seconds()
            if period:
                self.scheduler.add_job(self.watchdog_job, IntervalTrigger(seconds=max(period / 3, 0.5)),
                                       args=[period], id="watchdog", name="watchdog", misfire_grace_time=None)
            log.info("syncagent running: %d account(s), every %g min, digest %s %s (%s)",
                     len(self.config.accounts), self.config.sync.interval_minutes,
                     self.config.digest.weekday, self.config.digest.time, self.config.timezone)
            if self.config.sync.idle:
                from syncagent.sources.imap import idle

                idle.start_watchers(self.config.accounts, self.wake, self.stop)
            sdnotify.notify("READY=1", "STATUS=Started; first sync under way")
            if not self.stop.is_set():
                self.scheduler.start()  # blocks until the stopper shuts it down
            if not self.work.acquire(timeout=STOP_TIMEOUT):
                log.warning("the pass in progress did not stop within %.0f s; exiting without it "
                            "(the next start continues from its last commit)", STOP_TIMEOUT)
                _close_stale_runs_quickly(self.config.database)
                held.release()
                logging.shutdown()
                os._exit(0)  # the stuck worker thread would otherwise hold the exit
            self.work.release()
            log.info("stopped")
            return 0
        finally:
            held.release()


def digest_trigger(config: Config):
    """[digest] weekday and time, in the user's zone (DST-safe in APScheduler >= 3.11.2)."""
    from apscheduler.triggers.cron import CronTrigger

    hour, minute = (int(x) for x in config.digest.time.split(":"))
    return CronTrigger(day_of_week=config.digest.weekday[:3], hour=hour, minute=minute, timezone=config.tz)


def _close_stale_runs(conn) -> None:
    from syncagent.store.runs import save_stale_runs_interrupted
    from syncagent.timeutil import iso

    save_stale_runs_interrupted(conn, iso(utcnow()))


def _close_stale_runs_quickly(path) -> None:
    """Record the abandoned pass as interrupted, without waiting long for the database."""
    import sqlite3

    try:
        conn = sqlite3.connect(str(path), timeout=1, isolation_level=None)
        try:
            _close_stale_runs(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.debug("could not mark the abandoned pass: %s", exc)


def run(config: Config) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the exit code (0)."""
    return Daemon(config).run()
