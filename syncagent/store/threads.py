"""The thread graph and the threads table: the reads and writes of the threads stage.

``thread_nodes`` maps every Message-ID the graph knows (a message's own, or one
named in In-Reply-To/References, a placeholder until that message arrives) of
an account to its component; ``thread_components`` holds each component's size
(nodes, for union by size) and the messages it holds (count, earliest, latest).
Messages with a Gmail thread id are not in the graph: their thread is that id.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple


class ThreadMessage(NamedTuple):
    """What threading reads of one message (a tuple: the full pass reads every message)."""

    id: int
    account: str
    message_id: str
    in_reply_to: str | None
    refs: str | None
    thread_hint: str | None
    date: str
    subject: str | None
    thread_id: str | None


@dataclass
class Component:
    """One connected set of ids: ``size`` nodes, ``messages`` of them stored messages."""

    id: int
    account: str
    size: int
    messages: int
    first_date: str | None
    first_message_id: str | None
    last_date: str | None


ThreadRow = tuple[str, str, str | None, str | None, str | None, int]  # id, account, subject, first, last, count

_MESSAGE = "SELECT id, account, message_id, in_reply_to, refs, thread_hint, date, subject, thread_id FROM messages"


def _chunks(values: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def load_messages(conn: sqlite3.Connection, after: int = 0) -> list[ThreadMessage]:
    """Messages with an id above ``after``, oldest row first."""
    return [ThreadMessage(*r) for r in conn.execute(f"{_MESSAGE} WHERE id > ? ORDER BY id", [after])]


def load_hint_arrived(conn: sqlite3.Connection, upto: int) -> bool:
    """Did a message threaded by its headers get a Gmail thread id since (a second copy brought one)?"""
    return conn.execute(
        "SELECT 1 FROM messages WHERE thread_hint IS NOT NULL AND thread_id IS NOT thread_hint AND id <= ? LIMIT 1",
        [upto]).fetchone() is not None


def load_nodes(conn: sqlite3.Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The component of each known (account, Message-ID) among ``keys``."""
    by_account: dict[str, list[str]] = {}
    for account, mid in keys:
        by_account.setdefault(account, []).append(mid)
    found: dict[tuple[str, str], int] = {}
    for account, mids in by_account.items():
        for chunk in _chunks(sorted(set(mids))):
            marks = ",".join("?" * len(chunk))
            for mid, component in conn.execute(
                    f"SELECT message_id, component FROM thread_nodes WHERE account = ? AND message_id IN ({marks})",
                    [account, *chunk]):
                found[(account, mid)] = int(component)
    return found


def load_components(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, Component]:
    wanted = sorted(set(ids))
    found: dict[int, Component] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
                "SELECT id, account, size, messages, first_date, first_message_id, last_date "
                f"FROM thread_components WHERE id IN ({marks})", chunk):
            found[int(row[0])] = Component(*row)
    return found


def load_next_component(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM thread_components").fetchone()[0])


def load_subject(conn: sqlite3.Connection, account: str, message_id: str) -> str | None:
    row = conn.execute("SELECT subject FROM messages WHERE account = ? AND message_id = ?",
                       [account, message_id]).fetchone()
    return None if row is None else (None if row[0] is None else str(row[0]))


def load_hinted(conn: sqlite3.Connection, thread_id: str) -> list[ThreadMessage]:
    """The messages Gmail put in ``thread_id``, oldest row first."""
    return [ThreadMessage(*r) for r in conn.execute(
        f"{_MESSAGE} WHERE thread_id = ? AND thread_hint = ? ORDER BY id", [thread_id, thread_id])]


def load_thread_rows(conn: sqlite3.Connection) -> dict[str, ThreadRow]:
    return {str(r[0]): (str(r[0]), str(r[1]), r[2], r[3], r[4], int(r[5])) for r in conn.execute(
        "SELECT id, account, subject, first_date, last_date, message_count FROM threads")}


def save_graph(conn: sqlite3.Connection, *, relabel: dict[int, int], nodes: list[tuple[str, str, int]],
               components: list[Component], dropped: Iterable[int]) -> None:
    """Apply one pass's merges: relabel merged-away components, add new nodes, upsert the survivors."""
    conn.executemany("UPDATE thread_nodes SET component = ? WHERE component = ?",
                     [(target, old) for old, target in relabel.items()])
    conn.executemany("INSERT INTO thread_nodes (account, message_id, component) VALUES (?, ?, ?)", nodes)
    conn.executemany("DELETE FROM thread_components WHERE id = ?", [(c,) for c in dropped])
    conn.executemany(
        "INSERT INTO thread_components (id, account, size, messages, first_date, first_message_id, last_date) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET size = excluded.size, "
        "messages = excluded.messages, first_date = excluded.first_date, "
        "first_message_id = excluded.first_message_id, last_date = excluded.last_date",
        [(c.id, c.account, c.size, c.messages, c.first_date, c.first_message_id, c.last_date) for c in components])


def save_whole_graph(conn: sqlite3.Connection, nodes: Iterable[tuple[str, str, int]],
                     components: Iterable[Component]) -> None:
    """Replace the graph (the full rebuild)."""
    conn.execute("DELETE FROM thread_nodes")
    conn.execute("DELETE FROM thread_components")
    conn.executemany("INSERT INTO thread_components (id, account, size, messages, first_date, first_message_id, "
                     "last_date) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     [(c.id, c.account, c.size, c.messages, c.first_date, c.first_message_id, c.last_date)
                      for c in components])
    conn.executemany("INSERT INTO thread_nodes (account, message_id, component) VALUES (?, ?, ?)", nodes)


def save_renamed(conn: sqlite3.Connection, account: str, old: Iterable[str], new: str) -> None:
    """Messages threaded by headers in threads ``old`` now belong to ``new`` (merged, or an earlier message came)."""
    conn.executemany("UPDATE messages SET thread_id = ? WHERE thread_id = ? AND account = ? AND thread_hint IS NULL",
                     [(new, o, account) for o in old])


def save_message_threads(conn: sqlite3.Connection, assignment: Iterable[tuple[str, int]]) -> None:
    """(thread id, message id) pairs."""
    conn.executemany("UPDATE messages SET thread_id = ? WHERE id = ?", assignment)


def save_threads(conn: sqlite3.Connection, rows: Iterable[ThreadRow], gone: Iterable[str] = ()) -> None:
    conn.executemany("DELETE FROM threads WHERE id = ?", [(tid,) for tid in gone])
    conn.executemany(
        "INSERT INTO threads (id, account, subject, first_date, last_date, message_count) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET account = excluded.account, subject = excluded.subject, "
        "first_date = excluded.first_date, last_date = excluded.last_date, message_count = excluded.message_count",
        rows)


def count_threads(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM threads").fetchone()[0])
