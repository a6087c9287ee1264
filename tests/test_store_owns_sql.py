"""Tables are read and written only in syncagent/store/: the folders moved there stay free of SQL."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The parts whose SQL lives in store modules: every folder but store/ itself and sources/ (which never
# touches SQLite; its Gmail client has an ``execute`` method of its own that the scan would take for SQL).
CLEAN = ["syncagent/assistant", "syncagent/cli", "syncagent/contacts", "syncagent/daemon", "syncagent/digest",
         "syncagent/ledger", "syncagent/notify", "syncagent/parse", "syncagent/pipeline", "syncagent/reports",
         "syncagent/serve", "syncagent/setup"]

# sqlite3's statement runners; a call with the SQL as its argument is SQL. The Gmail client's
# ``request.execute()`` takes no argument, so it is not one.
_RUNNERS = {"execute", "executemany", "executescript"}
# sqlite-utils reaches tables through ``db["t"]``, ``db.table("t")`` and ``db.query(sql)``.
_DATABASE_NAMES = {"db", "database", "conn", "connection"}
_TABLE_CALLS = {"table", "query", "view", "create_table", "create_view"}


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def sql_outside_store(source: str) -> list[tuple[int, str]]:
    """(line, code) of each statement run or table reached in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if (name in _RUNNERS and (node.args or node.keywords)) or (
                    name in _TABLE_CALLS and _root_name(node.func.value) in _DATABASE_NAMES):
                found.append((node.lineno, ast.unparse(node)[:80]))
        elif isinstance(node, ast.Subscript) and _root_name(node.value) in _DATABASE_NAMES:
            found.append((node.lineno, ast.unparse(node)[:80]))
    return found


def test_no_sql_outside_the_store_in_the_cleaned_folders():
    """Every read and write of a table in these parts goes through a named store function."""
    files = sorted(p for part in CLEAN for p in ([ROOT / part] if part.endswith(".py") else (ROOT / part).rglob("*.py")))
    assert len(files) > 30  # the folders are where the scan looks
    offending = [f"{path.relative_to(ROOT)}:{line}: {code}"
                 for path in files for line, code in sql_outside_store(path.read_text(encoding="utf-8"))]
    assert not offending, "move these into a load_*/save_* function of syncagent/store/:\n" + "\n".join(offending)


def test_the_scan_sees_sql_and_not_the_gmail_client():
    """The scan flags statements and sqlite-utils table access however written, and passes the Gmail API's execute()."""
    flagged = sql_outside_store(
        'db.execute("SELECT 1")\n'
        'conn.executemany(sql, rows)\n'
        'self.db.conn.execute(f"UPDATE t SET a = {x}")\n'
        'cur.executescript(SCHEMA)\n'
        'db["contacts"].insert({"name": "x"})\n'
        'db.table("digests").upsert({}, pk="week")\n'
        'ctx.db().execute("SELECT 2")\n'
        'list(db.query("SELECT 3"))\n'
    )
    assert sorted({line for line, _ in flagged}) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert sql_outside_store(
        'service.users().messages().list(userId="me").execute()\n'
        'batch.execute()\n'
        'cfg.table("database")\n'
        'rows[0]["name"]\n'
    ) == []
