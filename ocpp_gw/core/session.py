"""The per-station call state machine: one CALL in flight per direction, every CALL answered once.

A :class:`StationSession` sits between one station's WebSocket and the CSMS (the "Pipe" of
MaEVe's gateway, without its silent drops). It is pure: every method takes the event and the
current clock value and returns the actions the adapter must carry out, in order. The adapter
arms one timer for :attr:`StationSession.next_deadline` and calls :meth:`expire` when it fires.

States (:class:`State`), derived from what is in flight:

- WAITING: nothing in flight; a CSMS CALL goes straight to the station.
- STATION_CALL: a station CALL waits for the CSMS; CSMS CALLs queue (bounded, in order).
- CSMS_CALL: a CSMS CALL waits for the station; further CSMS CALLs queue.
- CROSSING: both, because the station sent a CALL while a CSMS CALL was in flight (the calls
  crossed, OCPP-J §4.1.1 note); each is answered on its own.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from typing import TypeVar

from .admission import TokenBucket
from .frames import Call, CallError, CallResult, Frame, JsonObject, Rejection, call_error_text, error_text, parse_frame
from .protocol import UNREADABLE_MESSAGE_ID, Fault, MessageType, OcppVersion
from .validation import PayloadValidator, StrictMode, Violation

V = TypeVar("V")

RECENT_TIMEOUTS_KEPT = 32
"""How many timed-out call ids a session remembers to tell a late answer from a stray one."""

LOG_LINES_PER_SECOND = 1.0
LOG_LINES_BURST = 10
"""Notices a station's own frames may turn into log lines; the rest are counted, not logged."""


class State(enum.Enum):
    WAITING = "waiting"
    STATION_CALL = "station_call"
    CSMS_CALL = "csms_call"
    CROSSING = "crossing"
    CLOSED = "closed"


@dataclass(frozen=True)
class SessionLimits:
    """Timeouts in seconds and the CSMS queue bound; the defaults follow the spec's 30 s guidance."""

    csms_response_timeout: float = 30.0
    """How long a station CALL waits for the CSMS's answer before the station gets a CALLERROR."""
    station_response_timeout: float = 30.0
    """How long a CSMS CALL waits for the station (and, separately, in the queue)."""
    csms_queue_size: int = 16
    """CSMS CALLs that may wait while another call is in flight; beyond it they are refused."""
    message_rate: float | None = None
    """Frames per second a station may send on average (None: no limit). Only a genuine answer to
    the CSMS call in flight is free: every other frame, whatever its type, counts."""
    message_burst: int = 50
    """Frames a station may send at once; also how many frames over the rate it may send before
    it is closed (1008), refilled at ``message_rate``."""
    close_when_limited: bool = False
    """Close the station at its first frame over the rate instead of refusing frames."""
    max_frame_size: int | None = None
    """The largest CSMS frame, in UTF-8 bytes, passed to a station (its ``max_message_size``)."""


@dataclass(frozen=True, slots=True)
class PendingCall:
    """A CALL waiting for its answer (or, for CSMS CALLs, for its turn)."""

    message_id: str
    action: str
    payload: JsonObject
    text: str
    deadline: float
    received_at: float


@dataclass(frozen=True, slots=True)
class SendToStation:
    """Write ``text`` to the station's WebSocket; ``generated`` marks a CALLERROR the gateway wrote."""

    text: str
    generated: bool = False

    @classmethod
    def error(cls, text: str) -> SendToStation:
        return cls(text, generated=True)


@dataclass(frozen=True, slots=True)
class PublishToCsms:
    """Publish an OCPP-J frame on ``messages_in``.

    ``origin`` is "station" for frames the station sent (forwarded exactly as received) and
    "gateway" for CALLERRORs the gateway writes on the station's behalf. ``request`` is the CSMS
    CALL this frame answers, attached because the CSMS is stateless. ``late`` marks a station
    answer that came after the gateway already answered the CSMS with a timeout.
    """

    text: str
    message_type: int
    message_id: str
    action: str | None = None
    origin: str = "station"
    request: PendingCall | None = None
    late: bool = False


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth a log line and a counter: a rejection, a drop, a timeout.

    ``quiet`` notices are counted but not logged (a station's frames may not buy unbounded log
    lines); ``suppressed`` says how many quiet ones came before this logged one.
    """

    event: str
    message_id: str
    detail: str = ""
    quiet: bool = False
    suppressed: int = 0


@dataclass(frozen=True, slots=True)
class CloseStation:
    """Close the station's WebSocket with ``code`` and ``reason``; the session reads nothing more."""

    code: int
    reason: str


Action = SendToStation | PublishToCsms | Notice | CloseStation


@dataclass
class StationSession:
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
    """A :class:`CloseStation` was returned: the station's further frames are not read."""
    _rate: TokenBucket | None = None
    _strikes: TokenBucket | None = None
    _log_lines: TokenBucket = field(default_factory=lambda: TokenBucket(LOG_LINES_PER_SECOND, LOG_LINES_BURST, 0.0))
    _quiet_notices: int = 0
    _late_station_calls: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _late_csms_calls: OrderedDict[str, PendingCall] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        rate = self.limits.message_rate
        if rate is not None:
            self._rate = TokenBucket(rate, self.limits.message_burst, 0.0)
            self._strikes = TokenBucket(rate, self.limits.message_burst, 0.0)

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
    def next_deadline(self) -> float | None:
        """The earliest time at which :meth:`expire` has something to do."""
        deadlines = [call.deadline for call in (self.station_call, self.csms_call) if call]
        deadlines.extend(call.deadline for call in self.csms_queue)
        return min(deadlines, default=None)

    # Events from the station.

    def station_text(self, text: str, now: float) -> list[Action]:
        """A text frame from the station."""
        if self.closed or self.closing:
            return []
        parsed = parse_frame(text, self.version)
        if not self._answers_csms_call(parsed) and not self._within_rate(now):
            return self._limit_log_lines(self._over_rate(parsed, now), now)
        if isinstance(parsed, Rejection):
            return self._limit_log_lines(self._reject_station_frame(parsed), now)
        return self._limit_log_lines(self.station_frame(parsed, now), now)

    def station_binary(self, now: float) -> list[Action]:
        """A binary frame from the station: OCPP-J is text only (§4.1.2)."""
        if self.closed or self.closing:
            return []
        rejection = Rejection(UNREADABLE_MESSAGE_ID, Fault.NOT_RPC, "binary frames are not OCPP-J messages", True)
        if not self._within_rate(now):
            return self._limit_log_lines(self._over_rate(rejection, now), now)
        return self._limit_log_lines(self._reject_station_frame(rejection), now)

    def _answers_csms_call(self, parsed: Frame | Rejection) -> bool:
        """True for the station's answer to the CSMS call in flight: the one frame the rate does not count."""
        call = self.csms_call
        if call is None or parsed.message_id != call.message_id:
            return False
        return isinstance(parsed, CallResult) or (isinstance(parsed, CallError) and not parsed.to_result)

    def _within_rate(self, now: float) -> bool:
        return self._rate is None or self._rate.take(now)

    def _over_rate(self, parsed: Frame | Rejection, now: float) -> list[Action]:
        """A frame over the rate: a CALL gets a CALLERROR and the rest are dropped, until the station
        has sent a burst's worth over the rate; then (or at once, if so configured) it is closed."""
        message_id = parsed.message_id
        assert self._strikes is not None
        if self.limits.close_when_limited or not self._strikes.take(now):
            self.closing = True
            detail = "closing: the station keeps sending over its message rate"
            return [
                Notice("station_rate_limited", message_id, detail),
                CloseStation(1008, "message rate limit exceeded"),
            ]
        actions: list[Action] = [Notice("station_rate_limited", message_id)]
        if isinstance(parsed, Call) and not parsed.send:
            description = "message rate limit exceeded; slow down"
            actions.append(
                SendToStation.error(call_error_text(self.version, message_id, Fault.RATE_LIMITED, description))
            )
        return actions

    def _limit_log_lines(self, actions: list[Action], now: float) -> list[Action]:
        """Mark notices quiet once the station has used its log lines; a close is always logged."""
        closing = any(isinstance(a, CloseStation) for a in actions)
        for index, action in enumerate(actions):
            if not isinstance(action, Notice):
                continue
            if closing or self._log_lines.take(now):
                actions[index] = replace(action, suppressed=self._quiet_notices)
                self._quiet_notices = 0
            else:
                actions[index] = replace(action, quiet=True)
                self._quiet_notices += 1
        return actions

    def station_frame(self, frame: Frame, now: float) -> list[Action]:
        """A well-formed frame from the station."""
        if self.closed:
            return []
        if isinstance(frame, Call):
            if frame.send:
                return [PublishToCsms(frame.text, frame.message_type, frame.message_id, frame.action)]
            return self._station_call(frame, now)
        if isinstance(frame, CallError) and frame.to_result:
            return [PublishToCsms(frame.text, frame.message_type, frame.message_id)]
        return self._station_answer(frame, now)

    def _reject_station_frame(self, rejection: Rejection) -> list[Action]:
        actions: list[Action] = [Notice("station_frame_rejected", rejection.message_id, rejection.description)]
        if rejection.answer:
            actions.append(
                SendToStation.error(
                    call_error_text(self.version, rejection.message_id, rejection.fault, rejection.description)
                )
            )
        return actions

    def _station_call(self, call: Call, now: float) -> list[Action]:
        if self.station_call is not None:
            if self.station_call.message_id == call.message_id:
                return [Notice("duplicate_station_call", call.message_id, "retry of the call in flight")]
            return [
                Notice("station_call_refused", call.message_id, "a CALL is already in flight"),
                SendToStation.error(
                    call_error_text(
                        self.version,
                        call.message_id,
                        Fault.CALL_IN_FLIGHT,
                        f"CALL {self.station_call.message_id} is still in flight; "
                        "send one CALL at a time (OCPP-J 4.1.1)",
                    )
                ),
            ]
        actions: list[Action] = []
        mode, violation = self._check(call, "station_calls", None)
        if violation is not None:
            actions.append(
                Notice("station_call_invalid", call.message_id, f"{violation.code}: {violation.description}")
            )
            if mode is StrictMode.ENFORCE:
                return [
                    *actions,
                    SendToStation.error(error_text(call.message_id, violation.code, violation.description)),
                ]
        self.station_call = pending_call(call, now, self.limits.csms_response_timeout)
        return [*actions, PublishToCsms(call.text, call.message_type, call.message_id, call.action)]

    def _station_answer(self, answer: CallResult | CallError, now: float) -> list[Action]:
        pending = self.csms_call
        if pending is not None and pending.message_id == answer.message_id:
            self.csms_call = None
            actions: list[Action] = []
            mode, violation = self._check(answer, "station_results", pending.action)
            if violation is not None:
                detail = f"{violation.code}: {violation.description}"
                actions.append(Notice("station_result_invalid", answer.message_id, detail))
                if mode is StrictMode.ENFORCE:
                    description = f"the station's {pending.action} result is invalid: {violation.description}"
                    actions += self._answer_csms_call(pending, Fault.INTERNAL, description, code=violation.code)
                    if self.version is OcppVersion.V21:
                        actions.append(
                            SendToStation.error(
                                error_text(answer.message_id, violation.code, violation.description, None, 5)
                            )
                        )
                    return actions + self._dispatch(now)
            actions.append(
                PublishToCsms(answer.text, answer.message_type, answer.message_id, pending.action, request=pending)
            )
            return actions + self._dispatch(now)
        late = self._late_csms_calls.pop(answer.message_id, None)
        if late is not None:
            return [
                Notice("late_station_answer", answer.message_id, "published marked late"),
                PublishToCsms(
                    answer.text, answer.message_type, answer.message_id, late.action, request=late, late=True
                ),
            ]
        return [Notice("unexpected_station_answer", answer.message_id, "no CSMS call with this id")]

    # Events from the CSMS.

    def csms_frame(self, frame: Frame | Rejection, now: float) -> list[Action]:
        """A frame the CSMS addressed to this station on ``messages_out``."""
        if isinstance(frame, Rejection):
            return self._reject_csms_frame(frame, now)
        if self._too_large(frame.text):
            return self._refuse_large_csms_frame(frame, now)
        if self.closed:
            if isinstance(frame, Call) and not frame.send:
                return self._answer_csms_call(pending_call(frame, now), Fault.UNAVAILABLE, "station is not connected")
            return [Notice("csms_frame_for_closed_station", frame.message_id)]
        if isinstance(frame, Call):
            if frame.send:
                return [SendToStation(frame.text)]
            return self._csms_call(frame, now)
        if isinstance(frame, CallError) and frame.to_result:
            return [SendToStation(frame.text)]
        return self._csms_answer(frame, now)

    def _too_large(self, text: str) -> bool:
        limit = self.limits.max_frame_size
        if limit is None or len(text) * 4 <= limit:
            return False
        return len(text) > limit or len(text.encode()) > limit

    def _refuse_large_csms_frame(self, frame: Frame, now: float) -> list[Action]:
        """A CSMS frame the station would refuse (it closes 1009): the CSMS's CALL gets a CALLERROR,
        its answer to the station's call becomes the gateway's CALLERROR, anything else is dropped."""
        description = f"the frame is larger than this gateway passes to stations ({self.limits.max_frame_size} bytes)"
        if isinstance(frame, Call) and not frame.send:
            return self._answer_csms_call(
                pending_call(frame, now), Fault.TOO_LARGE, description, "csms_frame_too_large"
            )
        call = self.station_call
        answers = isinstance(frame, CallResult) or (isinstance(frame, CallError) and not frame.to_result)
        if answers and call is not None and call.message_id == frame.message_id and not self.closed:
            self.station_call = None
            text = call_error_text(self.version, call.message_id, Fault.INTERNAL, f"the CSMS's answer: {description}")
            return [
                Notice("csms_frame_too_large", frame.message_id, description),
                SendToStation.error(text),
                *self._dispatch(now),
            ]
        return [Notice("csms_frame_too_large", frame.message_id, f"dropped: {description}")]

    def _reject_csms_frame(self, rejection: Rejection, now: float) -> list[Action]:
        actions: list[Action] = [Notice("csms_frame_rejected", rejection.message_id, rejection.description)]
        call = self.station_call
        if not rejection.answer and call is not None and call.message_id == rejection.message_id and not self.closed:
            self.station_call = None
            description = f"the CSMS answered {call.action} with a malformed frame: {rejection.description}"
            actions.append(
                SendToStation.error(call_error_text(self.version, call.message_id, Fault.INTERNAL, description))
            )
            return actions + self._dispatch(now)
        if rejection.answer and rejection.message_id != UNREADABLE_MESSAGE_ID:
            text = call_error_text(self.version, rejection.message_id, rejection.fault, rejection.description)
            actions.append(PublishToCsms(text, MessageType.CALLERROR, rejection.message_id, origin="gateway"))
        return actions

    def _csms_call(self, call: Call, now: float) -> list[Action]:
        in_flight = [c for c in (self.csms_call, *self.csms_queue) if c is not None]
        if any(c.message_id == call.message_id for c in in_flight):
            return [Notice("duplicate_csms_call", call.message_id, "already in flight or queued")]
        mode, violation = self._check(call, "csms_calls", None)
        if violation is not None and mode is StrictMode.ENFORCE:
            description = f"invalid {call.action} for this station: {violation.description}"
            return self._answer_csms_call(
                pending_call(call, now), Fault.INTERNAL, description, "csms_call_invalid", violation.code
            )
        if violation is not None:
            notice = Notice("csms_call_invalid", call.message_id, f"{violation.code}: {violation.description}")
            return [notice, *self._schedule_csms_call(call, now)]
        return self._schedule_csms_call(call, now)

    def _schedule_csms_call(self, call: Call, now: float) -> list[Action]:
        if self.csms_call is None and self.station_call is None and not self.csms_queue:
            self.csms_call = pending_call(call, now, self.limits.station_response_timeout)
            return [SendToStation(call.text)]
        if len(self.csms_queue) >= self.limits.csms_queue_size:
            return self._answer_csms_call(
                pending_call(call, now),
                Fault.UNAVAILABLE,
                f"gateway queue for this station is full ({self.limits.csms_queue_size} calls waiting)",
            )
        self.csms_queue.append(pending_call(call, now, self.limits.station_response_timeout))
        return []

    def _csms_answer(self, answer: CallResult | CallError, now: float) -> list[Action]:
        pending = self.station_call
        if pending is not None and pending.message_id == answer.message_id:
            self.station_call = None
            actions: list[Action] = []
            mode, violation = self._check(answer, "csms_results", pending.action)
            if violation is not None:
                actions.append(
                    Notice("csms_result_invalid", answer.message_id, f"{violation.code}: {violation.description}")
                )
                if mode is StrictMode.ENFORCE:
                    description = f"the CSMS's {pending.action} result is invalid: {violation.description}"
                    actions.append(SendToStation.error(error_text(answer.message_id, violation.code, description)))
                    if self.version is OcppVersion.V21:
                        text = error_text(answer.message_id, violation.code, violation.description, None, 5)
                        actions.append(PublishToCsms(text, 5, answer.message_id, pending.action, origin="gateway"))
                    return actions + self._dispatch(now)
            actions.append(SendToStation(answer.text))
            return actions + self._dispatch(now)
        if answer.message_id in self._late_station_calls:
            return [Notice("late_csms_answer", answer.message_id, "station already had a timeout CALLERROR")]
        return [Notice("unexpected_csms_answer", answer.message_id, "no station call with this id")]

    def _check(
        self, message: Call | CallResult | CallError, kind: str, action: str | None
    ) -> tuple[StrictMode, Violation | None]:
        """Strict mode's verdict on a CALL (``action`` None) or on the CALLRESULT to ``action``."""
        if self.validator is None or isinstance(message, CallError):
            return StrictMode.OFF, None
        mode: StrictMode = getattr(self.validator.policy, kind)
        if mode is StrictMode.OFF:
            return mode, None
        if isinstance(message, Call):
            return mode, self.validator.check_request(self.version, message.action, message.payload)
        assert action is not None
        return mode, self.validator.check_response(self.version, action, message.payload)

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
            _remember(self._late_station_calls, call.message_id, None)
            description = f"CSMS did not answer {call.action} within {self.limits.csms_response_timeout:g} s"
            actions += [
                Notice("station_call_timeout", call.message_id, description),
                SendToStation.error(call_error_text(self.version, call.message_id, Fault.TIMEOUT, description)),
            ]
        if self.csms_call is not None and self.csms_call.deadline <= now:
            call, self.csms_call = self.csms_call, None
            _remember(self._late_csms_calls, call.message_id, call)
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
            SendToStation.error(call_error_text(self.version, message_id, Fault.UNAVAILABLE, description)),
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


def refuse_csms_call(
    version: OcppVersion,
    call: PendingCall,
    fault: Fault,
    description: str,
    event: str = "csms_call_failed",
    code: str | None = None,
) -> list[Action]:
    """The gateway's CALLERROR for a CSMS CALL, published back to the CSMS with the request attached.

    ``code`` overrides the fault's code (strict mode reports the schema violation's own code).
    """
    text = (
        error_text(call.message_id, code, description)
        if code
        else call_error_text(version, call.message_id, fault, description)
    )
    return [
        Notice(event, call.message_id, description),
        PublishToCsms(text, MessageType.CALLERROR, call.message_id, call.action, origin="gateway", request=call),
    ]


def pending_call(call: Call, now: float, timeout: float = 0.0) -> PendingCall:
    """``call`` as received at ``now``, to be answered within ``timeout`` seconds."""
    return PendingCall(call.message_id, call.action, call.payload, call.text, now + timeout, now)


def _remember(recent: OrderedDict[str, V], key: str, value: V) -> None:
    recent[key] = value
    while len(recent) > RECENT_TIMEOUTS_KEPT:
        recent.popitem(last=False)
