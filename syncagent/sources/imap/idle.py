"""IMAP IDLE on INBOX: new mail triggers an early sync instead of waiting for the next interval.

One background thread per IMAP account (``kind = "imap"``) keeps its own
connection: INBOX opened read-only (EXAMINE), then IDLE. When the server
announces new mail (EXISTS) the daemon's ``wake`` callback runs; the sync itself
still goes through the normal path, so IDLE only changes *when* a sync
happens, never what it does. IDLE is renewed every 9 minutes (servers drop it
after 30; NAT boxes sooner), and a dropped connection is reopened with backoff.
A server without the IDLE capability is left to the polling schedule.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from syncagent.config import Account

log = logging.getLogger(__name__)

RENEW_SECONDS = 9 * 60
CHECK_SECONDS = 1.0  # how often the thread looks at the stop flag while idling
BACKOFF_MAX = 60.0


class IdleWatcher(threading.Thread):
    def __init__(self, account: Account, wake: Callable[[str], None], stop: threading.Event):
        super().__init__(name=f"syncagent-idle-{account.name}", daemon=True)
        self.account, self.wake, self.stop = account, wake, stop

    def run(self) -> None:
        backoff = 5.0
        while not self.stop.is_set():
            try:
                if not self._watch():
                    return  # no IDLE on this server: polling only
                backoff = 5.0
            except Exception as exc:  # the server went away; the sync job reports it properly
                log.debug("%s: IDLE connection lost (%s); reconnecting in %.0f s", self.account.name, exc, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    def _watch(self) -> bool:
        from syncagent.sources.imap import connect as imap_connect

        client = imap_connect.connect(self.account, attempts=1)
        try:
            if not client.has_capability("IDLE"):
                log.info("%s: the server has no IDLE; new mail waits for the next scheduled sync", self.account.name)
                return False
            client.select_folder("INBOX", readonly=True)  # EXAMINE: reading changes nothing
            log.debug("%s: watching INBOX with IDLE", self.account.name)
            while not self.stop.is_set():
                client.idle()
                started = time.monotonic()
                news = False
                while not self.stop.is_set() and time.monotonic() - started < RENEW_SECONDS:
                    responses = client.idle_check(timeout=CHECK_SECONDS)
                    if any(len(r) > 1 and r[1] == b"EXISTS" for r in responses):
                        news = True
                        break
                client.idle_done()
                if news:
                    log.info("%s: new mail announced; syncing now", self.account.name)
                    self.wake(self.account.name)
            return True
        finally:
            imap_connect.close(client)


def start_watchers(accounts, wake: Callable[[str], None], stop: threading.Event) -> list[IdleWatcher]:
    watchers = [IdleWatcher(a, wake, stop) for a in accounts if a.kind == "imap"]
    for w in watchers:
        w.start()
    return watchers
