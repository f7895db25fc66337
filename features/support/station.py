"""A bare OCPP-J station for the scenarios: raw frames in and out, nothing hidden."""

from __future__ import annotations

import json
import uuid
from ssl import SSLContext
from typing import Any
from urllib.parse import quote

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

RECEIVE_TIMEOUT = 15.0


def boot_payload(protocol: str, vendor: str, model: str) -> dict[str, Any]:
    if protocol == "ocpp1.6":
        return {"chargePointVendor": vendor, "chargePointModel": model}
    return {"chargingStation": {"vendorName": vendor, "model": model}, "reason": "PowerUp"}


def expect_close(connection: ClientConnection, code: int, reason: str | None = None, timeout: float = 15) -> None:
    """Wait for the gateway to close ``connection`` with ``code`` (and ``reason``, when given)."""
    try:
        message = connection.recv(timeout=timeout)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == code, closed
        assert reason is None or closed.rcvd.reason == reason, closed
    else:
        raise AssertionError(f"expected a close with {code}, got {message!r}")


class Station:
    def __init__(
        self,
        base_url: str,
        station_id: str,
        subprotocols: list[str],
        ssl: SSLContext | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.station_id = station_id
        self.connection: ClientConnection = connect(
            f"{base_url}/{quote(station_id, safe='')}",
            subprotocols=subprotocols,  # type: ignore[arg-type]
            open_timeout=10,
            ssl=ssl,
            additional_headers=headers,
        )
        self.protocol = self.connection.subprotocol

    def send(self, message: Any) -> None:
        self.connection.send(message if isinstance(message, str | bytes) else json.dumps(message))

    def call(self, action: str, payload: dict[str, Any]) -> str:
        """Send a CALL and return its message id."""
        message_id = str(uuid.uuid4())
        self.send([2, message_id, action, payload])
        return message_id

    def receive(self, timeout: float = RECEIVE_TIMEOUT) -> list[Any]:
        message = self.connection.recv(timeout=timeout)
        frame = json.loads(message)
        assert isinstance(frame, list), f"not an OCPP-J frame: {message!r}"
        return frame

    def close(self) -> None:
        self.connection.close()
