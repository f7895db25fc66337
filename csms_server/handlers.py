"""What the reference CSMS answers, per OCPP version and action: the one place to add a handler.

A handler takes the request's context and payload and returns the response payload. Register it
with ``@handles(versions, "Action")``; an action with no handler gets NotImplemented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ocpp_gw.core.protocol import OcppVersion

Payload = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """A station CALL as the CSMS sees it."""

    station_id: str
    version: OcppVersion
    action: str
    payload: Payload
    heartbeat_interval: int


Handler = Callable[[Request], Payload]

HANDLERS: dict[tuple[OcppVersion, str], Handler] = {}

V16 = (OcppVersion.V16,)
V2 = (OcppVersion.V201, OcppVersion.V21)
ALL = V16 + V2


def handles(versions: tuple[OcppVersion, ...], action: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``action`` for ``versions``."""

    def register(handler: Handler) -> Handler:
        for version in versions:
            HANDLERS[(version, action)] = handler
        return handler

    return register


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@handles(ALL, "BootNotification")
def boot_notification(request: Request) -> Payload:
    return {"status": "Accepted", "currentTime": now_iso(), "interval": request.heartbeat_interval}


@handles(ALL, "Heartbeat")
def heartbeat(request: Request) -> Payload:
    return {"currentTime": now_iso()}
