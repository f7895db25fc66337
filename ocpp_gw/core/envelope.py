"""The Kafka envelope (version 1): what the gateway publishes and what it accepts from a CSMS.

``messages_in`` (gateway -> CSMS), key = station id, value = one JSON object:

- ``kind``: "frame" (an OCPP-J frame from the station, or a CALLERROR the gateway wrote on its
  behalf, see ``origin``), "connected" or "disconnected".
- ``reply_partition``: the ``messages_out`` partition, owned by the gateway that holds the
  station, on which the CSMS answers (also a header of the same name).
- ``frame``: the OCPP-J message exactly as the station sent it (spliced in verbatim, so numbers
  and key order survive), ``origin``, ``message_type``, ``message_id``, ``action`` (of the CALL,
  or of the CSMS CALL being answered), ``request`` (the CSMS CALL an answer belongs to) and
  ``late`` (an answer that came after the gateway had already answered with a timeout).

``messages_out`` (CSMS -> gateway), key = station id, value ``{"v": 1, "frame": [...]}``.

A CSMS reads ``messages_in`` with :func:`decode_in_record` (the one decoder; ``ocpp_gw.sdk`` uses it)
and writes ``messages_out`` with :func:`out_record`; the gateway does the reverse.

The JSON Schema of both is ``schemas/envelope-v1.schema.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from .frames import Call, Frame, Rejection, encode, load_json, load_json_exact, parse_message
from .protocol import OcppVersion

ENVELOPE_VERSION = 1

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a ``messages_in`` record comes from: station, protocol and gateway instance."""

    station_id: str
    version: OcppVersion
    gateway_id: str

    def headers(self, kind: str, reply_partition: int | None) -> Headers:
        headers = [
            ("station_id", self.station_id.encode()),
            ("protocol", self.version.value.encode()),
            ("gateway_id", self.gateway_id.encode()),
            ("kind", kind.encode()),
            ("envelope_version", b"1"),
        ]
        if reply_partition is not None:
            headers.append(("reply_partition", str(reply_partition).encode()))
        return headers

    def _head(self, kind: str, received_at: str, reply_partition: int | None) -> dict[str, Any]:
        head: dict[str, Any] = {
            "v": ENVELOPE_VERSION,
            "kind": kind,
            "station_id": self.station_id,
            "protocol": self.version.value,
            "gateway_id": self.gateway_id,
            "received_at": received_at,
        }
        if reply_partition is not None:
            head["reply_partition"] = reply_partition
        return head


def frame_record(
    origin: Origin,
    received_at: str,
    *,
    reply_partition: int | None,
    frame_text: str,
    message_type: int,
    message_id: str,
    action: str | None,
    source: str,
    request_text: str | None = None,
    late: bool = False,
) -> bytes:
    """The ``messages_in`` value carrying one OCPP-J frame.

    ``frame_text`` and ``request_text`` were validated as JSON when they were received, so they
    are spliced into the object as they are instead of being parsed and written again.
    """
    head = origin._head("frame", received_at, reply_partition)
    head.update(origin=source, message_type=message_type, message_id=message_id, late=late)
    if action is not None:
        head["action"] = action
    body = orjson.dumps(head)[:-1]
    if request_text is not None:
        body += b',"request":' + request_text.encode()
    return body + b',"frame":' + frame_text.encode() + b"}"


def lifecycle_record(origin: Origin, received_at: str, kind: str, reply_partition: int | None, **details: Any) -> bytes:
    """A ``connected`` or ``disconnected`` event, ordered with the station's frames by its key."""
    head = origin._head(kind, received_at, reply_partition)
    head.update(details)
    return orjson.dumps(head)


@dataclass(frozen=True, slots=True)
class OutRecord:
    """A decoded ``messages_out`` record: the station and the frame for it."""

    station_id: str
    frame: Frame | Rejection
    protocol: OcppVersion | None


class EnvelopeError(ValueError):
    """A ``messages_out`` or ``messages_in`` record that does not follow the envelope."""


def decode_out_record(
    key: bytes | None, value: bytes | None, version_of: Callable[[str], OcppVersion | None]
) -> OutRecord:
    """Decode a CSMS record; ``version_of`` tells the protocol of a station connected here."""
    if not key:
        raise EnvelopeError("record has no key; the key must be the station id")
    try:
        station_id = key.decode()
    except UnicodeDecodeError as error:
        raise EnvelopeError("record key is not UTF-8") from error
    if value is None:
        raise EnvelopeError("record has no value")
    try:
        document = load_json_exact(value)
    except (ValueError, RecursionError) as error:
        raise EnvelopeError(f"record value is not valid JSON: {error}") from error
    if not isinstance(document, dict) or "frame" not in document:
        raise EnvelopeError('record value must be an object with a "frame"')
    if document.get("v", ENVELOPE_VERSION) != ENVELOPE_VERSION:
        raise EnvelopeError(f"envelope version {document.get('v')!r} is not supported")
    protocol = _protocol(document.get("protocol"))
    version = version_of(station_id) or protocol or OcppVersion.V201
    message = document["frame"]
    try:
        text = encode(message)
    except (ValueError, TypeError, RecursionError) as error:
        raise EnvelopeError(f"frame cannot be written as JSON text: {error}") from error
    return OutRecord(station_id, parse_message(message, text, version), protocol)


def _protocol(name: Any) -> OcppVersion | None:
    try:
        return OcppVersion(name) if name is not None else None
    except ValueError as error:
        raise EnvelopeError(f"unknown protocol {name!r}") from error


def out_record(frame: list[Any], protocol: OcppVersion | None = None) -> bytes:
    """A ``messages_out`` value, as a CSMS writes it."""
    document: dict[str, Any] = {"v": ENVELOPE_VERSION, "frame": frame}
    if protocol is not None:
        document["protocol"] = protocol.value
    return orjson.dumps(document)


Kind = Literal["frame", "connected", "disconnected"]
Source = Literal["station", "gateway"]


@dataclass(frozen=True, slots=True)
class InRecord:
    """A decoded ``messages_in`` record: a station's frame or a connection event, as a CSMS reads it.

    ``frame``, ``origin``, ``action``, ``request`` and ``late`` are set for kind "frame";
    ``remote_address`` for "connected"; ``close_code`` and ``close_reason`` for "disconnected".
    """

    kind: Kind
    station_id: str
    protocol: OcppVersion
    gateway_id: str
    received_at: str
    reply_partition: int | None = None
    """The ``messages_out`` partition to answer on (None: by key)."""
    correlation_id: str | None = None
    """The ``correlation_id`` header, to copy onto the answer and into logs."""
    frame: Frame | None = None
    origin: Source | None = None
    """"station": sent by the station; "gateway": a CALLERROR the gateway wrote for it."""
    action: str | None = None
    """The CALL's action, or the action of the CSMS CALL this frame answers."""
    request: Call | None = None
    """The CSMS CALL this frame answers (a stateless CSMS does not remember what it asked)."""
    late: bool = False
    """An answer that came after the gateway had already answered with a timeout CALLERROR."""
    remote_address: str | None = None
    close_code: int | None = None
    close_reason: str | None = None


_KINDS: tuple[Kind, ...] = ("frame", "connected", "disconnected")
_SOURCES: tuple[Source, ...] = ("station", "gateway")


def decode_in_record(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes]] | None) -> InRecord:
    """Decode a ``messages_in`` record (Kafka key, value and headers); :class:`EnvelopeError` if it is not one."""
    if not key:
        raise EnvelopeError("record has no key; the key must be the station id")
    if value is None:
        raise EnvelopeError("record has no value")
    try:
        document = load_json(value)
    except (ValueError, RecursionError) as error:
        raise EnvelopeError(f"record value is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise EnvelopeError("record value must be a JSON object")
    if document.get("v") != ENVELOPE_VERSION:
        raise EnvelopeError(f"envelope version {document.get('v')!r} is not supported")
    kind = document.get("kind")
    if kind not in _KINDS:
        raise EnvelopeError(f"unknown kind {kind!r}")
    station_id = _text(document, "station_id")
    if key != station_id.encode():
        raise EnvelopeError(f"record key {key!r} is not the station id {station_id!r}")
    version = _protocol(_text(document, "protocol"))
    assert version is not None
    header = {name: data for name, data in headers or ()}
    reply_partition = document.get("reply_partition")
    if reply_partition is None and header.get("reply_partition", b"").isdigit():
        reply_partition = int(header["reply_partition"])
    if reply_partition is not None and (type(reply_partition) is not int or reply_partition < 0):
        raise EnvelopeError(f"reply_partition {reply_partition!r} is not a partition number")
    correlation = header.get("correlation_id")
    common: dict[str, Any] = {
        "kind": kind,
        "station_id": station_id,
        "protocol": version,
        "gateway_id": _text(document, "gateway_id", empty=True),
        "received_at": _text(document, "received_at", empty=True),
        "reply_partition": reply_partition,
        "correlation_id": correlation.decode(errors="replace") if correlation is not None else None,
    }
    if kind == "connected":
        return InRecord(**common, remote_address=_optional(document, "remote_address", str))
    if kind == "disconnected":
        return InRecord(
            **common,
            close_code=_optional(document, "close_code", int),
            close_reason=_optional(document, "close_reason", str),
        )
    origin = document.get("origin")
    if origin not in _SOURCES:
        raise EnvelopeError(f"origin {origin!r} is neither station nor gateway")
    late = document.get("late")
    if type(late) is not bool:
        raise EnvelopeError('a frame record needs "late": true or false')
    frame = _frame(document.get("frame"), version, "frame")
    if document.get("message_type") != frame.message_type or document.get("message_id") != frame.message_id:
        raise EnvelopeError("message_type and message_id do not match the frame")
    request: Call | None = None
    if document.get("request") is not None:
        asked = _frame(document["request"], version, "request")
        if not isinstance(asked, Call) or asked.send:
            raise EnvelopeError("request is not a CALL")
        request = asked
    return InRecord(
        **common,
        frame=frame,
        origin=origin,
        action=_optional(document, "action", str),
        request=request,
        late=late,
    )


def _text(document: dict[str, Any], name: str, empty: bool = False) -> str:
    text = document.get(name)
    if not isinstance(text, str) or not (text or empty):
        raise EnvelopeError(f'record value needs "{name}" as a {"" if empty else "non-empty "}string')
    return text


def _optional(document: dict[str, Any], name: str, kind: type[Any]) -> Any:
    found = document.get(name)
    if found is not None and (type(found) is not kind):
        raise EnvelopeError(f'"{name}" must be of type {kind.__name__}')
    return found


def _frame(message: Any, version: OcppVersion, name: str) -> Frame:
    try:
        text = encode(message)
    except (ValueError, TypeError, RecursionError) as error:
        raise EnvelopeError(f"{name} cannot be written as JSON text: {error}") from error
    frame = parse_message(message, text, version)
    if isinstance(frame, Rejection):
        raise EnvelopeError(f"{name} is not an OCPP-J message of {version.value}: {frame.description}")
    return frame
