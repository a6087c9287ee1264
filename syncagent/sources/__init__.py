"""Mail sources. Each yields ``Batch`` records and never touches SQLite.

A source is created by ``open_source(account)`` and used as::

    for batch in source.batches(state, full=False):
        store.save_batch(...)          # rows and cursor in one transaction
    source.close()

``state`` is a read-only ``StateView`` (see ``syncagent.pipeline.sync``) giving the stored
cursors: ``folder_state(folder)``, ``known_locations(folder)`` (and its size,
``known_count(folder)``), ``gmail_state()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from syncagent.config import Account
from syncagent.model import Batch


class StateView(Protocol):
    def folder_state(self, folder: str) -> dict | None: ...
    def known_locations(self, folder: str) -> dict[str, int | None]: ...
    def gmail_state(self) -> dict | None: ...


class Source(Protocol):
    def batches(self, state: StateView, *, full: bool = False) -> Iterator[Batch]: ...
    def close(self) -> None: ...


def open_source(account: Account, *, resync_every: float = 600.0) -> Source:
    """The source for an account; ``resync_every`` (seconds, the sync interval) spaces Gmail's
    full resyncs when its history keeps expiring."""
    if account.kind in ("maildir", "mbox"):
        from syncagent.sources.local import LocalSource

        return LocalSource(account)
    if account.kind == "imap":
        from syncagent.sources.imap.source import ImapSource

        return ImapSource(account)
    if account.kind == "gmail":
        from syncagent.sources.gmail.source import GmailSource

        return GmailSource(account, resync_every=resync_every)
    raise ValueError(account.kind)
