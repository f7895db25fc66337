"""The oracle: the rules every probe is judged by, and the judging of what the gateway sends back.

Pure: the expectations are written from the README's "Invalid input" table and the OCPP-J
specifications, not from the gateway's code, so a divergence shows up as a violation. Everything
else in the package builds on this module; it imports nothing from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

VERSIONS = ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")
DEFAULT_MAX_MESSAGE_SIZE = 1_048_576
"""The gateway's default ``max_message_size`` (config.cfg)."""
MAX_MESSAGE_ID_LENGTH = 36
"""OCPP-J §4.1.4: a message id is a string of at most 36 characters."""
MAX_STATION_ID_LENGTH = 48
"""OCPP-J 2.0.1 and 2.1 §3.1.1: a station identity is at most 48 characters."""
MAX_ERROR_DESCRIPTION_LENGTH = 255
"""OCPP-J 2.x: errorDescription is string[255]."""
UNREADABLE_ID = "-1"
"""The message id of a CALLERROR whose frame's id could not be read (README, OCPP-J 2.x §4.2.3)."""

_FAULT_CODES = {
    "ocpp1.6": {"not_rpc": "FormationViolation", "incomplete": "ProtocolError", "bad_payload": "FormationViolation"},
    "ocpp2.0.1": {
        "not_rpc": "RpcFrameworkError",
        "incomplete": "RpcFrameworkError",
        "bad_payload": "FormatViolation",
        "unknown_type": "MessageTypeNotSupported",
    },
}
_FAULT_CODES["ocpp2.1"] = _FAULT_CODES["ocpp2.0.1"]


def fault_code(version: str, fault: str) -> str:
    """The errorCode the README's "Invalid input" table gives ``fault`` in ``version``."""
    return _FAULT_CODES[version][fault]


def known_message_types(version: str) -> frozenset[int]:
    """Message type numbers ``version`` defines (2.1 adds CALLRESULTERROR 5 and SEND 6)."""
    return frozenset({2, 3, 4, 5, 6}) if version == "ocpp2.1" else frozenset({2, 3, 4})


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a correct gateway does with one probe.

    ``answer``: exactly one frame carrying ``message_id``: a gateway CALLERROR whose code is in
    ``codes`` or, when ``forwarded``, whatever the CSMS answered (a CALLRESULT or CALLERROR).
    ``silent``: nothing. ``close``: the gateway closes the WebSocket with a code in ``close_codes``.
    """

    outcome: str
    why: str
    message_id: str = ""
    codes: frozenset[str] = frozenset()
    forwarded: bool = False
    close_codes: frozenset[int] = frozenset()

    def describe(self) -> str:
        if self.outcome == "answer":
            kinds = sorted(self.codes) + (["the CSMS's answer"] if self.forwarded else [])
            return f"one answer to {self.message_id!r} ({' or '.join(kinds)}; {self.why})"
        if self.outcome == "close":
            return f"close {'/'.join(str(c) for c in sorted(self.close_codes))} ({self.why})"
        return f"silence ({self.why})"


def answer(message_id: str, why: str, *codes: str, forwarded: bool = False) -> Expectation:
    return Expectation("answer", why, message_id, frozenset(codes), forwarded)


def silent(why: str) -> Expectation:
    return Expectation("silent", why)


def close(why: str, *codes: int) -> Expectation:
    return Expectation("close", why, close_codes=frozenset(codes))


def strict_json(text: str) -> tuple[bool, Any]:
    """RFC 8259 JSON as the gateway must read it: no NaN or Infinity, no number that overflows
    to infinity, no lone surrogate; (False, None) when ``text`` is not such a document."""
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return False, None
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            return False, None
        if isinstance(value, str) and _has_surrogate(value):
            return False, None
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
    return True, document


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def expect_message(
    version: str, data: bytes, *, binary: bool = False, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> Expectation:
    """The expectation for one complete WebSocket message from a station (README "Invalid input").

    Not JSON, not an array, a binary frame, an unreadable message id: CALLERROR with id ``-1``.
    CALL with the wrong number of elements: ProtocolError (1.6) / RpcFrameworkError. Action not
    a non-empty string: FormationViolation / RpcFrameworkError. Payload not an object:
    FormationViolation / FormatViolation. Unknown message type: ignored in 1.6 and 2.1,
    MessageTypeNotSupported in 2.0.1. An answer (CALLRESULT, CALLERROR, CALLRESULTERROR) or a
    SEND is never answered. A well-formed CALL reaches the CSMS, whose answer comes back.
    """
    if len(data) > max_message_size:
        return close("larger than max_message_size", 1009)
    if binary:
        return answer(UNREADABLE_ID, "binary frame", fault_code(version, "not_rpc"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return close("text frame is not UTF-8", 1007)
    readable, message = strict_json(text)
    if not readable:
        return answer(UNREADABLE_ID, "not JSON", fault_code(version, "not_rpc"))
    if not isinstance(message, list) or not message:
        return answer(UNREADABLE_ID, "not a non-empty JSON array", fault_code(version, "not_rpc"))
    message_type = message[0]
    if type(message_type) is not int:
        return answer(UNREADABLE_ID, "message type is not an integer", fault_code(version, "not_rpc"))
    message_id = message[1] if len(message) > 1 else None
    id_readable = isinstance(message_id, str) and 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH
    reply_id = message_id if isinstance(message_id, str) and id_readable else UNREADABLE_ID
    if message_type not in known_message_types(version):
        if version == "ocpp2.0.1":
            return answer(reply_id, "unknown message type", fault_code(version, "unknown_type"))
        return silent(f"unknown message type is ignored in {version}")
    if not id_readable:
        if message_type == 2:
            return answer(UNREADABLE_ID, "unreadable message id", fault_code(version, "not_rpc"))
        return silent("unreadable id on a frame that is never answered")
    if message_type not in (2, 6):
        return silent("answers are never answered")
    call = message_type == 2
    if len(message) != 4:
        return (
            answer(reply_id, "CALL without 4 elements", fault_code(version, "incomplete"))
            if call
            else silent("malformed SEND")
        )
    action, payload = message[2], message[3]
    if not isinstance(action, str):
        return (
            answer(reply_id, "action not a string", fault_code(version, "not_rpc"))
            if call
            else silent("malformed SEND")
        )
    if not isinstance(payload, dict):
        if not call:
            return silent("malformed SEND")
        # With an empty action too, either fault may be the one reported.
        codes = {fault_code(version, "bad_payload")} | ({fault_code(version, "not_rpc")} if not action else set())
        return answer(reply_id, "payload not an object", *sorted(codes))
    if not call:
        return silent("SEND is not answered")
    if not action:
        # An empty action is no OCPP action: refused (RpcFrameworkError), or passed on and NotImplemented.
        return answer(reply_id, "empty action", fault_code(version, "not_rpc"), forwarded=True)
    return answer(reply_id, "well-formed CALL", forwarded=True)


# Judging what the gateway sends back.


def answer_head(text: str) -> tuple[int, str] | None:
    """Message type and id of a frame the gateway sent, or None when it is no OCPP-J answer."""
    ok, message = strict_json(text)
    if not ok or not isinstance(message, list) or len(message) < 2:
        return None
    if type(message[0]) is not int or not isinstance(message[1], str):
        return None
    return message[0], message[1]


def judge_answer(text: str, expectation: Expectation) -> tuple[str | None, str]:
    """(None, kind) when ``text`` is an acceptable answer for ``expectation``, else (why not, kind).

    ``kind`` is the errorCode of a CALLERROR, "CALLRESULT" for a result, "?" for anything else.
    """
    ok, message = strict_json(text)
    if not ok or not isinstance(message, list) or len(message) < 2:
        return "not an OCPP-J frame", "?"
    message_type, message_id = message[0], message[1]
    if expectation.outcome != "answer":
        return f"an answer where {expectation.describe()} was due", "?"
    if message_id != expectation.message_id:
        return f"answer carries id {message_id!r}, not {expectation.message_id!r}", "?"
    if message_type == 3:
        if len(message) != 3 or not isinstance(message[2], dict):
            return "malformed CALLRESULT", "?"
        if not expectation.forwarded:
            return "a CALLRESULT for a frame the gateway must refuse", "CALLRESULT"
        return None, "CALLRESULT"
    if message_type != 4:
        return f"answer of message type {message_type!r}", "?"
    if len(message) != 5 or not all(isinstance(part, str) for part in message[2:4]):
        return "malformed CALLERROR", "?"
    if not isinstance(message[4], dict):
        return "CALLERROR details not an object", "?"
    code = message[2]
    if code in expectation.codes:
        if len(message[3]) > MAX_ERROR_DESCRIPTION_LENGTH:
            return f"errorDescription longer than {MAX_ERROR_DESCRIPTION_LENGTH}", code
        return None, code
    if expectation.forwarded:
        return None, code
    return f"errorCode {code}, expected {' or '.join(sorted(expectation.codes))}", code
