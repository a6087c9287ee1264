"""The relationship ledger: a pure state machine of turns between the user and one contact.

``compute(events, now)`` takes the contact's messages and meetings (any order, any
time zone) and the instant to evaluate at, and returns a frozen ``Ledger``: the
current state, every reply with its response time, and the anchors the reminder
rules need. No I/O here, so every rule is tested with a table of cases.

The table (DESIGN.md, "The ledger rules"):

    state      out      in        meeting
    (none)     ASKED    INBOUND   MET
    ASKED      ASKED    REPLIED   MET
    REPLIED    ACKED    REPLIED   MET
    MET        ACKED    MET       MET
    INBOUND    ACKED    INBOUND   MET
    ACKED      ASKED    ACKED     MET
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from operator import attrgetter
from typing import Any

OUT, IN, MEETING = "out", "in", "meeting"
KINDS = (OUT, IN, MEETING)

ASKED, REPLIED, MET, INBOUND, ACKED = "ASKED", "REPLIED", "MET", "INBOUND", "ACKED"
STATES = (None, ASKED, REPLIED, MET, INBOUND, ACKED)

# state -> kind -> next state. A meeting always leads to MET.
TRANSITIONS: dict[str | None, dict[str, str]] = {
    None: {OUT: ASKED, IN: INBOUND, MEETING: MET},
    ASKED: {OUT: ASKED, IN: REPLIED, MEETING: MET},
    REPLIED: {OUT: ACKED, IN: REPLIED, MEETING: MET},
    MET: {OUT: ACKED, IN: MET, MEETING: MET},
    INBOUND: {OUT: ACKED, IN: INBOUND, MEETING: MET},
    ACKED: {OUT: ASKED, IN: ACKED, MEETING: MET},
}


_MESSAGE = "message:"


def key_of(ref: str | int) -> str | int:
    """What an ``Event`` keeps of ``ref``: a message's id as the number, any other ref as given."""
    if isinstance(ref, str) and ref.startswith(_MESSAGE):
        digits = ref[len(_MESSAGE):]
        if digits.isascii() and digits.isdigit() and str(int(digits)) == digits:
            return int(digits)
    return ref


def message_pk(ref: str | int) -> int:
    """The messages.id a message's ref or ``Event.key`` names (an event keeps it as the number)."""
    if isinstance(ref, int):
        return ref
    return int(ref[8:]) if ref.startswith(_MESSAGE) else int(ref.rpartition(":")[2])


class Event:
    """One message or meeting in a contact's history: when (aware, UTC; a meeting's end), which
    kind ("out" | "in" | "meeting"), its ``ref`` ("message:<messages.id>" or
    "meeting:<meetings.id>") and subject. Frozen and compared by value, like a dataclass."""

    # A full pass holds every contact's events at once (880,000 at a million messages). A
    # message's ref is kept as its id, a number half the size of the string, and spelled out
    # when read; any other ref is kept as given.
    __slots__ = ("at", "kind", "key", "subject")
    at: datetime
    kind: str
    key: str | int  # what ref names: a message's id, else the ref itself
    subject: str | None

    def __init__(self, at: datetime, kind: str, ref: str | int, subject: str | None = None) -> None:
        if type(ref) is str:
            ref = key_of(ref)
        setter = object.__setattr__
        setter(self, "at", at)
        setter(self, "kind", kind)
        setter(self, "key", ref)
        setter(self, "subject", subject)

    @property
    def ref(self) -> str:
        key = self.key
        return key if isinstance(key, str) else f"{_MESSAGE}{key}"

    def moved(self, at: datetime) -> Event:
        return Event(at, self.kind, self.key, self.subject)

    def _fields(self) -> tuple[datetime, str, str | int, str | None]:
        return self.at, self.kind, self.key, self.subject

    def __eq__(self, other: object) -> bool:
        return type(other) is Event and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"Event(at={self.at!r}, kind={self.kind!r}, ref={self.ref!r}, subject={self.subject!r})"

    def __reduce__(self) -> tuple[type[Event], tuple[datetime, str, str | int, str | None]]:
        return Event, self._fields()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"an Event is frozen: cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"an Event is frozen: cannot delete {name}")


@dataclass(frozen=True, slots=True)
class Reply:
    asked_at: datetime  # the FIRST outgoing message of the unanswered run it answers
    replied_at: datetime
    # The answer's ``Event.key``. A full pass holds every contact's replies at once: the ref and
    # the seconds are spelled out when read, not kept (a string and a number per reply).
    key: str | int

    @property
    def seconds(self) -> int:
        """replied_at - asked_at, exact to the second."""
        return (self.replied_at - self.asked_at) // _ONE_SECOND

    @property
    def ref(self) -> str:
        key = self.key
        return key if isinstance(key, str) else f"{_MESSAGE}{key}"


@dataclass(frozen=True, slots=True)
class Ledger:
    state: str | None  # None | "ASKED" | "REPLIED" | "MET" | "INBOUND" | "ACKED"
    replies: tuple[Reply, ...]
    messages_sent: int
    messages_received: int
    first_outreach_at: datetime | None
    first_reply_at: datetime | None
    last_interaction_at: datetime | None  # last event of any kind
    unanswered: int  # outgoing messages in the current ASKED run (0 unless ASKED)
    last_outgoing: Event | None  # the last outgoing message (follow-up anchor)
    owed_since: Event | None  # in REPLIED/MET: the event the thank-you is due from
    last_message: Event | None  # last message either direction (check-in anchor)
    state_event: Event | None  # the event that moved the ledger into its current state
    events: tuple[Event, ...]  # events considered (at <= now), in order
    run_start: Event | None = None  # in ASKED: the first outgoing message of the unanswered run
    asks: tuple[Event, ...] = ()  # outgoing messages that started a new ask (from none or ACKED)
    # The walk's state every _CHECKPOINT events, so ``replay`` of a long history from a late
    # event starts near it: bookkeeping, not part of what the ledger says.
    checkpoints: tuple[tuple[Any, ...], ...] = field(default=(), compare=False, repr=False)


_ONE_SECOND = timedelta(seconds=1)
_CHECKPOINT = 512  # events between two checkpoints: a replay walks at most this many before its first


def to_utc(dt: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already (the database's convention)."""
    if dt.tzinfo is timezone.utc:
        return dt  # what the store gives: nothing to convert
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def prepare(events: Iterable[Event], now: datetime) -> tuple[Event, ...]:
    """The events that count at ``now``: in UTC, at or before it, each ref once, in time order.

    A meeting's ``at`` is its end, so one still running is left out like any future event.
    Where a ref appears twice the earliest copy wins, so a duplicate never counts twice.
    """
    now = to_utc(now)
    kept: dict[str | int, Event] = {}
    for event in events:
        if event.kind not in KINDS:
            raise ValueError(f"unknown event kind {event.kind!r} for {event.ref}")
        at = to_utc(event.at)
        if at > now:
            continue
        if at is not event.at:
            event = event.moved(at)
        seen = kept.get(event.key)
        if seen is None or event.at < seen.at:
            kept[event.key] = event
    return tuple(_in_order(kept.values()))


_AT = attrgetter("at")


def _in_order(events: Iterable[Event]) -> list[Event]:
    """``events`` sorted by ``_order``. Its first element is the instant, and instants are seldom
    shared: sorted by instant alone (in C), then only each run of one instant by the whole key."""
    out = sorted(events, key=_AT)
    instants = [e.at for e in out]
    if len(set(instants)) == len(instants):
        return out
    i, n = 0, len(out)
    while i < n:
        j, at = i + 1, instants[i]
        while j < n and instants[j] == at:
            j += 1
        if j - i > 1:
            out[i:j] = sorted(out[i:j], key=_order)
        i = j
    return out


# Events in the same second have no true order; this one does not depend on which folder
# or account synced first: what they wrote before what you wrote (so no zero-second
# "reply"), then by subject; the ref only separates what is otherwise identical.
_KIND_ORDER = {IN: 0, OUT: 1, MEETING: 2}


def _order(event: Event) -> tuple[datetime, int, str, str]:
    key = event.key  # the ref spelled out here, not through the property: a sort calls this per event
    return (event.at, _KIND_ORDER[event.kind], event.subject or "", key if isinstance(key, str) else f"{_MESSAGE}{key}")


def compute(events: Iterable[Event], now: datetime) -> Ledger:
    """Run the turn state machine over one contact's events as they stood at ``now``."""
    return run(prepare(events, now))


def run(considered: tuple[Event, ...]) -> Ledger:
    """``compute`` of events ``prepare`` already gave (or a prefix of them: it is prepared too)."""
    return next(replay(considered, max(len(considered) - 1, 0)))  # the ledger of the whole


def replay(considered: tuple[Event, ...], first: int, whole: Ledger | None = None) -> Iterator[Ledger]:
    """The ledger of each prefix ``considered[:i + 1]`` for i from ``first`` on, in one walk: what
    ``run`` of each prefix gives, without walking the history again for each (the empty
    ledger first when ``first`` is 0 and there are no events). ``whole``: the ledger of all of
    ``considered``, whose checkpoints let the walk start at the last one before ``first``."""
    state: str | None = None
    replies: list[Reply] = []
    sent = received = 0
    first_outreach: datetime | None = None
    run_start: Event | None = None  # first outgoing message of the current ASKED run
    unanswered = 0
    last_outgoing = last_message = owed_since = state_event = None
    asks: list[Event] = []
    checkpoints: list[tuple[Any, ...]] = []
    start = 0
    if whole is not None and whole.events is considered:
        usable = [c for c in whole.checkpoints if c[0] <= first]
        if usable:
            (start, state, sent, received, first_outreach, run_start, unanswered, last_outgoing, last_message,
             owed_since, state_event, n_replies, n_asks) = usable[-1]
            replies, asks = list(whole.replies[:n_replies]), list(whole.asks[:n_asks])
            checkpoints = list(whole.checkpoints[:len(usable)])

    def ledger(upto: int) -> Ledger:
        return Ledger(
            state=state,
            replies=tuple(replies),
            messages_sent=sent,
            messages_received=received,
            first_outreach_at=first_outreach,
            first_reply_at=replies[0].replied_at if replies else None,
            last_interaction_at=considered[upto - 1].at if upto else None,
            unanswered=unanswered,
            last_outgoing=last_outgoing,
            owed_since=owed_since,
            last_message=last_message,
            state_event=state_event,
            events=considered if upto == len(considered) else considered[:upto],
            run_start=run_start,
            asks=tuple(asks),
            checkpoints=tuple(checkpoints),
        )

    if not considered:
        yield ledger(0)
        return
    for i in range(start, len(considered)):
        event = considered[i]
        nxt = TRANSITIONS[state][event.kind]
        if event.kind == OUT:
            sent += 1
            last_outgoing = last_message = event
            if first_outreach is None:
                first_outreach = event.at
            if nxt == ASKED:
                if state != ASKED:  # a new ask starts a new unanswered run
                    run_start, unanswered = event, 0
                    asks.append(event)
                unanswered += 1  # follow-ups add to the run but never restart its clock
        elif event.kind == IN:
            received += 1
            last_message = event
            if state == ASKED:
                assert run_start is not None
                replies.append(_reply(run_start, event))
        # The thank-you anchor: set on entering REPLIED or MET, kept while we stay there
        # (a second reply or another meeting does not move it), cleared on leaving.
        if nxt in (REPLIED, MET):
            if nxt != state:
                owed_since = event
        else:
            owed_since = None
        if nxt != ASKED:
            run_start, unanswered = None, 0
        if nxt != state:
            state_event = event
        state = nxt
        if not (i + 1) % _CHECKPOINT:
            checkpoints.append((i + 1, state, sent, received, first_outreach, run_start, unanswered, last_outgoing,
                                last_message, owed_since, state_event, len(replies), len(asks)))
        if i >= first:
            yield ledger(i + 1)


def _reply(asked: Event, answer: Event) -> Reply:
    return Reply(asked_at=asked.at, replied_at=answer.at, key=answer.key)
