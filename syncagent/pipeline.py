"""The derived stages run after every sync, in order. Each can be rerun alone."""

from __future__ import annotations

import logging
from datetime import datetime

from syncagent.config import Config
from syncagent.timeutil import utcnow

log = logging.getLogger(__name__)


def after_sync(db, config: Config, *, now: datetime | None = None) -> None:
    """Rebuild everything derived from ``messages``: threads, then the ledger stages.

    Each stage commits in one transaction; a failed write leaves the previous
    result in place and is reported as one StoreError sentence.
    """
    import sqlite3

    from syncagent import store

    try:
        _stages(db, config, now or utcnow())
    except sqlite3.Error as exc:
        raise store.write_error(exc, "the ledger and reminders were left as they were") from exc


def _stages(db, config: Config, now: datetime) -> None:
    from syncagent import threads

    threads.rebuild(db)
    from syncagent import meetings

    meetings.rebuild(db, config.timezone)
    from syncagent import ledger_store

    ledger_store.recompute(db, now)
    from syncagent import reminders

    reminders.reconcile(db, config, now)  # reads the messages and meetings just rebuilt
