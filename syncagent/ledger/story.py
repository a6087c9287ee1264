"""A relationship told in order: what each event of a contact's ledger meant.

``story(events)`` replays the same turn table as ``turns.compute`` and names every
step the way a person would tell it before a meeting: the first outreach, each
follow-up, each reply with how long it took, the thank-yous, the meetings. Pure,
so the brief, the assistant and any other surface tell the same story.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from syncagent.ledger.turns import ASKED, IN, MEETING, MET, OUT, REPLIED, TRANSITIONS, Event

# What a step is, in the order a reader meets them.
OUTREACH = "outreach"  # an outgoing message that starts a new ask
FOLLOW_UP = "follow_up"  # another outgoing message while still unanswered
REPLY = "reply"  # their answer to an ask (with the response time)
THANK_YOU = "thank_you"  # the user's message after a reply or a meeting
MESSAGE_IN = "message_in"  # they wrote, not in answer to an ask
MESSAGE_OUT = "message_out"  # the user wrote, not an ask (answering their message)
MEETING_HELD = "meeting"

LABELS = {
    OUTREACH: "first outreach",
    FOLLOW_UP: "follow-up",
    REPLY: "reply",
    THANK_YOU: "thank-you",
    MESSAGE_IN: "message from them",
    MESSAGE_OUT: "message to them",
    MEETING_HELD: "meeting",
}


@dataclass(frozen=True)
class Step:
    at: datetime
    what: str  # one of the constants above
    ref: str
    subject: str | None
    response_seconds: int | None = None  # REPLY: since the first message of the run it answers
    ask_number: int | None = None  # OUTREACH: 1 for the first ask ever, 2 for the next new ask...

    @property
    def label(self) -> str:
        if self.what == OUTREACH and self.ask_number and self.ask_number > 1:
            return "new ask"
        return LABELS[self.what]


def story(events: Iterable[Event]) -> list[Step]:
    """Every event (already prepared: in order, at or before the instant) named by what it did."""
    state: str | None = None
    run_start: datetime | None = None
    asks = 0
    steps: list[Step] = []
    for event in events:
        nxt = TRANSITIONS[state][event.kind]
        seconds = None
        if event.kind == OUT:
            if nxt == ASKED and state != ASKED:
                asks += 1
                what, run_start = OUTREACH, event.at
            elif nxt == ASKED:
                what = FOLLOW_UP
            elif state in (REPLIED, MET):
                what = THANK_YOU
            else:
                what = MESSAGE_OUT
        elif event.kind == IN:
            if state == ASKED and run_start is not None:
                what, seconds = REPLY, (event.at - run_start) // timedelta(seconds=1)
            else:
                what = MESSAGE_IN
        elif event.kind == MEETING:
            what = MEETING_HELD
        else:  # pragma: no cover - prepare() rejects unknown kinds
            raise ValueError(event.kind)
        if nxt != ASKED:
            run_start = None
        steps.append(Step(event.at, what, event.ref, event.subject, seconds,
                          asks if what == OUTREACH else None))
        state = nxt
    return steps


