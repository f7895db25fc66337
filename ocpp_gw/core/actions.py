"""What a station session tells its adapter to do, and the limits it works within.

The session (:mod:`ocpp_gw.core.session`) is pure: each event returns a list of these actions,
which describe themselves (the error code of a CALLERROR the gateway wrote, the message type of a
frame for the station, who wrote a frame for the CSMS), so the adapter never parses a frame again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .frames import Call, JsonObject, error_text
from .protocol import Fault, MessageType, OcppVersion, error_code


class Author(enum.StrEnum):
    """Who wrote a frame published to the CSMS: the station (passed on as received) or the gateway."""

    STATION = "station"
    GATEWAY = "gateway"


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
    """Write ``text`` to the station's WebSocket; ``error_code`` marks a CALLERROR the gateway wrote."""

    text: str
    message_type: MessageType = MessageType.CALL
    error_code: str | None = None

    @property
    def generated(self) -> bool:
        return self.error_code is not None

    @classmethod
    def error(
        cls, message_id: str, code: str, description: str, message_type: MessageType = MessageType.CALLERROR
    ) -> SendToStation:
        """The gateway's own CALLERROR (or 2.1 CALLRESULTERROR) with ``code``."""
        return cls(error_text(message_id, code, description, None, message_type), message_type, code)

    @classmethod
    def fault(cls, version: OcppVersion, message_id: str, fault: Fault, description: str) -> SendToStation:
        """The gateway's CALLERROR for ``fault``, spelled the way ``version`` spells it."""
        return cls.error(message_id, error_code(version, fault), description)


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
    origin: Author = Author.STATION
    request: PendingCall | None = None
    late: bool = False
    error_code: str | None = None
    """The code of a CALLERROR the gateway wrote (``origin`` "gateway")."""


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
class CallAnswered:
    """The CSMS answered the station's call ``message_id``, ``round_trip`` seconds after the station sent it."""

    message_id: str
    round_trip: float


@dataclass(frozen=True, slots=True)
class CloseStation:
    """Close the station's WebSocket with ``code`` and ``reason``; the session reads nothing more."""

    code: int
    reason: str


Action = SendToStation | PublishToCsms | Notice | CloseStation | CallAnswered


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
    code = code or error_code(version, fault)
    text = error_text(call.message_id, code, description)
    return [
        Notice(event, call.message_id, description),
        PublishToCsms(
            text,
            MessageType.CALLERROR,
            call.message_id,
            call.action,
            origin=Author.GATEWAY,
            request=call,
            error_code=code,
        ),
    ]


def pending_call(call: Call, now: float, timeout: float = 0.0) -> PendingCall:
    """``call`` as received at ``now``, to be answered within ``timeout`` seconds."""
    return PendingCall(call.message_id, call.action, call.payload, call.text, now + timeout, now)
