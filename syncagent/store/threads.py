"""The thread graph and the threads table: the reads and writes of the threads stage.

``thread_nodes`` maps every Message-ID the graph knows (a message's own, or one
named in In-Reply-To/References, a placeholder until that message arrives) of
an account to its component; ``thread_components`` holds each component's size
(nodes, for union by size) and the messages it holds (count, earliest, latest).
Messages with a Gmail thread id are not in the graph: their thread is that id.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
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


# The full pass keeps the graph in temporary tables rather than in Python: at a
# million messages dicts of Message-ID strings cost more than a gigabyte, while
# SQLite's temporary store spills to disk and Python keeps only integer arrays.
# Its temporary tables: _thread_occurrences, every (message, id it names) in the
# pass's order; _thread_full_nodes, each distinct (account, Message-ID) numbered in
# order of first occurrence; _thread_wanted, the threads rows derived;
# _thread_assigned, the messages whose thread id changes.


def load_plain_links(conn: sqlite3.Connection) -> Iterator[tuple[str, str, str | None, str | None]]:
    """account, Message-ID, In-Reply-To, References of every message without a Gmail thread id, oldest row first."""
    for row in conn.execute("SELECT account, message_id, in_reply_to, refs FROM messages "
                            "WHERE thread_hint IS NULL OR thread_hint = '' ORDER BY id"):
        yield row[0], row[1], row[2], row[3]


def save_full_occurrences(conn: sqlite3.Connection, occurrences: Iterable[tuple[str, str, str]]) -> int:
    """Number the graph's nodes from (account, message's id, id it names or its own) in order; return the count.

    Node numbers follow first occurrence, so components are numbered as the
    stored graph always numbered them (by their first node).
    """
    conn.execute("DROP TABLE IF EXISTS temp._thread_occurrences")
    conn.execute("DROP TABLE IF EXISTS temp._thread_full_nodes")
    conn.execute("CREATE TEMP TABLE _thread_occurrences (seq INTEGER PRIMARY KEY, account TEXT, source TEXT, node TEXT)")
    conn.execute("CREATE TEMP TABLE _thread_full_nodes (id INTEGER PRIMARY KEY, account TEXT, message_id TEXT, "
                 "UNIQUE (account, message_id))")
    conn.executemany("INSERT INTO _thread_occurrences (account, source, node) VALUES (?, ?, ?)", occurrences)
    conn.execute("INSERT OR IGNORE INTO _thread_full_nodes (account, message_id) "
                 "SELECT account, node FROM _thread_occurrences ORDER BY seq")
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM _thread_full_nodes").fetchone()[0])


def load_full_edges(conn: sqlite3.Connection) -> Iterator[tuple[int, int]]:
    """(node of a message, node of an id it names) pairs, numbered as save_full_occurrences numbered them."""
    for row in conn.execute(
            "SELECT s.id, n.id FROM _thread_occurrences o "
            "JOIN _thread_full_nodes s ON s.account = o.account AND s.message_id = o.source "
            "JOIN _thread_full_nodes n ON n.account = o.account AND n.message_id = o.node "
            "WHERE o.node <> o.source"):
        yield int(row[0]), int(row[1])


def save_full_nodes(conn: sqlite3.Connection, labels: Iterable[tuple[int, int]]) -> None:
    """Replace ``thread_nodes`` with (node number, component) pairs given in node order."""
    conn.execute("DELETE FROM thread_nodes")
    conn.execute("DELETE FROM thread_components")
    # Numbers first, then one statement joins them to the ids: a statement per node cost more
    # than the rest of the graph's writes, and inserting in key order keeps the index appends.
    conn.execute("CREATE TEMP TABLE _thread_labels (id INTEGER PRIMARY KEY, component INTEGER)")
    conn.executemany("INSERT INTO _thread_labels (id, component) VALUES (?, ?)", labels)
    conn.execute("INSERT INTO thread_nodes (account, message_id, component) "
                 "SELECT n.account, n.message_id, l.component FROM _thread_full_nodes n "
                 "JOIN _thread_labels l ON l.id = n.id ORDER BY n.account, n.message_id")
    conn.execute("DROP TABLE temp._thread_labels")
    conn.execute("DROP TABLE temp._thread_occurrences")
    conn.execute("DROP TABLE temp._thread_full_nodes")


class FullMessage(NamedTuple):
    """A message as the full pass reads it back, with the component its Message-ID ended in."""

    id: int
    component: int
    account: str
    message_id: str
    date: str
    subject: str | None
    thread_id: str | None


def load_plain_by_component(conn: sqlite3.Connection) -> Iterator[FullMessage]:
    """Messages without a Gmail thread id by component, each component's earliest (date, Message-ID) first."""
    for row in conn.execute(
            "SELECT m.id, n.component, m.account, m.message_id, m.date, m.subject, m.thread_id FROM messages m "
            "JOIN thread_nodes n ON n.account = m.account AND n.message_id = m.message_id "
            "WHERE m.thread_hint IS NULL OR m.thread_hint = '' ORDER BY n.component, m.date, m.message_id"):
        yield FullMessage(*row)


def load_hinted_by_thread(conn: sqlite3.Connection) -> Iterator[ThreadMessage]:
    """Messages with a Gmail thread id, by that id, oldest row first within each."""
    for row in conn.execute(f"{_MESSAGE} WHERE thread_hint <> '' ORDER BY thread_hint, id"):
        yield ThreadMessage(*row)


def begin_full_threads(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE IF EXISTS temp._thread_wanted")
    conn.execute("DROP TABLE IF EXISTS temp._thread_assigned")
    conn.execute("CREATE TEMP TABLE _thread_wanted (id TEXT PRIMARY KEY, account TEXT, subject TEXT, first_date TEXT, "
                 "last_date TEXT, message_count INTEGER)")
    conn.execute("CREATE TEMP TABLE _thread_assigned (message INTEGER PRIMARY KEY, thread_id TEXT)")


def save_full_part(conn: sqlite3.Connection, *, components: Iterable[Component], rows: Iterable[ThreadRow],
                   assignment: Iterable[tuple[str, int]]) -> None:
    """One batch of the full pass's components, threads rows and (thread id, message id) changes."""
    conn.executemany("INSERT INTO thread_components (id, account, size, messages, first_date, first_message_id, "
                     "last_date) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     [(c.id, c.account, c.size, c.messages, c.first_date, c.first_message_id, c.last_date)
                      for c in components])
    # Derived names start with "t" and Gmail's thread ids are hex: should one ever collide, the first row stays.
    conn.executemany("INSERT OR IGNORE INTO _thread_wanted VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT OR REPLACE INTO _thread_assigned (thread_id, message) VALUES (?, ?)", assignment)


def finish_full_threads(conn: sqlite3.Connection) -> None:
    """Write the full pass's result: only threads rows and message rows that changed are written."""
    conn.execute("UPDATE messages SET thread_id = a.thread_id FROM _thread_assigned a WHERE messages.id = a.message")
    conn.execute("DELETE FROM threads WHERE id NOT IN (SELECT id FROM _thread_wanted)")
    conn.execute(
        "INSERT INTO threads (id, account, subject, first_date, last_date, message_count) "
        "SELECT id, account, subject, first_date, last_date, message_count FROM _thread_wanted WHERE true "
        "ON CONFLICT (id) DO UPDATE SET account = excluded.account, subject = excluded.subject, "
        "first_date = excluded.first_date, last_date = excluded.last_date, message_count = excluded.message_count "
        "WHERE threads.account IS NOT excluded.account OR threads.subject IS NOT excluded.subject "
        "OR threads.first_date IS NOT excluded.first_date OR threads.last_date IS NOT excluded.last_date "
        "OR threads.message_count IS NOT excluded.message_count")
    conn.execute("DROP TABLE temp._thread_wanted")
    conn.execute("DROP TABLE temp._thread_assigned")
