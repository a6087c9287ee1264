"""The derived stages run after every sync, in order. Each can be rerun alone."""

from __future__ import annotations

import logging
from datetime import datetime

from syncagent.config import Config
from syncagent.timeutil import utcnow

log = logging.getLogger(__name__)


def after_sync(db, config: Config, *, now: datetime | None = None) -> None:
    """Rebuild everything derived from ``messages``: threads, then the ledger stages."""
    now = now or utcnow()
    from syncagent import threads

    threads.rebuild(db)
    from syncagent import meetings

    meetings.rebuild(db, config.timezone)
    from syncagent import ledger_store

    ledger_store.recompute(db, now)
    from syncagent import reminders

    reminders.reconcile(db, config, now)  # reads the messages and meetings just rebuilt
