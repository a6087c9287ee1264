"""IMAP accounts (imapclient): see ``source``."""

# Whether a big pass may parse headers in a worker process (``source.PARSE_WORKER_MIN``).
# Off unless syncagent's own commands turn it on: a worker is started with "spawn", which
# imports the program's main script again, and a script that calls syncagent without an
# ``if __name__ == "__main__"`` guard would run a second time inside the worker.
PARSE_IN_WORKER = False


def allow_worker_process() -> None:
    """Let big IMAP passes of this process parse in a worker (syncagent's entry points call this)."""
    global PARSE_IN_WORKER
    PARSE_IN_WORKER = True
