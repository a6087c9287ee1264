"""Header blocks parsed a chunk at a time, in this process or in a worker process.

A big first sync spends most of its time in the interpreter: reading the server's
answers, parsing headers, building rows, all under one interpreter lock. Parsing is
the part that needs nothing but the header bytes, so a source can hand whole chunks
to a worker process on the other core and keep the wire and the database busy here.
What comes back is the parsed records, or for a header that could not be parsed the
name of the error and its traceback, for the caller to log as it logs its own.
"""

from __future__ import annotations

import traceback
from datetime import datetime
from typing import NamedTuple

from syncagent.model import Message
from syncagent.parse import headers, outreach


def exit_with_parent() -> None:
    """The worker's initializer: end this process when the one that started it is gone.

    A worker waits on its task queue, whose writing end it holds itself, so a parent
    killed with SIGKILL would leave it waiting for ever.
    """
    import multiprocessing
    import os
    import threading
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class Entry(NamedTuple):
    """What the parse of one message needs: its header block and what the server said about it."""
    key: int  # the caller's handle (an IMAP UID)
    header: bytes
    arrived_at: datetime | None
    size: int | None
    thread_hint: str | None
    gmail_id: str | None


class Failure(NamedTuple):
    key: int
    kind: str  # the exception's class name: what a warning may say
    detail: str  # the traceback, which quotes header bytes: for -vv only


def parse_entries(entries: list[Entry]) -> list[Message | Failure]:
    """Each entry parsed, in order; one bad header never stops the others (promise 4)."""
    out: list[Message | Failure] = []
    for e in entries:
        try:
            out.append(headers.parse_message(e.header, arrived_at=e.arrived_at, size=e.size,
                                             thread_hint=e.thread_hint, gmail_id=e.gmail_id))
        except Exception as exc:
            out.append(Failure(e.key, exc.__class__.__name__, traceback.format_exc()))
    return out


class Sent(NamedTuple):
    """What the measures of one of the user's sent messages need (the text is never kept)."""
    key: int
    subject: str | None
    to: tuple[str | None, str] | None
    text: str


def measure_sent(sent: list[Sent]) -> dict[int, outreach.Measures]:
    """The measures of each sent message, by key (what ``outreach.with_measures`` stores)."""
    return {s.key: outreach.measure_sent(s.subject, s.to, s.text) for s in sent}
