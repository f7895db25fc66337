"""The invariant ledger: every CALL either side sends, every answer it gets, and the counts that prove it.

Pure bookkeeping (times are passed in), so the counting rules are tested exactly. The invariant:
every CALL gets exactly one answer -- the peer's CALLRESULT/CALLERROR or a gateway CALLERROR --
within its timeout plus a margin. A call cut by a dropped connection is sent again with the same
message id once the station is back (as OCPP stations retry); its clock restarts at the resend.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Answer(enum.Enum):
    PEER = "peer"
    GATEWAY = "gateway"


@dataclass
class CallRecord:
    sent_at: float
    resends: int = 0
    answers: list[tuple[Answer, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    """What one side saw. ``unanswered`` and ``answered_twice`` must be 0; ``over_deadline`` too."""

    calls: int
    answered_by_peer: int
    answered_by_gateway: int
    unanswered: int
    answered_twice: int
    unknown_answers: int
    resent_after_disconnect: int
    over_deadline: int
    longest_seconds: float
    unanswered_ids: tuple[str, ...] = ()

    @property
    def holds(self) -> bool:
        return not (self.unanswered or self.answered_twice or self.unknown_answers or self.over_deadline)


class Ledger:
    """The calls of one side (stations, or the CSMS) by message id."""

    def __init__(self) -> None:
        self.calls: dict[str, CallRecord] = {}
        self.unknown_answers = 0

    def sent(self, message_id: str, now: float) -> None:
        """A CALL went out; sending an unanswered id again is a resend, which restarts its clock."""
        record = self.calls.get(message_id)
        if record is None:
            self.calls[message_id] = CallRecord(now)
        elif not record.answers:
            record.resends += 1
            record.sent_at = now

    def accepted(self, message_id: str, now: float) -> None:
        """The bus took the call (Kafka acknowledged it): its clock starts now, not when it was handed over."""
        record = self.calls.get(message_id)
        if record is not None and not record.answers:
            record.sent_at = now

    def withdraw(self, message_id: str) -> None:
        """The call was never delivered to the bus (Kafka refused it): it is not owed an answer."""
        self.calls.pop(message_id, None)

    def answered(self, message_id: str, by: Answer, now: float) -> None:
        record = self.calls.get(message_id)
        if record is None:
            self.unknown_answers += 1
        else:
            record.answers.append((by, now))

    def first_peer_answer_after(self, moment: float) -> float | None:
        """When the peer answered a call again first at or after ``moment`` (recovery after a fault)."""
        return min(
            (at for record in self.calls.values() for by, at in record.answers if by is Answer.PEER and at >= moment),
            default=None,
        )

    def gateway_answer_span(self) -> float:
        """Seconds from the first to the last call answered by a gateway CALLERROR (by when they were sent):
        how long the fault kept the peer from answering."""
        sent = [
            record.sent_at
            for record in self.calls.values()
            if record.answers and record.answers[0][0] is Answer.GATEWAY
        ]
        return max(sent) - min(sent) if sent else 0.0

    def outstanding(self) -> int:
        return sum(1 for record in self.calls.values() if not record.answers)

    def report(self, deadline: float) -> Report:
        """Count the calls; an answer later than ``deadline`` seconds after its (last) send is over the deadline."""
        first = [(record, record.answers[0]) for record in self.calls.values() if record.answers]
        waits = [at - record.sent_at for record, (_, at) in first]
        return Report(
            calls=len(self.calls),
            answered_by_peer=sum(1 for _, (by, _) in first if by is Answer.PEER),
            answered_by_gateway=sum(1 for _, (by, _) in first if by is Answer.GATEWAY),
            unanswered=len(self.calls) - len(first),
            answered_twice=sum(1 for record in self.calls.values() if len(record.answers) > 1),
            unknown_answers=self.unknown_answers,
            resent_after_disconnect=sum(1 for record in self.calls.values() if record.resends),
            over_deadline=sum(1 for wait in waits if wait > deadline),
            longest_seconds=max(waits, default=0.0),
            unanswered_ids=tuple(m for m, record in self.calls.items() if not record.answers)[:5],
        )
