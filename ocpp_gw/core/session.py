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

from dataclasses import dataclass, field

from .actions import (
    Action,
    Author,
    CallAnswered,
    CloseStation,
    Notice,
    PendingCall,
    PublishToCsms,
    SendToStation,
    SessionLimits,
    pending_call,
    refuse_csms_call,
)
from .budget import StationBudget
from .calls import CallBook, State
from .frames import Call, CallError, CallResult, Frame, Rejection, error_text, parse_frame, too_large
from .protocol import UNREADABLE_MESSAGE_ID, Fault, MessageType, OcppVersion, error_code
from .validation import StrictMode

__all__ = [
    "Action",
    "Author",
    "CallAnswered",
    "CloseStation",
    "Notice",
    "PendingCall",
    "PublishToCsms",
    "SendToStation",
    "SessionLimits",
    "State",
    "StationSession",
    "pending_call",
    "refuse_csms_call",
]


@dataclass
class StationSession(CallBook):
    """One station connection's calls, driven by its frames, the CSMS's frames and the clock."""

    _budget: StationBudget = field(init=False)

    def __post_init__(self) -> None:
        self._budget = StationBudget(self.limits.message_rate, self.limits.message_burst)

    # Events from the station.

    def station_text(self, text: str, now: float) -> list[Action]:
        """A text frame from the station."""
        if self.closed or self.closing:
            return []
        parsed = parse_frame(text, self.version)
        if not self._answers_csms_call(parsed) and not self._budget.take(now):
            return self._budget.limit_log_lines(self._over_rate(parsed, now), now)
        if isinstance(parsed, Rejection):
            return self._budget.limit_log_lines(self._reject_station_frame(parsed), now)
        return self._budget.limit_log_lines(self.station_frame(parsed, now), now)

    def station_binary(self, now: float) -> list[Action]:
        """A binary frame from the station: OCPP-J is text only (§4.1.2)."""
        if self.closed or self.closing:
            return []
        rejection = Rejection(UNREADABLE_MESSAGE_ID, Fault.NOT_RPC, "binary frames are not OCPP-J messages", True)
        if not self._budget.take(now):
            return self._budget.limit_log_lines(self._over_rate(rejection, now), now)
        return self._budget.limit_log_lines(self._reject_station_frame(rejection), now)

    def _answers_csms_call(self, parsed: Frame | Rejection) -> bool:
        """True for the station's answer to the CSMS call in flight: the one frame the rate does not count."""
        call = self.csms_call
        if call is None or parsed.message_id != call.message_id:
            return False
        return isinstance(parsed, CallResult) or (isinstance(parsed, CallError) and not parsed.to_result)

    def _over_rate(self, parsed: Frame | Rejection, now: float) -> list[Action]:
        """A frame over the rate: a CALL gets a CALLERROR and the rest are dropped, until the station
        has sent a burst's worth over the rate; then (or at once, if so configured) it is closed."""
        message_id = parsed.message_id
        if self.limits.close_when_limited or not self._budget.strike(now):
            self.closing = True
            detail = "closing: the station keeps sending over its message rate"
            return [
                Notice("station_rate_limited", message_id, detail),
                CloseStation(1008, "message rate limit exceeded"),
            ]
        actions: list[Action] = [Notice("station_rate_limited", message_id)]
        if isinstance(parsed, Call) and not parsed.send:
            description = "message rate limit exceeded; slow down"
            actions.append(SendToStation.fault(self.version, message_id, Fault.RATE_LIMITED, description))
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
                SendToStation.fault(self.version, rejection.message_id, rejection.fault, rejection.description)
            )
        return actions

    def _station_call(self, call: Call, now: float) -> list[Action]:
        if self.station_call is not None:
            if self.station_call.message_id == call.message_id:
                return [Notice("duplicate_station_call", call.message_id, "retry of the call in flight")]
            return [
                Notice("station_call_refused", call.message_id, "a CALL is already in flight"),
                SendToStation.fault(
                    self.version,
                    call.message_id,
                    Fault.CALL_IN_FLIGHT,
                    f"CALL {self.station_call.message_id} is still in flight; send one CALL at a time (OCPP-J 4.1.1)",
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
                    SendToStation.error(call.message_id, violation.code, violation.description),
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
                                answer.message_id, violation.code, violation.description, MessageType.CALLRESULTERROR
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
        if too_large(frame.text, self.limits.max_frame_size):
            return self._refuse_large_csms_frame(frame, now)
        if self.closed:
            if isinstance(frame, Call) and not frame.send:
                return self._answer_csms_call(pending_call(frame, now), Fault.UNAVAILABLE, "station is not connected")
            return [Notice("csms_frame_for_closed_station", frame.message_id)]
        if isinstance(frame, Call):
            if frame.send:
                return [SendToStation(frame.text, MessageType.SEND)]
            return self._csms_call(frame, now)
        if isinstance(frame, CallError) and frame.to_result:
            return [SendToStation(frame.text, MessageType.CALLRESULTERROR)]
        return self._csms_answer(frame, now)

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
            return [
                Notice("csms_frame_too_large", frame.message_id, description),
                SendToStation.fault(self.version, call.message_id, Fault.INTERNAL, f"the CSMS's answer: {description}"),
                *self._dispatch(now),
            ]
        return [Notice("csms_frame_too_large", frame.message_id, f"dropped: {description}")]

    def _reject_csms_frame(self, rejection: Rejection, now: float) -> list[Action]:
        actions: list[Action] = [Notice("csms_frame_rejected", rejection.message_id, rejection.description)]
        call = self.station_call
        if not rejection.answer and call is not None and call.message_id == rejection.message_id and not self.closed:
            self.station_call = None
            description = f"the CSMS answered {call.action} with a malformed frame: {rejection.description}"
            actions.append(SendToStation.fault(self.version, call.message_id, Fault.INTERNAL, description))
            return actions + self._dispatch(now)
        if rejection.answer and rejection.message_id != UNREADABLE_MESSAGE_ID:
            code = error_code(self.version, rejection.fault)
            text = error_text(rejection.message_id, code, rejection.description)
            actions.append(
                PublishToCsms(text, MessageType.CALLERROR, rejection.message_id, origin=Author.GATEWAY, error_code=code)
            )
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
                    actions.append(SendToStation.error(answer.message_id, violation.code, description))
                    if self.version is OcppVersion.V21:
                        text = error_text(
                            answer.message_id, violation.code, violation.description, None, MessageType.CALLRESULTERROR
                        )
                        actions.append(
                            PublishToCsms(
                                text,
                                MessageType.CALLRESULTERROR,
                                answer.message_id,
                                pending.action,
                                origin=Author.GATEWAY,
                                error_code=violation.code,
                            )
                        )
                    return actions + self._dispatch(now)
            actions.append(SendToStation(answer.text, MessageType(answer.message_type)))
            actions.append(CallAnswered(answer.message_id, now - pending.received_at))
            return actions + self._dispatch(now)
        if answer.message_id in self._late_station_calls:
            return [Notice("late_csms_answer", answer.message_id, "station already had a timeout CALLERROR")]
        return [Notice("unexpected_csms_answer", answer.message_id, "no station call with this id")]
