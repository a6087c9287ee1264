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
from array import array
from collections.abc import Iterator
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
            _rebuild(conn)
            save_stage_state(conn, _STATE, {"message": top})
            return ThreadChanges(full=True)
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


def _occurrences(conn) -> Iterator[tuple[str, str, str]]:
    for account, mid, in_reply_to, refs in store.load_plain_links(conn):
        yield account, mid, mid
        for other in (refs or "").split() + ([in_reply_to] if in_reply_to else []):
            if names_message(other):  # rows stored before the parser dropped such ids
                yield account, mid, other


def _rebuild(conn) -> None:
    """The full pass; only rows whose thread changed are written.

    Memory stays flat in the mailbox's size: Message-IDs are numbered in
    SQLite, the union-find runs over integer arrays, and messages are read back
    sorted by component (earliest first) and written in batches.
    """
    count = store.save_full_occurrences(conn, _occurrences(conn))
    parent = array("q", range(count + 1))

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for a, b in store.load_full_edges(conn):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    # Components are numbered in order of their first node, as the stored graph numbers them.
    label = array("q", bytes(8 * (count + 1)))
    sizes = array("q", [0])
    for node in range(1, count + 1):
        root = find(node)
        if not label[root]:
            label[root] = len(sizes)
            sizes.append(0)
        label[node] = label[root]
        sizes[label[node]] += 1
    store.save_full_nodes(conn, ((node, label[node]) for node in range(1, count + 1)))
    del label
    store.begin_full_threads(conn)
    comps: list[Component] = []
    rows: list[ThreadRow] = []
    assignment: list[tuple[str, int]] = []

    def flush() -> None:
        store.save_full_part(conn, components=comps, rows=rows, assignment=assignment)
        comps.clear()
        rows.clear()
        assignment.clear()

    c: Component | None = None
    name: str = ""
    subject: str | None = None
    for m in store.load_plain_by_component(conn):
        if c is None or m.component != c.id:
            if c is not None:
                rows.append((name, c.account, subject, c.first_date, c.last_date, c.messages))
                if len(comps) >= _BATCH:
                    flush()
            c = Component(m.component, m.account, sizes[m.component], 0, m.date, m.message_id, m.date)
            comps.append(c)
            name, subject = thread_name(m.account, m.message_id), m.subject
        c.messages += 1
        if m.date > (c.last_date or ""):
            c.last_date = m.date
        if m.thread_id != name:
            assignment.append((name, m.id))
    if c is not None:
        rows.append((name, c.account, subject, c.first_date, c.last_date, c.messages))
    group: list[ThreadMessage] = []
    for h in store.load_hinted_by_thread(conn):
        if group and h.thread_hint != group[0].thread_hint:
            rows.append(_hinted_row(group))
            group = []
            if len(rows) >= _BATCH:
                flush()
        group.append(h)
        if h.thread_id != h.thread_hint:
            assignment.append((h.thread_hint or "", h.id))
    if group:
        rows.append(_hinted_row(group))
    flush()
    store.finish_full_threads(conn)


_BATCH = 5000


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
