"""Datasette over the ledger database, with the bundled metadata (descriptions, facets, queries).

The metadata file names the database ``syncagent``; Datasette names a database
after its file's stem, so ``load_metadata`` renames that key to the stem of the
file actually served (``demo`` for the demo). The database is served mutable,
never immutable: the daemon keeps writing while you browse.

What a browser can do with it (``guard``): the server answers only requests
whose Host header names the address it listens on (so a web page that points
its own domain at 127.0.0.1, DNS rebinding, gets 421 and no data), only GET and
HEAD (nothing here is meant to be written through the web), and never shows the
database's path (``/-/databases.json`` is refused). Arbitrary SQL stays on for
the person at the keyboard: Datasette runs it on a read-only connection
(``mode=ro``) and only accepts SELECT statements; ``allow_sql=False``
(``serve --no-sql``) turns it off and leaves tables and canned queries.

Three things Datasette's defaults got in the way of, done in-process (the
plugin below, the templates and the stylesheet beside this file):
the index and database pages start with contact_summary, reminders and the
canned queries instead of the largest tables; a reminder's ``anchor``
(``message:161``) links to that message or meeting; and the canned queries'
"today" is the ledger's clock (see ``CLOCK_SQL``), so on the demo they agree
with the CLI's reports at the sample's fixed instant.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import re
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


# Shown first on the index and database pages, before the canned queries.
START_HERE = ("contact_summary", "reminders")
HERE = Path(__file__).resolve().parent
STATIC_MOUNT = "syncagent-static"
# The instant the ledger was last evaluated at when it is not the real clock: `syncagent demo`
# stores the sample's fixed instant under this pipeline_state name. A real database never has one,
# so its queries use the current date.
CLOCK_STATE = "clock"
CLOCK_SQL = ("coalesce((select date(value) from pipeline_state where name = 'clock'), date('now'))",
             "coalesce((select datetime(value) from pipeline_state where name = 'clock'), datetime('now'))")


def demo_db_path() -> Path:
    """The database `syncagent demo` builds (never the user's real one)."""
    from syncagent.paths import demo_dir

    return demo_dir() / "demo.db"


def metadata_text() -> str:
    """The bundled metadata.json, as shipped (database key ``syncagent``)."""
    return resources.files("syncagent.serve").joinpath("metadata.json").read_text(encoding="utf-8")


def load_metadata(db_path: str | Path) -> dict:
    """The bundled metadata with its ``databases`` key renamed to ``db_path``'s stem.

    Every canned query's ``date('now')`` / ``datetime('now')`` becomes the ledger's
    clock (``CLOCK_SQL``), so a query added later follows the same clock without
    having to know about it.
    """
    data = json.loads(metadata_text())
    stem = Path(db_path).stem
    databases = data.get("databases", {})
    if METADATA_NAME in databases and stem != METADATA_NAME:
        databases[stem] = databases.pop(METADATA_NAME)
    for database in databases.values():
        for query in database.get("queries", {}).values():
            if isinstance(query, dict) and "sql" in query:
                query["sql"] = with_ledger_clock(query["sql"])
    data.setdefault("plugins", {})["datasette-dashboards"] = load_dashboards(stem)
    return data


def with_ledger_clock(sql: str) -> str:
    return sql.replace("date('now')", CLOCK_SQL[0]).replace("datetime('now')", CLOCK_SQL[1])


def load_dashboards(stem: str) -> dict:
    """The bundled dashboards (datasette-dashboards), their charts pointed at the database served."""
    dashboards = json.loads(resources.files("syncagent.serve").joinpath("dashboards.json").read_text(encoding="utf-8"))
    for dashboard in dashboards.values():
        for chart in dashboard["charts"].values():
            if "db" in chart:
                chart["db"] = stem
    return dashboards


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


def make_datasette(db_path: str | Path, metadata: dict | None = None, *, allow_sql: bool = True):
    """A Datasette over ``db_path`` (mutable, not immutable) with the bundled metadata.

    ``allow_sql=False`` denies Datasette's ``execute-sql`` permission to everyone:
    no arbitrary SQL, while tables, facets, search and canned queries still work.
    """
    from datasette.app import Datasette

    db_path = Path(db_path).expanduser()
    if not db_path.exists():
        raise SyncagentError(f"There is no database at {db_path}; run `syncagent sync` (or `syncagent demo`) first.")
    md = copy.deepcopy(metadata) if metadata is not None else load_metadata(db_path)
    if not allow_sql:
        md["allow_sql"] = False
    register_plugin()
    return Datasette(files=[str(db_path)], metadata=md, settings=SETTINGS, template_dir=str(HERE / "templates"),
                     static_mounts=[(STATIC_MOUNT, str(HERE / "static"))])


def register_plugin() -> None:
    """Register the hooks in ``syncagent.serve.plugin`` with this process's Datasette, once."""
    from datasette.plugins import pm

    from syncagent.serve import plugin

    if pm.get_plugin(plugin.NAME) is None:
        pm.register(plugin, name=plugin.NAME)


_ANCHOR_TABLES = {"message": "messages", "meeting": "meetings", "contact": "contacts"}


def anchor_link(datasette, database: str, value):
    """``message:161`` -> a link to row 161 of messages (``meeting:2`` to meetings); a close-the-loop
    anchor ``message:63+contact:32`` (the introducing message and whom it introduced) -> a link to
    each; anything else as is."""
    from markupsafe import Markup, escape

    links = []
    for part in str(value or "").split("+"):
        kind, _, key = part.partition(":")
        target = _ANCHOR_TABLES.get(kind)
        if target is None or not key.isdigit():
            return None
        href = datasette.urls.row(database, target, key)
        links.append(f'<a href="{escape(href)}">{escape(kind)} {escape(key)}</a>')
    return Markup(" + ".join(links))


def _first_sentence(text: str | None) -> str:
    text = (text or "").strip()
    cut = text.find(". ")
    return text if cut < 0 else text[: cut + 1]


def start_here(datasette) -> dict[str, list[dict]]:
    """Per database: contact_summary, reminders and the canned queries, each with a one-line description."""
    out: dict[str, list[dict]] = {}
    for name in datasette.databases:
        if name.startswith("_"):
            continue  # Datasette's internal database
        tables = datasette.metadata("tables", database=name) or {}
        items = [
            {"title": table, "url": datasette.urls.table(name, table),
             "description": _first_sentence(tables.get(table, {}).get("description"))}
            for table in START_HERE if table in tables
        ]
        for query_name, query in (datasette.metadata("queries", database=name) or {}).items():
            query = query if isinstance(query, dict) else {}
            items.append({"title": query.get("title") or query_name, "url": datasette.urls.query(name, query_name),
                          "description": _first_sentence(query.get("description"))})
        out[name] = items
    return out


def prepare(db_path: str | Path) -> None:
    """Bring the database to the current schema (views, FTS) before Datasette opens it."""
    from syncagent.store.db import open_db

    db = open_db(db_path)
    db.conn.close()


def serve(db_path: str | Path, host: str = LOOPBACK, port: int = 8001, *, public: bool = False,
          allow_sql: bool = True) -> None:
    """Run Datasette in this process, behind ``guard``, until interrupted."""
    import asyncio

    import uvicorn

    check_host(host, public)
    port = _check_port(host, port)
    prepare(db_path)
    ds = make_datasette(db_path, allow_sql=allow_sql)
    _quiet_handled_errors()
    asyncio.run(ds.invoke_startup())
    log.info("Datasette on http://%s:%d/ serving %s", host, port, db_path)
    uvicorn.run(guard(ds.app(), host, port), host=host, port=port, log_level="warning", lifespan="on")


def _check_port(host: str, port: int) -> int:
    """A taken port is one sentence, not a uvicorn traceback; port 0 becomes a free port (the Host check needs it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise SyncagentError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}); pick another port with --port.") from None
        return s.getsockname()[1]


def _quiet_handled_errors() -> None:
    """Datasette prints every error it answers (a 404, a mistyped query) as a traceback with its local
    variables, rows included, on the console; the browser already shows the error, so only real
    crashes (which Datasette still prints with ``traceback``) reach the terminal."""
    from datasette import handle_exception

    if hasattr(handle_exception, "rich"):
        handle_exception.rich = None


# --- the guard in front of Datasette ----------------------------------------------------------

_HIDDEN = re.compile(r"^/-/databases(\.json)?/?$")  # lists every database with its file path
READ_METHODS = ("GET", "HEAD")


def _split_host(value: str) -> tuple[str, int | None]:
    """'Name:8001' -> ('name', 8001); '[::1]:80' -> ('::1', 80); no port -> 80; a bad port -> None."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else "x")
    else:
        name, _, port_text = value.partition(":")
    if not port_text:
        return name, 80
    return name, int(port_text) if port_text.isdigit() else None


def host_allowed(value: str, host: str, port: int) -> bool:
    """Whether a request's Host header names this server: a loopback name or address with our port,
    or, when serving publicly, the bound address, this machine's name, or (bound to every address)
    any IP address. A DNS-rebinding page always sends its own domain name, which never matches."""
    name, given = _split_host(value)
    if given != port or not name:
        return False
    if name == "localhost" or _is_loopback_ip(name):
        return True
    if is_loopback(host):
        return False
    if name in (host.lower(), socket.gethostname().lower()):
        return True
    return host in ("0.0.0.0", "::") and _is_ip(name)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _is_loopback_ip(name: str) -> bool:
    return _is_ip(name) and ipaddress.ip_address(name).is_loopback


def guard(app, host: str, port: int):
    """ASGI middleware: refuse other Host headers (421), writes (405) and the database list (403)."""

    async def guarded(scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        host_header = headers.get(b"host", b"").decode("latin-1")
        if not host_header or not host_allowed(host_header, host, port):
            where = f"[{host}]" if ":" in host else host
            return await _refuse(scope, send, 421, f"This server answers only requests for http://{where}:{port}/.")
        if scope["type"] == "http" and scope["method"] not in READ_METHODS:
            return await _refuse(scope, send, 405, "syncagent serve is read-only: only GET and HEAD are answered.",
                                 [(b"allow", b"GET, HEAD")])
        if _HIDDEN.match(scope.get("path", "")):
            return await _refuse(scope, send, 403, "The list of databases is not shown: it names the database file.")
        return await app(scope, receive, send)

    return guarded


async def _refuse(scope, send, status: int, line: str, extra: list | None = None) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = (line + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})
