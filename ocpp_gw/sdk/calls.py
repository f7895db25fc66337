"""What SDK handlers and callers deal in: a station's call, a response payload, the errors of a call."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from ..core.envelope import InRecord
from ..core.frames import CallError
from ..core.protocol import MAX_ERROR_DESCRIPTION_LENGTH, Fault, MessageType, OcppVersion, error_code

Payload = dict[str, Any]


class DataclassInstance(Protocol):
    """A dataclass instance, such as the ``ocpp`` package's ``call_result.BootNotification(...)``."""

    __dataclass_fields__: ClassVar[dict[str, Any]]


Response = Mapping[str, Any] | DataclassInstance
"""A payload: a mapping as it goes on the wire, or a dataclass of the ``ocpp`` package."""


@dataclass(frozen=True, slots=True)
class StationCall:
    """A station's CALL, as a handler gets it."""

    station_id: str
    version: OcppVersion
    action: str
    payload: Payload
    message_id: str
    record: InRecord
    """The whole ``messages_in`` record: gateway, time received, correlation id."""


Handler = Callable[[StationCall], Response | Awaitable[Response]]
ConnectionHandler = Callable[[InRecord], Awaitable[None] | None]
H = TypeVar("H", bound=Handler)
C = TypeVar("C", bound=ConnectionHandler)


def to_payload(response: object) -> Payload:
    """The wire payload of ``response``: a mapping as it is, an ``ocpp`` dataclass in camelCase without its
    None fields (the ``ocpp`` package's own helpers, imported only when one is used)."""
    if isinstance(response, dict):
        return response
    if isinstance(response, Mapping):
        return dict(response)
    if dataclasses.is_dataclass(response) and not isinstance(response, type):
        from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case

        payload: Payload = snake_to_camel_case(remove_nones(serialize_as_dict(response)))
        return payload
    raise TypeError(f"a payload is a dict or a dataclass, not {type(response).__name__}")


def _call_error(version: OcppVersion, message_id: str, fault: Fault, description: str) -> list[Any]:
    return [
        MessageType.CALLERROR,
        message_id,
        error_code(version, fault),
        description[:MAX_ERROR_DESCRIPTION_LENGTH],
        {},
    ]


class CallTimeout(TimeoutError):
    """No answer to a call within its timeout."""


class CallErrorReceived(Exception):
    """A call was answered with a CALLERROR: the station's, or the gateway's (``origin`` "gateway") when
    the station did not answer in time, was not connected, or had too many calls waiting."""

    def __init__(self, record: InRecord) -> None:
        assert isinstance(record.frame, CallError)
        self.record = record
        self.code, self.description, self.details = record.frame.code, record.frame.description, record.frame.details
        self.origin = record.origin
        super().__init__(f"{self.code}: {self.description}")
