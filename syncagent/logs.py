"""Logging set-up: one line per event; plain lines for the journal under systemd."""

from __future__ import annotations

import logging
import os
import sys

from syncagent.safe_text import for_terminal


def setup(verbose: int = 0, quiet: bool = False) -> None:
    """Commands print their own results, so the log shows only warnings unless -v (info) or -vv (debug)."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO)[verbose] if verbose < 2 else logging.DEBUG
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_syncagent", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._syncagent = True  # type: ignore[attr-defined]
    if os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        # The journal stamps time and unit itself; a priority prefix sets the level.
        handler.setFormatter(_JournalFormatter())
    else:
        handler.setFormatter(_SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter stays out unless asked for.
    # The daemon's log is its interface: one info line per event unless -q.
    for noisy in ("imapclient", "googleapiclient", "urllib3", "apscheduler", "httplib2", "google"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose >= 3 else logging.WARNING)


class _SafeFormatter(logging.Formatter):
    """Log lines quote folder names, subjects and server replies: nothing in them may drive the terminal."""

    def format(self, record):
        return for_terminal(super().format(record), multiline=True)


class _JournalFormatter(_SafeFormatter):
    _PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def format(self, record):
        # One journal entry per line: a newline inside a message would forge a second entry.
        return f"<{self._PRIORITY.get(record.levelno, 6)}>{record.name}: {for_terminal(record.getMessage())}"
