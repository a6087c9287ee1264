"""Threads: Gmail's thread id where the source has one, else Message-ID / In-Reply-To / References.

Links come from headers only (no subject guessing, as notmuch and public-inbox do);
a parent never seen is a shared placeholder, so siblings whose parent is
missing still land in one thread. Only ids that can name a message (with an
"@", RFC 5322) link: ``<yes>`` or ``<1>`` would join every message carrying it.
A thread is named after its earliest message (date, then Message-ID), so ids
read well and stay put as replies arrive.

The graph is kept in the database (``store.threads``), so a pass costs what
changed: ``update`` threads only the messages stored since the last pass (an id
watermark in ``pipeline_state``, committed with the result). A new message
joins the component of the ids it names; a message naming two threads merges
them, relabelling the smaller. ``rebuild`` is the full pass, giving the same
result from every message; ``update`` falls back to it where the cheap path
cannot be shown right: a new database (or a migration that dropped the
``threads`` state, which a step rewriting stored ids must do), ``--full``/a forced
pass, or a message that was threaded by its headers and later got a Gmail
thread id from a second copy (its links no longer count, which can split a
thread).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from syncagent.parse.headers import names_message
from syncagent.store import threads as store
from syncagent.store.db import transaction
from syncagent.store.state import load_max_message, load_stage_state, save_stage_state
from syncagent.store.threads import Component, ThreadMessage, ThreadRow

log = logging.getLogger(__name__)

_STATE = "threads"


@dataclass
class ThreadChanges:
    """What one pass changed. ``full``: everything was re-derived (then the sets are empty: treat all as changed).

    ``messages``: ids of the messages threaded for the first time in this pass;
    ``threads``: ids of the ``threads`` rows added, changed or removed.
    """

    full: bool = False
    messages: list[int] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)


def thread_name(account: str, first_message_id: str) -> str:
    return f"t{hashlib.sha1(f'{account}{chr(0)}{first_message_id}'.encode()).hexdigest()[:16]}"


def _links(m: ThreadMessage) -> list[str]:
    # names_message: rows stored before the parser dropped such ids
    return [other for other in ((m.refs or "").split() + ([m.in_reply_to] if m.in_reply_to else []))
            if names_message(other)]


def update(db, *, full: bool = False) -> ThreadChanges:
    """Thread the messages stored since the last pass; ``full`` (or no usable state) re-derives all of them.

    One transaction: the result and the watermark commit together, so a failed
    pass leaves both as they were and the next one redoes its work.
    """
    with transaction(db, "threads") as conn:
        state = load_stage_state(conn, _STATE)
        top = load_max_message(conn)
        if full or state is None or store.load_hint_arrived(conn, int(state["message"])):
            changed = _rebuild(conn)
            save_stage_state(conn, _STATE, {"message": top})
            return ThreadChanges(full=True, threads=changed)
        new = store.load_messages(conn, int(state["message"]))
        changes = _add(conn, new) if new else ThreadChanges()
        save_stage_state(conn, _STATE, {"message": top})
        return changes


def rebuild(db) -> int:
    """Recompute ``messages.thread_id``, the ``threads`` table and the graph from every message; return the thread count."""
    with transaction(db, "threads") as conn:
        top = load_max_message(conn)
        _rebuild(conn)
        save_stage_state(conn, _STATE, {"message": top})
        return store.count_threads(conn)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(self, x: tuple[str, str]) -> tuple[str, str]:
        parent = self.parent
        root = parent.setdefault(x, x)
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: tuple[str, str], b: tuple[str, str]) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _rebuild(conn) -> set[str]:
    """The full pass; only rows whose thread changed are written. Returns the thread ids added, changed or removed."""
    rows = store.load_messages(conn)
    uf = _UnionFind()
    for m in rows:
        if m.thread_hint:
            continue
        node = (m.account, m.message_id)
        uf.find(node)
        for other in _links(m):
            uf.union((m.account, other), node)
    roots = {node: uf.find(node) for node in uf.parent}
    components: dict[tuple[str, str], Component] = {}
    for root in roots.values():
        c = components.get(root)
        if c is None:
            c = components[root] = Component(len(components) + 1, root[0], 0, 0, None, None, None)
        c.size += 1
    wanted: dict[str, list] = {}  # thread id -> [id, account, subject, first, last, count]
    earliest: dict[tuple[str, str], tuple[str, str]] = {}  # (account, hint) of hinted rows -> (date, mid)
    for m in rows:
        first = (m.date, m.message_id)
        if m.thread_hint:
            key = (m.account, m.thread_hint)
            if key not in earliest or first < earliest[key]:
                earliest[key] = first
            continue
        c = components[roots[(m.account, m.message_id)]]
        c.messages += 1
        if c.first_date is None or first < (c.first_date, c.first_message_id or ""):
            c.first_date, c.first_message_id = first
        if c.last_date is None or m.date > c.last_date:
            c.last_date = m.date
    names = {root: thread_name(c.account, c.first_message_id or "") for root, c in components.items()}
    assignment: list[tuple[str, int]] = []
    for m in rows:
        if m.thread_hint:
            tid, is_first = m.thread_hint, (m.date, m.message_id) == earliest[(m.account, m.thread_hint)]
        else:
            root = roots[(m.account, m.message_id)]
            tid = names[root]
            is_first = m.message_id == components[root].first_message_id
        if tid != m.thread_id:
            assignment.append((tid, m.id))
        _count(wanted, tid, m, is_first)
    rows_wanted: dict[str, ThreadRow] = {tid: tuple(t) for tid, t in wanted.items()}
    stored = store.load_thread_rows(conn)
    store.save_message_threads(conn, assignment)
    gone = [tid for tid in stored if tid not in rows_wanted]
    changed = [t for tid, t in rows_wanted.items() if stored.get(tid) != t]
    store.save_threads(conn, changed, gone)
    store.save_whole_graph(conn, [(node[0], node[1], components[root].id) for node, root in roots.items()],
                           components.values())
    return {*gone, *(t[0] for t in changed)}


def _count(threads: dict[str, list], tid: str, m: ThreadMessage, is_first: bool) -> None:
    """Add one message to its thread's row, in message-row order (the row's account is its first row's)."""
    t = threads.get(tid)
    if t is None:
        t = threads[tid] = [tid, m.account, m.subject, m.date, m.date, 0]
    t[5] += 1
    if is_first:
        t[2], t[3] = m.subject, m.date
    if m.date > t[4]:
        t[4] = m.date


def _row(t: list) -> ThreadRow:
    return (t[0], t[1], t[2], t[3], t[4], t[5])


def _add(conn, new: list[ThreadMessage]) -> ThreadChanges:
    """Join ``new`` (the messages above the watermark, in id order) into the stored graph."""
    plain = [m for m in new if not m.thread_hint]
    keys = {(m.account, mid) for m in plain for mid in (m.message_id, *_links(m))}
    node_of = store.load_nodes(conn, keys)
    comps = store.load_components(conn, node_of.values())
    old_names = {cid: thread_name(c.account, c.first_message_id or "") for cid, c in comps.items()}
    merged_into: dict[int, int] = {}

    def find(c: int) -> int:
        while c in merged_into:
            c = merged_into[c]
        return c

    next_id = store.load_next_component(conn)
    new_nodes: dict[tuple[str, str], int] = {}
    members: dict[int, list[ThreadMessage]] = {}  # component -> its new messages
    for m in plain:
        nodes = list(dict.fromkeys((m.account, mid) for mid in (m.message_id, *_links(m))))
        roots = {find(node_of[n]) for n in nodes if n in node_of}
        if not roots:
            target = next_id
            next_id += 1
            comps[target] = Component(target, m.account, 0, 0, None, None, None)
        else:
            # Union by size: the larger component keeps its label, the smaller ones are relabelled.
            target = max(roots, key=lambda c: (comps[c].size, -c))
            for other in roots - {target}:
                _merge(comps[target], comps.pop(other))
                merged_into[other] = target
                members.setdefault(target, []).extend(members.pop(other, []))
        c = comps[target]
        for n in nodes:
            if n not in node_of:
                node_of[n] = new_nodes[n] = target
                c.size += 1
        c.messages += 1
        first = (m.date, m.message_id)
        if c.first_date is None or first < (c.first_date, c.first_message_id or ""):
            c.first_date, c.first_message_id = first
        if c.last_date is None or m.date > c.last_date:
            c.last_date = m.date
        members.setdefault(target, []).append(m)

    names_before: dict[int, set[str]] = {}
    for old, name in old_names.items():
        names_before.setdefault(find(old), set()).add(name)
    rows: list[ThreadRow] = []
    gone: set[str] = set()
    assignment: list[tuple[str, int]] = []
    for cid, c in comps.items():
        name = thread_name(c.account, c.first_message_id or "")
        olds = names_before.get(cid, set()) - {name}
        store.save_renamed(conn, c.account, sorted(olds), name)
        gone |= olds
        assignment.extend((name, m.id) for m in members.get(cid, []) if m.thread_id != name)
        firsts = [m for m in members.get(cid, []) if m.message_id == c.first_message_id]
        subject = firsts[0].subject if firsts else store.load_subject(conn, c.account, c.first_message_id or "")
        rows.append((name, c.account, subject, c.first_date, c.last_date, c.messages))
    store.save_graph(conn, relabel={old: find(old) for old in merged_into if old in old_names},
                     nodes=[(n[0], n[1], find(cid)) for n, cid in new_nodes.items()],
                     components=list(comps.values()),
                     dropped=[old for old in merged_into if old in old_names])

    hinted = [m for m in new if m.thread_hint]
    assignment.extend((m.thread_hint, m.id) for m in hinted if m.thread_hint and m.thread_id != m.thread_hint)
    store.save_message_threads(conn, assignment)
    for tid in sorted({m.thread_hint for m in hinted if m.thread_hint}):
        rows.append(_hinted_row(store.load_hinted(conn, tid)))
    gone -= {r[0] for r in rows}
    store.save_threads(conn, rows, sorted(gone))
    return ThreadChanges(messages=[m.id for m in new], threads={*gone, *(r[0] for r in rows)})


def _merge(into: Component, other: Component) -> None:
    into.size += other.size
    into.messages += other.messages
    if other.first_date is not None and (
            into.first_date is None
            or (other.first_date, other.first_message_id or "") < (into.first_date, into.first_message_id or "")):
        into.first_date, into.first_message_id = other.first_date, other.first_message_id
    if other.last_date is not None and (into.last_date is None or other.last_date > into.last_date):
        into.last_date = other.last_date


def _hinted_row(messages: list[ThreadMessage]) -> ThreadRow:
    """A Gmail thread's row, by the full pass's rule: named after each account's earliest message in it."""
    earliest: dict[str, tuple[str, str]] = {}
    for m in messages:
        first = (m.date, m.message_id)
        if m.account not in earliest or first < earliest[m.account]:
            earliest[m.account] = first
    t: dict[str, list] = {}
    for m in messages:
        _count(t, m.thread_hint or "", m, (m.date, m.message_id) == earliest[m.account])
    return _row(next(iter(t.values())))
