"""Threads: Gmail's thread id where the source has one, else Message-ID / In-Reply-To / References.

Links come from headers only (no subject guessing, as notmuch and public-inbox do);
a parent never seen is a shared placeholder, so siblings whose parent is
missing still land in one thread.
"""

from __future__ import annotations

import hashlib
import logging

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
    """Recompute ``messages.thread_id`` and the ``threads`` table; return the thread count."""
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
            uf.union(f"{account}\x00{other}", node)
    # Name each thread after its earliest message, so ids read well and stay put as replies arrive.
    earliest: dict[str, tuple[str, str]] = {}
    assignment: list[tuple[int, str]] = []
    for _id, account, mid, _irt, _refs, hint, date, _subj, _tid in rows:
        key = f"gm-{account}-{hint}" if hint else uf.find(f"{account}\x00{mid}")
        best = earliest.get(key)
        if best is None or (date, mid) < best:
            earliest[key] = (date, mid)
    threads: dict[str, dict] = {}
    for _id, account, mid, _irt, _refs, hint, date, subject, old in rows:
        key = f"gm-{account}-{hint}" if hint else uf.find(f"{account}\x00{mid}")
        tid = hint if hint else "t" + hashlib.sha1(f"{account}\x00{earliest[key][1]}".encode()).hexdigest()[:16]
        if tid != old:
            assignment.append((tid, _id))
        t = threads.get(tid)
        if t is None:
            threads[tid] = t = {"id": tid, "account": account, "subject": None, "first_date": date,
                                "last_date": date, "message_count": 0, "_first": (date, mid)}
        t["message_count"] += 1
        if (date, mid) <= t["_first"]:
            t["_first"], t["first_date"], t["subject"] = (date, mid), date, subject
        t["last_date"] = max(t["last_date"], date)
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany("UPDATE messages SET thread_id = ? WHERE id = ?", assignment)
        conn.execute("DELETE FROM threads")
        conn.executemany(
            "INSERT INTO threads (id, account, subject, first_date, last_date, message_count) VALUES (?, ?, ?, ?, ?, ?)",
            [(t["id"], t["account"], t["subject"], t["first_date"], t["last_date"], t["message_count"]) for t in threads.values()],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(threads)
