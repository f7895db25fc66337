"""OCPP-J versions and the RPC-framework vocabulary each one defines.

Each version names the same failures differently (OCPP-J 1.6 §4.2.3 and its errata, 2.0.1 §4.3,
2.1 §4.3), so the rest of the gateway asks for an error by meaning (:class:`Fault`) and this
module spells it for the connection's version.
"""

from __future__ import annotations

import enum


class OcppVersion(enum.Enum):
    """A WebSocket subprotocol the gateway can speak."""

    V16 = "ocpp1.6"
    V201 = "ocpp2.0.1"
    V21 = "ocpp2.1"

    @property
    def known_message_types(self) -> frozenset[int]:
        """Message type numbers the version defines (2.1 adds CALLRESULTERROR and SEND)."""
        if self is OcppVersion.V21:
            return frozenset({2, 3, 4, 5, 6})
        return frozenset({2, 3, 4})

    @property
    def answers_unknown_message_type(self) -> bool:
        """2.0.1 §4.4 answers an unknown type with MessageTypeNotSupported; 1.6 §4.1.3 and 2.1 §4.4 ignore it."""
        return self is OcppVersion.V201


class Fault(enum.Enum):
    """Why the gateway refuses or answers a message, independent of the version's spelling."""

    NOT_RPC = "not_rpc"
    """The frame is not a readable OCPP-J RPC message (not JSON, not an array, bad id)."""
    INCOMPLETE = "incomplete"
    """The wrapper lacks elements or has too many for its message type."""
    BAD_PAYLOAD = "bad_payload"
    """The payload is not a JSON object."""
    UNKNOWN_MESSAGE_TYPE = "unknown_message_type"
    """A message type number the version does not define."""
    CALL_IN_FLIGHT = "call_in_flight"
    """The sender already has a CALL in flight on this connection (OCPP-J §4.1.1)."""
    TIMEOUT = "timeout"
    """The other side did not answer within the configured time."""
    UNAVAILABLE = "unavailable"
    """The gateway could not deliver the message (Kafka unreachable, station offline, queue full)."""
    NOT_IMPLEMENTED = "not_implemented"
    """The action is not known to the receiver."""
    INTERNAL = "internal"
    """The receiver failed while processing the action."""
    RATE_LIMITED = "rate_limited"
    """The station sends faster than the gateway's per-station limit."""
    TOO_LARGE = "too_large"
    """The frame is larger than the receiver accepts."""


_V16_CODES = {
    Fault.NOT_RPC: "FormationViolation",
    Fault.INCOMPLETE: "ProtocolError",
    Fault.BAD_PAYLOAD: "FormationViolation",
    Fault.UNKNOWN_MESSAGE_TYPE: "FormationViolation",
    Fault.CALL_IN_FLIGHT: "GenericError",
    Fault.TIMEOUT: "InternalError",
    Fault.UNAVAILABLE: "InternalError",
    Fault.NOT_IMPLEMENTED: "NotImplemented",
    Fault.INTERNAL: "InternalError",
    Fault.RATE_LIMITED: "GenericError",
    Fault.TOO_LARGE: "GenericError",
}

_V2_CODES = {
    Fault.NOT_RPC: "RpcFrameworkError",
    Fault.INCOMPLETE: "RpcFrameworkError",
    Fault.BAD_PAYLOAD: "FormatViolation",
    Fault.UNKNOWN_MESSAGE_TYPE: "MessageTypeNotSupported",
    Fault.CALL_IN_FLIGHT: "GenericError",
    Fault.TIMEOUT: "InternalError",
    Fault.UNAVAILABLE: "InternalError",
    Fault.NOT_IMPLEMENTED: "NotImplemented",
    Fault.INTERNAL: "InternalError",
    Fault.RATE_LIMITED: "GenericError",
    Fault.TOO_LARGE: "GenericError",
}


def error_code(version: OcppVersion, fault: Fault) -> str:
    """The errorCode string ``version`` uses on the wire for ``fault``."""
    return (_V16_CODES if version is OcppVersion.V16 else _V2_CODES)[fault]


MAX_MESSAGE_ID_LENGTH = 36
"""OCPP-J 1.6 §4.1.4 and 2.x §4.1.4: a message id is a string of at most 36 characters."""

MAX_ERROR_DESCRIPTION_LENGTH = 255
"""OCPP-J 2.x Table 7: errorDescription is string[255]."""

UNREADABLE_MESSAGE_ID = "-1"
"""OCPP-J 2.x §4.2.3: the id of a CALLERROR whose CALL's message id could not be read."""

MAX_STATION_ID_LENGTH = 48
"""OCPP-J 2.1 §3.1.1: a charging station identity is at most 48 characters and has no colon."""


class MessageType(enum.IntEnum):
    """The message type numbers of OCPP-J (2.1 §4.1.3)."""

    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4
    CALLRESULTERROR = 5
    SEND = 6


def select_subprotocol(offered: list[str], supported: tuple[OcppVersion, ...]) -> OcppVersion | None:
    """The station's most preferred offered subprotocol that the gateway supports, if any.

    The station lists its versions in order of preference (OCPP-J 2.1 §3.1.2); when none matches
    the handshake completes without a protocol and the connection is closed (1.6 and 2.0.1 §3.2).
    """
    names = {version.value: version for version in supported}
    for name in offered:
        version = names.get(name.strip())
        if version is not None:
            return version
    return None


def valid_station_id(station_id: str) -> bool:
    """True when ``station_id`` can be a charging station identity (2.1 §3.1.1).

    Besides the spec's length and colon rules: printable, no '/', no whitespace of any kind and no
    '#' (OCPP's identifierString allows neither), so an id is always one field of one line of the
    credentials file, where '#' starts a comment.
    """
    return (
        0 < len(station_id) <= MAX_STATION_ID_LENGTH
        and ":" not in station_id
        and station_id.isprintable()
        and "/" not in station_id
        and "#" not in station_id
        and not any(character.isspace() for character in station_id)
    )
