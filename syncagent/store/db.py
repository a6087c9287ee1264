"""The database: opening it (WAL, migrations, 0600), saving batches, reading cursors."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from syncagent.errors import StoreError
from syncagent.files import private_dir
from syncagent.model import Batch, FolderCursor, GmailCursor, Message, Seen
from syncagent.timeutil import iso, utcnow

log = logging.getLogger(__name__)


def open_db(path: str | os.PathLike[str], *, migrate: bool = True) -> Database:
    """Open (creating mode 0600 if needed) and migrate the database, for reading and writing."""
    path = Path(path).expanduser()
    why = read_only_reason(path)
    if why is not None:
        raise StoreError(read_only_sentence(path, why))
    try:
        private_dir(path.parent)
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"Cannot open the database {path}: {_reason(exc)}; check the path in [database] and its permissions.") from exc
    return _ready(path, conn, migrate, "PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON",
                  "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=30000",
                  f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}", f"PRAGMA journal_size_limit={WAL_KEPT_BYTES}")


# A sync rewrites the same index pages batch after batch; each checkpoint copies them into the
# database again. SQLite's default of one checkpoint per 1,000 pages did that every second batch
# of a first sync; 10,000 pages (40 MB at the 4 KB page) is a tenth as often (a first sync of
# 100,000 in-process: 8.9 s before, 8.5 s after, six runs each). The write-ahead log is cut back
# to that size after a checkpoint, so one large pass (a full rebuild) leaves no log of its own size.
CHECKPOINT_PAGES = 10_000
WAL_KEPT_BYTES = 40 * 1024 * 1024


def open_for_reading(path: str | os.PathLike[str], *, config_path: object = None, migrate: bool = True) -> Database:
    """Open an existing database for a command that only shows it.

    A missing file is refused (a mistyped path must not become an empty
    ledger). A database that cannot be written (the file, or the directory
    SQLite keeps its -wal/-shm files in) is read with ``mode=ro`` into an
    in-memory copy, so the command works and whatever it would record (a
    reminder seen for the first time, a schema upgrade) is simply not kept.
    """
    path = Path(path).expanduser()
    if not path.exists():
        where = f" of {config_path}" if config_path else ""
        raise StoreError(f"There is no database at {path}; run `syncagent sync` to create it, or fix `path` in "
                         f"[database]{where} if it is mistyped.")
    why = read_only_reason(path)
    if why is None:
        return open_db(path, migrate=migrate)
    log.warning("The database %s is read-only (%s); showing it without saving anything.", path, why)
    memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    try:
        # mode=ro needs the -shm file, which a WAL database closed cleanly no longer has and a read-only
        # directory cannot get; immutable=1 then reads the file as it stands (nobody can write there either).
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            try:
                source = sqlite3.connect(f"{path.resolve().as_uri()}?{flags}", uri=True, timeout=30)
                try:
                    source.backup(memory)
                finally:
                    source.close()
                break
            except sqlite3.OperationalError:
                if flags.endswith("immutable=1"):
                    raise
    except sqlite3.DatabaseError as exc:
        raise unusable(path, exc) from exc
    return _ready(path, memory, migrate, "PRAGMA foreign_keys=ON")


def open_query_only(path: str | os.PathLike[str]) -> Database:
    """The database opened ``mode=ro`` with ``query_only`` set, for a surface that must never write."""
    path = Path(path).expanduser()
    if not path.exists():
        raise StoreError(f"There is no database at {path}; run `syncagent sync` first (or check [database] path).")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    return _ready(path, conn, False, "PRAGMA query_only = ON")


def _ready(path: Path, conn: sqlite3.Connection, migrate: bool, *pragmas: str) -> Database:
    """The connection set up with ``pragmas`` and (if asked) migrated, as a sqlite-utils Database."""
    try:
        for pragma in pragmas:
            conn.execute(pragma)
        # No sqlite-utils plugins: syncagent uses none, and finding them reads the metadata of every
        # installed package, the slowest part of opening the database.
        db = Database(conn, execute_plugins=False)
        if migrate:
            migrate_db(db)
    except sqlite3.DatabaseError as exc:
        raise unusable(path, exc) from exc
    return db


def has_tables(db: Database, *names: str) -> bool:
    """Whether every one of these tables exists (a database doctor reads may be from an older version)."""
    return all(db.table(name).exists() for name in names)


def read_only_reason(path: Path) -> str | None:
    """Why an existing database cannot be written here, or None (a missing file is not read-only)."""
    if not path.exists():
        return None
    if not os.access(path, os.W_OK):
        return "the file is not writable"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"its directory {path.parent} is not writable"
    return None


def read_only_sentence(path: Path, why: str, then: str = "run the command again; nothing was changed") -> str:
    target = path if why.startswith("the file") else path.parent
    return (f"The database {path} is read-only ({why}); make it writable (`chmod u+w {target}`, as the user "
            f"that owns it) and {then}.")


def unusable(path: Path, exc: BaseException) -> StoreError:
    """A database SQLite refuses. The advice keeps the file: it holds contacts and decisions no sync brings back."""
    why = read_only_reason(path)
    if why is not None or "readonly" in str(exc).replace("-", "").lower():
        return StoreError(read_only_sentence(path, why or "SQLite cannot write it"))
    return StoreError(
        f"The database {path} cannot be used: {_reason(exc)}; restore it from a backup, or rename it (keep the old "
        "file: it holds your contacts and reminder decisions) and run `syncagent sync --full` to rebuild the ledger "
        "from the mailbox.")


def migrate_db(db: Database) -> None:
    from syncagent.store.migrations import migrations

    if migrations.pending(db):
        migrations.apply(db)
    from syncagent.store import views

    views.ensure(db)


def schema_version(db: Database) -> str | None:
    from syncagent.store.migrations import migrations

    applied = migrations.applied(db)
    return applied[-1].name if applied else None


def write_error(exc: sqlite3.Error, what: str = "nothing from this batch was saved") -> StoreError:
    """One sentence for a failed write: locked by another program, disk full, read-only, or else."""
    if "readonly" in str(exc).replace("-", "").lower():
        return StoreError(f"Could not write to the database: it is read-only ({_reason(exc)}); {what}; make the "
                          "database file and its directory writable and run the command again.")
    return StoreError(
        f"Could not write to the database: {_reason(exc)}; {what}, free some space or close the other program and run the sync again."
    )


def _reason(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, sqlite3.OperationalError) and "full" in text:
        return "the disk is full"
    return text


class transaction:
    """``with transaction(db):`` BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error), or a
    savepoint when the caller already holds a transaction, so stages nest in a caller's."""

    def __init__(self, db: Database | sqlite3.Connection, name: str = "stage") -> None:
        self.conn: sqlite3.Connection = db.conn if isinstance(db, Database) else db
        self.name = name

    def __enter__(self) -> sqlite3.Connection:
        self.nested = self.conn.in_transaction
        self.conn.execute(f"SAVEPOINT {self.name}" if self.nested else "BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self.conn.execute(f"RELEASE {self.name}" if self.nested else "COMMIT")
        elif self.nested:
            self.conn.execute(f"ROLLBACK TO {self.name}")
            self.conn.execute(f"RELEASE {self.name}")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


# --- cursors -----------------------------------------------------------------

def folder_state(db: Database, account: str, folder: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT * FROM folder_state WHERE account = ? AND folder = ?", [account, folder]
    ).fetchone()
    if row is None:
        return None
    cols = [d[0] for d in db.execute("SELECT * FROM folder_state LIMIT 0").description]
    return dict(zip(cols, row))


def known_locations(db: Database, account: str, folder: str) -> dict[str, int | None]:
    """Live (not gone) locations of a folder mapped to their UID."""
    return dict(
        db.execute(
            "SELECT location, uid FROM message_folders WHERE account = ? AND folder = ? AND gone = 0",
            [account, folder],
        ).fetchall()
    )


def known_count(db: Database, account: str, folder: str) -> int:
    """How many live locations ``known_locations`` would give, without loading them: the count
    the triggers of ``folder_counts`` keep (no row: the folder has none)."""
    row = db.execute("SELECT live FROM folder_counts WHERE account = ? AND folder = ?", [account, folder]).fetchone()
    return int(row[0]) if row is not None else 0


def gmail_state(db: Database, account: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT history_id, pending_history_id, page_token FROM gmail_state WHERE account = ?",
        [account],
    ).fetchone()
    if row is None:
        return None
    return {"history_id": row[0], "pending_history_id": row[1], "page_token": row[2]}


def has_outgoing(db: Database, account: str | None) -> bool:
    """Does an account (None: any account) have a message from the user's addresses still on the server?"""
    # Two statements, so each is answered from the partial index messages_outgoing.
    if account is None:
        sql, args = "SELECT 1 FROM messages WHERE direction = 'outgoing' AND gone = 0 LIMIT 1", []
    else:
        sql, args = "SELECT 1 FROM messages WHERE direction = 'outgoing' AND account = ? AND gone = 0 LIMIT 1", [account]
    return db.execute(sql, args).fetchone() is not None


def message_count(db: Database, account: str) -> int:
    """How many messages of an account are still on the server."""
    return int(db.execute("SELECT COUNT(*) FROM messages WHERE account = ? AND gone = 0", [account]).fetchone()[0])


# --- sync runs ---------------------------------------------------------------

def start_run(db: Database, account: str) -> int:
    cur = db.execute(
        "INSERT INTO sync_runs (account, started_at, status) VALUES (?, ?, 'running')",
        [account, iso(utcnow())],
    )
    return int(cur.lastrowid or 0)


def finish_run(db: Database, run_id: int, status: str, new_messages: int, error: str | None = None,
               notes: list[str] | tuple[str, ...] = ()) -> None:
    db.execute(
        "UPDATE sync_runs SET finished_at = ?, status = ?, new_messages = ?, error = ?, notes = ? WHERE id = ?",
        [iso(utcnow()), status, new_messages, error, "\n".join(notes) or None, run_id],
    )


# --- saving ------------------------------------------------------------------

_MESSAGE_COLUMNS = (
    "account", "message_id", "thread_id", "date", "date_source", "arrived_at", "from_address",
    "from_name", "subject", "direction", "automatic", "automatic_reason", "in_reply_to", "refs",
    "list_id", "size", "snippet", "has_calendar", "gmail_id", "thread_hint", "first_seen_at", "ooo_until",
)

_INSERT_MESSAGE = (
    f"INSERT INTO messages ({', '.join(_MESSAGE_COLUMNS)}) "
    f"SELECT {', '.join(f'c{i}' for i in range(len(_MESSAGE_COLUMNS)))} FROM r WHERE true "
    # A second copy (Sent and INBOX, or a re-delivery) keeps the first row; it may
    # only add what the first copy lacked, and it brings the message back if gone.
    "ON CONFLICT (account, message_id) DO UPDATE SET "
    "gone = 0, "
    "gmail_id = COALESCE(messages.gmail_id, excluded.gmail_id), "
    "thread_hint = COALESCE(messages.thread_hint, excluded.thread_hint), "
    "snippet = COALESCE(messages.snippet, excluded.snippet), "
    "has_calendar = MAX(messages.has_calendar, excluded.has_calendar), "
    "ooo_until = COALESCE(messages.ooo_until, excluded.ooo_until)"
)
# The rows below name their message by (account, Message-ID), its id looked up in the statement.
_MESSAGE_PK = "(SELECT id FROM messages WHERE account = r.c0 AND message_id = r.c1)"
_INSERT_ADDRESS = (
    f"INSERT OR IGNORE INTO message_addresses (message, role, address, name) SELECT {_MESSAGE_PK}, c2, c3, c4 FROM r"
)
_INSERT_OUTREACH = (
    "INSERT OR IGNORE INTO outreach (message, words, questions, subject_words, connection, personalized, "
    f"fingerprint) SELECT {_MESSAGE_PK}, c2, c3, c4, c5, c6, c7 FROM r"
)
_INSERT_CALENDAR = f"INSERT OR IGNORE INTO calendar_parts (message, ics) SELECT {_MESSAGE_PK}, c2 FROM r"
_INSERT_FOLDER = (
    "INSERT INTO message_folders (account, folder, location, uidvalidity, uid, message, labels, gone, seen_at) "
    f"SELECT c0, c2, c3, c4, c5, {_MESSAGE_PK}, c6, 0, c7 FROM r WHERE true "
    "ON CONFLICT (account, folder, location) DO UPDATE SET message = excluded.message, "
    "labels = excluded.labels, uidvalidity = excluded.uidvalidity, gone = 0"
)


def _insert_rows(conn: sqlite3.Connection, statement: str, rows: list[list[Any]]) -> None:
    """Run ``statement``, which reads its values from ``r(c0, c1, ...)``, over all ``rows``.

    The rows go in as the bound values of one multi-row VALUES per chunk, so SQLite works
    through a chunk in one call. With ``executemany`` the sqlite3 module gives the
    interpreter lock back and takes it again at every row; while another thread parses,
    each of those waits for it, and saving on its own thread took seven times what it
    takes alone (30 s against 4 s for 100,000 messages). Bound values, unlike the JSON
    array this used to pass, need no encoding in Python and no parsing in SQLite (whose
    ``->>`` read each row's JSON text again for every column): the rows of a first sync of
    100,000 messages, written alone, took 3.2-3.5 s against 4.3-4.5 s. Any text goes in as
    it is, NUL included.
    """
    if not rows:
        return
    width = len(rows[0])
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    most = _ROWS_PER_STATEMENT
    while most > 1 and most * width > limit:
        most //= 2
    source = ", ".join(f"column{i + 1} AS c{i}" for i in range(width))
    one = "(" + ", ".join("?" * width) + ")"
    start = 0
    while start < len(rows):
        # Chunks of a power of two rows: a handful of statement texts per table, each prepared
        # once and kept by the sqlite3 module's cache (a prepared statement holds a cell per value).
        size = most
        while size > len(rows) - start:
            size //= 2
        placeholders = ", ".join([one] * size)
        conn.execute(f"WITH r AS (SELECT {source} FROM (VALUES {placeholders})) {statement}",
                     [value for row in rows[start:start + size] for value in row])
        start += size


_ROWS_PER_STATEMENT = 128  # a power of two


def save_batch(db: Database, account: str, own_addresses: Iterable[str], batch: Batch) -> int:
    """Commit one batch and its cursor in one transaction; return how many messages were new."""
    own = {a.lower() for a in own_addresses}
    now = iso(utcnow())
    conn = db.conn
    new = 0
    try:
        conn.execute("BEGIN IMMEDIATE")
        if batch.reset_folder and batch.folder is not None:
            conn.execute(
                "DELETE FROM message_folders WHERE account = ? AND folder = ?", [account, batch.folder]
            )
            # Until the refetch brings them back, messages held only by this folder count as gone.
            _mark_gone_messages(conn, account)
        new = _save_items(conn, account, own, batch.items, now)
        if batch.labels and batch.folder is not None:
            conn.executemany(
                "UPDATE message_folders SET labels = ? WHERE account = ? AND folder = ? AND location = ?",
                [(" ".join(labels) or None, account, batch.folder, loc) for loc, labels in batch.labels.items()],
            )
        if batch.gone and batch.folder is not None:
            conn.executemany(
                "UPDATE message_folders SET gone = 1 WHERE account = ? AND folder = ? AND location = ?",
                [(account, batch.folder, loc) for loc in batch.gone],
            )
            _mark_gone_messages(conn, account)
        if batch.gone_gmail_ids:
            conn.executemany(
                "UPDATE message_folders SET gone = 1 WHERE account = ? AND location = ?",
                [(account, gid) for gid in batch.gone_gmail_ids],
            )
            _mark_gone_messages(conn, account)
        if batch.cursor is not None:
            _save_cursor(conn, account, batch.folder, batch.cursor, now)
        if new:
            from syncagent.store import search

            search.catch_up(db)
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise write_error(exc) from exc
        raise
    return new


def _save_items(conn: sqlite3.Connection, account: str, own: set[str], items: list[tuple[Message, Seen]], now: str) -> int:
    """Upsert a batch's messages, addresses, calendar parts and folder rows; return how many were new.

    A handful of set-wise statements per batch rather than several per message: saving
    was a third of a first sync. Rows are never deleted, so ids above the highest one
    before the batch are exactly the new messages.
    """
    if not items:
        return 0
    before = conn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
    _insert_rows(conn, _INSERT_MESSAGE, [
        [
            account, msg.message_id, msg.thread_hint, msg.date, msg.date_source, msg.arrived_at,
            msg.from_address, msg.from_name, msg.subject,
            # A first value from the config of this pass; the derived stages own it from here
            # (pipeline.stages.derive_directions), so a fixed `addresses` re-derives it.
            "outgoing" if msg.from_address and msg.from_address in own else "incoming",
            int(msg.automatic), msg.automatic_reason, msg.in_reply_to, " ".join(msg.references) or None,
            msg.list_id, msg.size, msg.snippet, int(msg.has_calendar), msg.gmail_id, msg.thread_hint, now,
            msg.ooo_until,
        ]
        for msg, _seen in items
    ])
    # Addresses are unioned over copies: the Sent copy brings the Bcc an inbox copy lacks.
    _insert_rows(conn, _INSERT_ADDRESS, [[account, msg.message_id, a.role, a.address, a.name]
                                         for msg, _seen in items for a in msg.addresses])
    _insert_rows(conn, _INSERT_OUTREACH, [
        [account, msg.message_id, m.words, m.questions, m.subject_words, int(m.connection), int(m.personalized),
         m.fingerprint] for msg, _seen in items if (m := msg.outreach) is not None])
    _insert_rows(conn, _INSERT_CALENDAR, [[account, msg.message_id, msg.calendar]
                                          for msg, _seen in items if msg.calendar])
    _insert_rows(conn, _INSERT_FOLDER, [
        [account, msg.message_id, seen.folder, seen.location, seen.uidvalidity, seen.uid,
         " ".join(seen.labels) or None, now] for msg, seen in items])
    # Rows are never deleted and only this transaction writes: the ids past ``before`` are the new messages.
    (new,) = conn.execute("SELECT count(*) FROM messages WHERE id > ?", [before]).fetchone()
    return int(new)


def _mark_gone_messages(conn: sqlite3.Connection, account: str) -> None:
    """A message is gone once no folder holds it any more; the row stays as history."""
    conn.execute(
        "UPDATE messages SET gone = 1 WHERE account = ? AND gone = 0 AND NOT EXISTS ("
        " SELECT 1 FROM message_folders f WHERE f.message = messages.id AND f.gone = 0)",
        [account],
    )


def _save_cursor(conn: sqlite3.Connection, account: str, folder: str | None, cursor: FolderCursor | GmailCursor, now: str) -> None:
    if isinstance(cursor, GmailCursor):
        conn.execute(
            "INSERT INTO gmail_state (account, history_id, pending_history_id, page_token, synced_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account) DO UPDATE SET "
            "history_id = excluded.history_id, pending_history_id = excluded.pending_history_id, "
            "page_token = excluded.page_token, synced_at = excluded.synced_at",
            [account, cursor.history_id, cursor.pending_history_id, cursor.page_token, now],
        )
        return
    values = cursor.values()
    conn.execute(
        "INSERT INTO folder_state (account, folder, synced_at) VALUES (?, ?, ?) "
        "ON CONFLICT (account, folder) DO UPDATE SET synced_at = excluded.synced_at",
        [account, folder, now],
    )
    if values:
        sets = ", ".join(f"{c} = ?" for c in values)  # column names are FolderCursor's fields
        conn.execute(
            f"UPDATE folder_state SET {sets} WHERE account = ? AND folder = ?",
            [*values.values(), account, folder],
        )
