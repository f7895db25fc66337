"""OCPP-J frames: parsing a text frame into a typed message, and writing CALLERRORs.

The gateway does not interpret payloads, but it does check the RPC wrapper (OCPP-J §4): the
message type, the message id (a string of at most 36 characters), the action and that the
payload is a JSON object. A frame that fails is turned into a :class:`Rejection` that says
which fault to report and whether the version wants an answer at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from .protocol import (
    MAX_ERROR_DESCRIPTION_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    UNREADABLE_MESSAGE_ID,
    Fault,
    MessageType,
    OcppVersion,
    error_code,
)

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Call:
    """A request (type 2) or, in 2.1, an unconfirmed SEND (type 6)."""

    message_id: str
    action: str
    payload: JsonObject
    text: str
    send: bool = False

    @property
    def message_type(self) -> int:
        return MessageType.SEND if self.send else MessageType.CALL


@dataclass(frozen=True, slots=True)
class CallResult:
    """A response (type 3)."""

    message_id: str
    payload: JsonObject
    text: str

    @property
    def message_type(self) -> int:
        return MessageType.CALLRESULT


@dataclass(frozen=True, slots=True)
class CallError:
    """An error response to a CALL (type 4) or, in 2.1, to a CALLRESULT (type 5)."""

    message_id: str
    code: str
    description: str
    details: JsonObject
    text: str
    to_result: bool = False

    @property
    def message_type(self) -> int:
        return MessageType.CALLRESULTERROR if self.to_result else MessageType.CALLERROR


Frame = Call | CallResult | CallError


@dataclass(frozen=True, slots=True)
class Rejection:
    """A frame the gateway will not forward, and how to tell the sender."""

    message_id: str
    fault: Fault
    description: str
    answer: bool
    """False when the version says to ignore the message (unknown type in 1.6 and 2.1) or when
    the frame was itself an answer, which must not be answered with a CALLERROR."""


def load_json(text: str | bytes) -> Any:
    """Parse strict JSON fast (no NaN, no Infinity, no lone surrogates).

    orjson reads integers wider than 64 bits as floats; use :func:`load_json_exact` for
    documents whose numbers are written out again.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return load_json_exact(text)


def load_json_exact(text: str | bytes) -> Any:
    """Parse strict JSON keeping every integer exact.

    orjson first: a document it reads without any float is exact (it turns only integers wider than
    64 bits into floats, and refuses NaN, Infinity and lone surrogates). Anything else goes to the
    standard library's parser, which keeps integers exact and says what is wrong.
    """
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    else:
        if not _holds_float(document):
            return document
    document = json.loads(text, parse_constant=_reject_constant)
    try:
        json.dumps(document, ensure_ascii=False, allow_nan=False).encode()
    except UnicodeEncodeError as error:
        raise ValueError("JSON holds a lone surrogate, which is not valid Unicode text") from error
    except ValueError as error:
        raise ValueError(f"JSON holds a value that cannot be written again: {error}") from error
    return document


def _holds_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_holds_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_float(item) for item in value)
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_frame(text: str, version: OcppVersion) -> Frame | Rejection:
    """Parse one text frame received on a ``version`` connection."""
    try:
        message = load_json(text)
    except (ValueError, RecursionError):
        return Rejection(UNREADABLE_MESSAGE_ID, Fault.NOT_RPC, "message is not valid JSON", True)
    return parse_message(message, text, version)


def _exact_first_element(text: str, fallback: Any) -> Any:
    """The first element read exactly: orjson reads an integer wider than 64 bits as a float."""
    try:
        exact = load_json_exact(text)
    except (ValueError, RecursionError):
        return fallback
    return exact[0] if isinstance(exact, list) and exact else fallback


def parse_message(message: Any, text: str, version: OcppVersion) -> Frame | Rejection:
    """Check an already decoded OCPP-J message; ``text`` is its exact wire form."""
    if not isinstance(message, list) or not message:
        return Rejection(UNREADABLE_MESSAGE_ID, Fault.NOT_RPC, "message is not a JSON array", True)
    message_type = message[0]
    if type(message_type) is float:
        message_type = _exact_first_element(text, message_type)
    if type(message_type) is not int:
        return Rejection(UNREADABLE_MESSAGE_ID, Fault.NOT_RPC, "message type is not an integer", True)
    message_id = message[1] if len(message) > 1 else None
    reply_id, id_readable = UNREADABLE_MESSAGE_ID, False
    if isinstance(message_id, str) and 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH:
        reply_id, id_readable = message_id, True
    if message_type not in version.known_message_types:
        return Rejection(
            reply_id,
            Fault.UNKNOWN_MESSAGE_TYPE,
            f"message type {message_type} is not supported by {version.value}",
            version.answers_unknown_message_type,
        )
    if not id_readable:
        return Rejection(
            UNREADABLE_MESSAGE_ID,
            Fault.NOT_RPC,
            f"message id must be a string of 1 to {MAX_MESSAGE_ID_LENGTH} characters",
            message_type == MessageType.CALL,
        )
    message_id = reply_id
    if message_type in (MessageType.CALL, MessageType.SEND):
        answer = message_type == MessageType.CALL
        if len(message) != 4:
            return Rejection(message_id, Fault.INCOMPLETE, "a CALL has 4 elements", answer)
        action, payload = message[2], message[3]
        if not isinstance(action, str) or not action:
            return Rejection(message_id, Fault.NOT_RPC, "action must be a non-empty string", answer)
        if not isinstance(payload, dict):
            return Rejection(message_id, Fault.BAD_PAYLOAD, "payload must be a JSON object", answer)
        return Call(message_id, action, payload, text, send=message_type == MessageType.SEND)
    if message_type == MessageType.CALLRESULT:
        if len(message) != 3:
            return Rejection(message_id, Fault.INCOMPLETE, "a CALLRESULT has 3 elements", False)
        if not isinstance(message[2], dict):
            return Rejection(message_id, Fault.BAD_PAYLOAD, "payload must be a JSON object", False)
        return CallResult(message_id, message[2], text)
    if len(message) != 5:
        return Rejection(message_id, Fault.INCOMPLETE, "a CALLERROR has 5 elements", False)
    code, description, details = message[2], message[3], message[4]
    if not isinstance(code, str) or not isinstance(description, str) or not isinstance(details, dict):
        return Rejection(
            message_id,
            Fault.BAD_PAYLOAD,
            "a CALLERROR holds errorCode, errorDescription (strings) and errorDetails (object)",
            False,
        )
    return CallError(
        message_id,
        code,
        description,
        details,
        text,
        to_result=message_type == MessageType.CALLRESULTERROR,
    )


def too_large(text: str, limit: int | None) -> bool:
    """True when ``text`` takes more than ``limit`` bytes in UTF-8 (None: no limit)."""
    if limit is None or len(text) * 4 <= limit:
        return False
    return len(text) > limit or len(text.encode()) > limit


def call_error_text(
    version: OcppVersion, message_id: str, fault: Fault, description: str, details: JsonObject | None = None
) -> str:
    """The wire text of a CALLERROR for ``fault``, spelled the way ``version`` spells it."""
    return error_text(message_id, error_code(version, fault), description, details)


def error_text(
    message_id: str,
    code: str,
    description: str,
    details: JsonObject | None = None,
    message_type: int = MessageType.CALLERROR,
) -> str:
    """The wire text of a CALLERROR (or, with ``message_type`` 5, a 2.1 CALLRESULTERROR)."""
    return encode([message_type, message_id, code, description[:MAX_ERROR_DESCRIPTION_LENGTH], details or {}])


def encode(message: Any) -> str:
    """Compact JSON text of a decoded message (integers wider than 64 bits included)."""
    try:
        return orjson.dumps(message).decode()
    except TypeError:
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
