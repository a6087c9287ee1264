"""Threads: Gmail's thread id where the source has one, else Message-ID / In-Reply-To / References.

Links come from headers only (no subject guessing, as notmuch and public-inbox do);
a parent never seen is a shared placeholder, so siblings whose parent is
missing still land in one thread. Only ids that can name a message (with an
"@", RFC 5322) link: ``<yes>`` or ``<1>`` would join every message carrying it.
"""

from __future__ import annotations

import hashlib
import logging

from syncagent.parse.headers import names_message

log = logging.getLogger(__name__)


class _UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def rebuild(db) -> int:
    """Recompute ``messages.thread_id`` and the ``threads`` table; return the thread count.

    Only rows whose thread changed are written, so a pass after a few new messages is cheap.
    """
    rows = db.execute(
        "SELECT id, account, message_id, in_reply_to, refs, thread_hint, date, subject, thread_id FROM messages"
    ).fetchall()
    uf = _UnionFind()
    for _id, account, mid, irt, refs, hint, _date, _subj, _tid in rows:
        if hint:
            continue
        node = f"{account}\x00{mid}"
        uf.find(node)
        for other in ((refs or "").split() + ([irt] if irt else [])):
            if names_message(other):  # rows stored before the parser dropped such ids
                uf.union(f"{account}\x00{other}", node)
    keys = [f"gm-{r[1]}-{r[5]}" if r[5] else uf.find(f"{r[1]}\x00{r[2]}") for r in rows]
    # Name each thread after its earliest message, so ids read well and stay put as replies arrive.
    earliest: dict[str, tuple[str, str]] = {}
    for key, r in zip(keys, rows):
        first = (r[6], r[2])
        best = earliest.get(key)
        if best is None or first < best:
            earliest[key] = first
    names = {key: f"t{hashlib.sha1(f'{key.split(chr(0), 1)[0]}{chr(0)}{first[1]}'.encode()).hexdigest()[:16]}"
             for key, first in earliest.items()}
    assignment: list[tuple[str, int]] = []
    threads: dict[str, list] = {}
    for key, (pk, account, mid, _irt, _refs, hint, date, subject, old) in zip(keys, rows):
        tid = hint if hint else names[key]
        if tid != old:
            assignment.append((tid, pk))
        t = threads.get(tid)
        if t is None:
            threads[tid] = [tid, account, subject, date, date, 0]
            t = threads[tid]
        t[5] += 1
        if (date, mid) == earliest[key]:
            t[2], t[3] = subject, date
        if date > t[4]:
            t[4] = date
    wanted = {tid: tuple(t) for tid, t in threads.items()}
    stored = {r[0]: tuple(r) for r in db.execute(
        "SELECT id, account, subject, first_date, last_date, message_count FROM threads").fetchall()}
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany("UPDATE messages SET thread_id = ? WHERE id = ?", assignment)
        conn.executemany("DELETE FROM threads WHERE id = ?", [(tid,) for tid in stored if tid not in wanted])
        conn.executemany(
            "INSERT INTO threads (id, account, subject, first_date, last_date, message_count) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET account = excluded.account, subject = excluded.subject, "
            "first_date = excluded.first_date, last_date = excluded.last_date, message_count = excluded.message_count",
            [t for tid, t in wanted.items() if stored.get(tid) != t],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(threads)
