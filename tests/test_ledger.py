"""The pure ledger: every cell of the turn table, response times, anchors and the instant."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.ledger import turns as ledger
from syncagent.ledger.turns import Event, Reply, compute

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
NOW = datetime(2026, 12, 31, tzinfo=timezone.utc)


def ev(kind: str, hours: float, ref: str | None = None) -> Event:
    """An event ``hours`` after T0; refs default to a unique name per kind and time."""
    prefix = "meeting" if kind == "meeting" else "message"
    return Event(T0 + timedelta(hours=hours), kind, ref or f"{prefix}:{kind}{hours}")


# How to reach each state from scratch, with events at hours 0, 1, ...
PREFIX = {
    None: [],
    "ASKED": ["out"],
    "REPLIED": ["out", "in"],
    "MET": ["meeting"],
    "INBOUND": ["in"],
    "ACKED": ["in", "out"],
}

# Every cell of DESIGN.md's table: (state, event kind) -> next state.
TABLE = [
    (None, "out", "ASKED"), (None, "in", "INBOUND"), (None, "meeting", "MET"),
    ("ASKED", "out", "ASKED"), ("ASKED", "in", "REPLIED"), ("ASKED", "meeting", "MET"),
    ("REPLIED", "out", "ACKED"), ("REPLIED", "in", "REPLIED"), ("REPLIED", "meeting", "MET"),
    ("MET", "out", "ACKED"), ("MET", "in", "MET"), ("MET", "meeting", "MET"),
    ("INBOUND", "out", "ACKED"), ("INBOUND", "in", "INBOUND"), ("INBOUND", "meeting", "MET"),
    ("ACKED", "out", "ASKED"), ("ACKED", "in", "ACKED"), ("ACKED", "meeting", "MET"),
]


def build(kinds: list[str]) -> list[Event]:
    return [ev(kind, float(i)) for i, kind in enumerate(kinds)]


def test_table_is_complete():
    """The test table and the module's transition table both cover all 18 cells, identically."""
    assert len(TABLE) == 18
    assert {(s, k): n for s, k, n in TABLE} == {
        (s, k): n for s, row in ledger.TRANSITIONS.items() for k, n in row.items()
    }


@pytest.mark.parametrize("state", list(PREFIX))
def test_prefixes_reach_their_state(state):
    """Each prefix used by the table really lands in the state it names."""
    assert compute(build(PREFIX[state]), NOW).state == state


@pytest.mark.parametrize(("state", "kind", "expected"), TABLE)
def test_every_cell(state, kind, expected):
    """One event of each kind from each state moves the ledger as the table says, with the right anchors."""
    events = build(PREFIX[state] + [kind])
    last = events[-1]
    before = compute(events[:-1], NOW)
    result = compute(events, NOW)
    assert result.state == expected
    # A reply is recorded exactly on ASKED -> REPLIED.
    new_replies = result.replies[len(before.replies):]
    if (state, kind) == ("ASKED", "in"):
        assert new_replies == (Reply(events[-2].at, last.at, last.key),)
        assert new_replies[0].seconds == 3600 and new_replies[0].ref == last.ref
    else:
        assert new_replies == ()
    # state_event moves only when the state changes.
    assert result.state_event == (last if expected != state else before.state_event)
    # unanswered counts the ASKED run and is 0 elsewhere.
    assert result.unanswered == ((before.unanswered + 1 if state == "ASKED" else 1) if expected == "ASKED" else 0)
    # owed_since: set on entering REPLIED/MET, kept inside, cleared elsewhere.
    if expected in ("REPLIED", "MET"):
        assert result.owed_since == (before.owed_since if expected == state else last)
    else:
        assert result.owed_since is None
    assert result.last_interaction_at == last.at
    if kind == "out":
        assert result.last_outgoing == last
    assert result.last_message == ([e for e in events if e.kind != "meeting"] or [None])[-1]


def test_empty_ledger():
    """No events: no state, no counts, no anchors."""
    result = compute([], NOW)
    assert result == ledger.Ledger(None, (), 0, 0, None, None, None, 0, None, None, None, None, ())


def test_follow_ups_do_not_restart_the_clock():
    """Two follow-ups then a reply: response time runs from the first message of the run."""
    events = build(["out", "out", "out", "in"])
    result = compute(events, NOW)
    assert result.replies == (Reply(events[0].at, events[3].at, events[3].key),)
    assert result.replies[0].seconds == 3 * 3600
    assert result.first_reply_at == events[3].at
    assert result.messages_sent == 3 and result.messages_received == 1


def test_unanswered_counts_the_current_run_only():
    """After a reply and a thank-you, a new ask starts a new run of one, with its own clock."""
    events = build(["out", "out", "in", "out", "out", "out"])
    result = compute(events, NOW)
    assert result.state == "ASKED"
    assert result.unanswered == 2
    assert result.last_outgoing == events[5]
    assert result.state_event == events[4]  # the new ask
    later = compute(events + [ev("in", 30)], NOW)
    assert [r.seconds for r in later.replies] == [2 * 3600, 26 * 3600]
    assert later.replies[1].asked_at == events[4].at
    assert later.first_reply_at == events[2].at


def test_reply_in_another_thread_counts():
    """Threads and subjects do not matter: an incoming message answers the open ask."""
    ask = Event(T0, "out", "message:1", "Coffee?")
    answer = Event(T0 + timedelta(days=2), "in", "message:9", "Something else entirely")
    result = compute([ask, answer], NOW)
    assert result.state == "REPLIED"
    assert result.replies[0].seconds == 2 * 86400


def test_time_zones_on_both_sides():
    """A Tokyo ask and a New York reply are compared in UTC, exact to the second."""
    asked = datetime(2026, 11, 3, 9, 0, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 00:00:00Z
    replied = datetime(2026, 11, 2, 19, 30, 17, tzinfo=ZoneInfo("America/New_York"))  # 3 Nov 00:30:17Z
    result = compute([Event(replied, "in", "message:2"), Event(asked, "out", "message:1")], NOW)
    assert result.replies[0].seconds == 30 * 60 + 17
    assert result.replies[0].asked_at == datetime(2026, 11, 3, 0, 0, tzinfo=timezone.utc)
    assert all(e.at.utcoffset() == timedelta(0) for e in result.events)
    assert result.first_outreach_at.tzinfo is not None


def test_naive_times_are_utc():
    """A naive datetime (as the database stores UTC) is read as UTC, for events and for now."""
    naive = datetime(2026, 11, 2, 9, 0)
    result = compute([Event(naive, "out", "message:1")], datetime(2026, 11, 2, 9, 0))
    assert result.state == "ASKED"
    assert result.first_outreach_at == T0


def test_events_after_now_are_ignored():
    """A reply dated after the instant does not exist yet; an event exactly at now counts."""
    events = build(["out", "in"])
    assert compute(events, events[1].at - timedelta(seconds=1)).state == "ASKED"
    at_now = compute(events, events[1].at)
    assert at_now.state == "REPLIED"
    assert at_now.events == tuple(events)


def test_meeting_not_ended_is_ignored():
    """A meeting counts at its end: while it runs the ledger stays ASKED."""
    ask = ev("out", 0)
    meeting = Event(T0 + timedelta(days=1, hours=1), "meeting", "meeting:7", "Coffee")
    during = compute([ask, meeting], T0 + timedelta(days=1, minutes=30))
    assert during.state == "ASKED" and during.owed_since is None
    after = compute([ask, meeting], T0 + timedelta(days=1, hours=2))
    assert after.state == "MET"
    assert after.owed_since == meeting
    assert after.replies == ()


def test_duplicate_event_is_ignored():
    """The same ref twice counts once, even with a different time on the second copy."""
    ask = ev("out", 0, "message:1")
    result = compute([ask, ask, Event(T0 + timedelta(hours=5), "out", "message:1")], NOW)
    assert result.messages_sent == 1
    assert result.unanswered == 1
    assert result.events == (ask,)


def test_a_message_named_by_its_ref_or_its_id_is_one_event():
    """The store names a message by its id, a caller may spell out "message:<id>": one message either way."""
    spelled, numbered = ev("out", 0, "message:12"), Event(T0 + timedelta(hours=2), "out", 12)
    result = compute([numbered, spelled], NOW)
    assert result.messages_sent == 1
    assert result.events == (spelled,) and result.events[0].ref == "message:12"
    assert spelled == Event(T0, "out", 12) and hash(spelled) == hash(Event(T0, "out", 12))
    assert Event(T0, "out", "message:012").ref == "message:012"  # not an id as the store writes it: kept as given


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["out", "in", "meeting"]), max_size=12), st.integers(0, 12))
def test_replaying_the_prefixes_in_one_walk_gives_each_prefix_ledger(kinds, first):
    """A settled reminder is found by replaying its contact's history one event at a time: each
    ledger of the one walk is the ledger of that prefix on its own, untouched by what follows."""
    considered = ledger.prepare(build(kinds), NOW)
    walked = list(ledger.replay(considered, first))
    expected = [ledger.run(considered[: i + 1]) for i in range(first, len(considered))]
    assert walked == (expected if considered else [compute((), NOW)])
    if considered and first < len(considered):
        assert walked[-1] == compute(considered, NOW)
        assert walked[0].events == considered[: first + 1]


def test_a_replay_from_late_in_a_long_history_starts_at_its_checkpoint(monkeypatch):
    """Replaying from the end of a long history gives the same ledgers from the checkpoint before
    it as from the start, and walks only from there."""
    monkeypatch.setattr(ledger, "_CHECKPOINT", 4)
    kinds = ["out", "in", "in", "out", "out", "meeting", "in", "out", "in", "out", "out", "in", "out", "in"]
    whole = compute(build(kinds * 3), NOW)
    assert [c[0] for c in whole.checkpoints] == list(range(4, len(whole.events) + 1, 4))
    for first in range(len(whole.events)):
        assert list(ledger.replay(whole.events, first, whole)) == list(ledger.replay(whole.events, first))
    walked = []

    class Counting(tuple):
        def __getitem__(self, i):
            walked.append(i)
            return tuple.__getitem__(self, i)

    events = Counting(whole.events)
    resumed = compute(events, NOW)
    resumed = ledger.Ledger(**{**{f: getattr(resumed, f) for f in ledger.Ledger.__dataclass_fields__}, "events": events})
    walked.clear()
    assert list(ledger.replay(events, len(events) - 2, resumed)) == list(ledger.replay(whole.events, len(events) - 2))
    assert len([i for i in walked if isinstance(i, int)]) <= 4 + 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["out", "in", "meeting"]),
                          st.sampled_from([None, "A", "B"]), st.integers(0, 40)), max_size=16))
def test_events_in_the_same_second_keep_the_whole_order(drawn):
    """Events sorted by their instant alone, then each instant's events by the whole order: the
    same as by the whole order, however many share a second."""
    events = [Event(T0 + timedelta(seconds=at), kind, f"meeting:{n}" if kind == "meeting" else n, subject)
              for at, kind, subject, n in drawn]
    considered = ledger.prepare(events, NOW)
    assert list(considered) == sorted(considered, key=ledger._order)


def test_unsorted_input():
    """Events passed in any order give the same ledger as sorted ones."""
    events = build(["out", "out", "in", "in", "out", "meeting", "in", "out", "out"])
    assert compute(list(reversed(events)), NOW) == compute(events, NOW)
    shuffled = events[4:] + events[:4]
    assert compute(shuffled, NOW) == compute(events, NOW)


def test_ties_do_not_depend_on_input_order_or_row_numbers():
    """Two events in the same second: their message to you counts first, whatever order or ids they have."""
    for out_ref, in_ref in (("message:10", "message:11"), ("message:11", "message:10"), ("message:9", "message:10")):
        out, answer = Event(T0, "out", out_ref), Event(T0, "in", in_ref)
        assert compute([answer, out], NOW) == compute([out, answer], NOW)
        assert compute([answer, out], NOW).state == "ACKED"
        assert compute([answer, out], NOW).replies == ()


def test_owed_since_keeps_the_first_reply():
    """They wrote twice: the thank-you is owed from the first reply."""
    events = build(["out", "in", "in"])
    result = compute(events, NOW)
    assert result.owed_since == events[1]
    assert result.last_message == events[2]
    assert len(result.replies) == 1


def test_owed_since_moves_to_a_meeting_after_a_reply():
    """A meeting after a reply: the thank-you is now owed from the meeting's end; another meeting keeps it."""
    events = build(["out", "in", "meeting", "in", "meeting"])
    result = compute(events, NOW)
    assert result.state == "MET"
    assert result.owed_since == events[2]
    assert result.state_event == events[2]
    assert result.last_message == events[3]
    assert result.last_interaction_at == events[4].at


def test_thank_you_settles_the_debt():
    """An outgoing message after a meeting moves to ACKED and clears owed_since; check-in anchors on it."""
    events = build(["meeting", "out", "in"])
    result = compute(events, NOW)
    assert result.state == "ACKED"
    assert result.owed_since is None
    assert result.last_message == events[2]
    assert result.first_outreach_at == events[1].at
    assert result.replies == ()  # an answer to a thank-you is not a reply to an ask


def test_unknown_kind_is_rejected():
    """A misspelled kind is a programming error, caught loudly."""
    with pytest.raises(ValueError):
        compute([Event(T0, "sent", "message:1")], NOW)
