"""Datasette over the ledger database, with the bundled metadata (descriptions, facets, queries).

The metadata file names the database ``syncagent``; Datasette names a database
after its file's stem, so ``load_metadata`` renames that key to the stem of the
file actually served (``demo`` for the demo). The database is served mutable,
never immutable: the daemon keeps writing while you browse.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import socket
from importlib import resources
from pathlib import Path

from syncagent.errors import SyncagentError

log = logging.getLogger(__name__)

METADATA_NAME = "syncagent"  # the database key used in the bundled metadata.json
LOOPBACK = "127.0.0.1"
SETTINGS = {
    "sql_time_limit_ms": 5000,  # canned queries group over every message; give them room
    "facet_time_limit_ms": 500,
    "default_page_size": 100,
}


def demo_db_path() -> Path:
    """The database `syncagent demo` builds (never the user's real one)."""
    from syncagent.paths import demo_dir

    return demo_dir() / "demo.db"


def metadata_text() -> str:
    """The bundled metadata.json, as shipped (database key ``syncagent``)."""
    return resources.files("syncagent.serve").joinpath("metadata.json").read_text(encoding="utf-8")


def load_metadata(db_path: str | Path) -> dict:
    """The bundled metadata with its ``databases`` key renamed to ``db_path``'s stem."""
    data = json.loads(metadata_text())
    stem = Path(db_path).stem
    databases = data.get("databases", {})
    if METADATA_NAME in databases and stem != METADATA_NAME:
        databases[stem] = databases.pop(METADATA_NAME)
    return data


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, public: bool) -> None:
    """Refuse a non-loopback address unless the user said, explicitly, that it is meant to be public."""
    if is_loopback(host):
        return
    if not public:
        raise SyncagentError(
            f"Refusing to serve your mail database on {host}, which other machines can reach; "
            "use the default 127.0.0.1, or add --i-know-this-is-public if you really mean it."
        )
    log.warning("serving on %s: anyone who can reach this address can read your mail metadata and contacts", host)


def make_datasette(db_path: str | Path, metadata: dict | None = None):
    """A Datasette over ``db_path`` (mutable, not immutable) with the bundled metadata."""
    from datasette.app import Datasette

    db_path = Path(db_path).expanduser()
    if not db_path.exists():
        raise SyncagentError(f"There is no database at {db_path}; run `syncagent sync` (or `syncagent demo`) first.")
    md = copy.deepcopy(metadata) if metadata is not None else load_metadata(db_path)
    return Datasette(files=[str(db_path)], metadata=md, settings=SETTINGS)


def prepare(db_path: str | Path) -> None:
    """Bring the database to the current schema (views, FTS) before Datasette opens it."""
    from syncagent.store.db import open_db

    db = open_db(db_path)
    db.conn.close()


def serve(db_path: str | Path, host: str = LOOPBACK, port: int = 8001, *, public: bool = False) -> None:
    """Run Datasette in this process until interrupted."""
    import asyncio

    import uvicorn

    check_host(host, public)
    _check_port(host, port)
    prepare(db_path)
    ds = make_datasette(db_path)
    asyncio.run(ds.invoke_startup())
    log.info("Datasette on http://%s:%d/ serving %s", host, port, db_path)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on")


def _check_port(host: str, port: int) -> None:
    """A taken port is one sentence, not a uvicorn traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise SyncagentError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}); pick another port with --port.") from None
