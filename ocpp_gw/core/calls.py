"""What one station connection has in flight, and what happens when time runs out or it ends.

:class:`CallBook` holds the state of :class:`ocpp_gw.core.session.StationSession` (the call the
station waits on, the call the CSMS waits on, the CSMS calls queued behind them, the ids of calls
that timed out) and the events that are not frames: the clock (:meth:`CallBook.expire`), a station
CALL Kafka did not take and the end of the connection. Each answers every call it gives up with a
CALLERROR, so no call is ever dropped in silence.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TypeVar

from .actions import Action, Notice, PendingCall, SendToStation, SessionLimits, refuse_csms_call
from .frames import Call, CallError, CallResult
from .protocol import Fault, OcppVersion
from .validation import PayloadValidator, StrictMode, Violation

V = TypeVar("V")

RECENT_TIMEOUTS_KEPT = 32
"""How many timed-out call ids a session remembers to tell a late answer from a stray one."""


class State(enum.Enum):
    WAITING = "waiting"
    STATION_CALL = "station_call"
    CSMS_CALL = "csms_call"
    CROSSING = "crossing"
    CLOSED = "closed"


@dataclass
class CallBook:
    """Call bookkeeping for one station connection."""

    station_id: str
    version: OcppVersion
    limits: SessionLimits = field(default_factory=SessionLimits)
    validator: PayloadValidator | None = None
    station_call: PendingCall | None = None
    csms_call: PendingCall | None = None
    csms_queue: deque[PendingCall] = field(default_factory=deque)
    closed: bool = False
    closing: bool = False
    """A close of the connection was asked for: the station's further frames are not read."""
    _late_station_calls: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _late_csms_calls: OrderedDict[str, PendingCall] = field(default_factory=OrderedDict)

    @property
    def state(self) -> State:
        if self.closed:
            return State.CLOSED
        if self.station_call and self.csms_call:
            return State.CROSSING
        if self.station_call:
            return State.STATION_CALL
        if self.csms_call:
            return State.CSMS_CALL
        return State.WAITING

    @property
    def in_flight(self) -> bool:
        """A call in either direction waits for its answer."""
        return self.station_call is not None or self.csms_call is not None

    @property
    def queued(self) -> int:
        """CSMS CALLs waiting for their turn."""
        return len(self.csms_queue)

    @property
    def next_deadline(self) -> float | None:
        """The earliest time at which :meth:`expire` has something to do."""
        deadlines = [call.deadline for call in (self.station_call, self.csms_call) if call]
        deadlines.extend(call.deadline for call in self.csms_queue)
        return min(deadlines, default=None)

    def _check(
        self, message: Call | CallResult | CallError, kind: str, action: str | None
    ) -> tuple[StrictMode, Violation | None]:
        """Strict mode's verdict on a CALL (``action`` None) or on the CALLRESULT to ``action``."""
        if self.validator is None or isinstance(message, CallError):
            return StrictMode.OFF, None
        if isinstance(message, Call):
            return self.validator.verdict(kind, self.version, message.action, message.payload, True)
        assert action is not None
        return self.validator.verdict(kind, self.version, action, message.payload, False)

    def _dispatch(self, now: float) -> list[Action]:
        """Send the next queued CSMS CALL if the connection is free, failing the expired ones."""
        actions: list[Action] = []
        while self.csms_call is None and self.station_call is None and self.csms_queue:
            queued = self.csms_queue.popleft()
            if queued.deadline <= now:
                actions += self._answer_csms_call(queued, Fault.TIMEOUT, "call waited too long in the gateway queue")
                continue
            self.csms_call = PendingCall(
                queued.message_id,
                queued.action,
                queued.payload,
                queued.text,
                now + self.limits.station_response_timeout,
                queued.received_at,
            )
            actions.append(SendToStation(queued.text))
        return actions

    def _answer_csms_call(
        self,
        call: PendingCall,
        fault: Fault,
        description: str,
        event: str = "csms_call_failed",
        code: str | None = None,
    ) -> list[Action]:
        return refuse_csms_call(self.version, call, fault, description, event, code)

    # Clock, delivery failures and the end of the connection.

    def expire(self, now: float) -> list[Action]:
        """Answer every call whose deadline has passed."""
        if self.closed:
            return []
        actions: list[Action] = []
        if self.station_call is not None and self.station_call.deadline <= now:
            call, self.station_call = self.station_call, None
            remember(self._late_station_calls, call.message_id, None)
            description = f"CSMS did not answer {call.action} within {self.limits.csms_response_timeout:g} s"
            actions += [
                Notice("station_call_timeout", call.message_id, description),
                SendToStation.fault(self.version, call.message_id, Fault.TIMEOUT, description),
            ]
        if self.csms_call is not None and self.csms_call.deadline <= now:
            call, self.csms_call = self.csms_call, None
            remember(self._late_csms_calls, call.message_id, call)
            actions += self._answer_csms_call(
                call,
                Fault.TIMEOUT,
                f"station did not answer {call.action} within {self.limits.station_response_timeout:g} s",
                "csms_call_timeout",
            )
        for queued in [c for c in self.csms_queue if c.deadline <= now]:
            self.csms_queue.remove(queued)
            actions += self._answer_csms_call(queued, Fault.TIMEOUT, "call waited too long in the gateway queue")
        return actions + self._dispatch(now)

    def publish_failed(self, message_id: str, now: float) -> list[Action]:
        """Kafka did not take a station CALL: the station gets its answer from the gateway now."""
        call = self.station_call
        if self.closed or call is None or call.message_id != message_id:
            return []
        self.station_call = None
        description = "the gateway could not pass the call on to the CSMS"
        actions: list[Action] = [
            Notice("station_call_undeliverable", message_id, description),
            SendToStation.fault(self.version, message_id, Fault.UNAVAILABLE, description),
        ]
        return actions + self._dispatch(now)

    def close(self, now: float) -> list[Action]:
        """The connection ended: every CSMS CALL in flight or queued gets a CALLERROR."""
        if self.closed:
            return []
        self.closed = True
        pending = [c for c in (self.csms_call, *self.csms_queue) if c is not None]
        self.csms_call, self.station_call = None, None
        self.csms_queue.clear()
        actions: list[Action] = []
        for call in pending:
            actions += self._answer_csms_call(call, Fault.UNAVAILABLE, "station disconnected")
        return actions


def remember(recent: OrderedDict[str, V], key: str, value: V) -> None:
    recent[key] = value
    while len(recent) > RECENT_TIMEOUTS_KEPT:
        recent.popitem(last=False)
