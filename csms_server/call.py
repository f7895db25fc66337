"""Calls to stations, as ``csms-server call`` and the console's command form make them.

The CALL goes on the partition of the station's current route (``station_routes``); the answer
comes back on ``messages_in`` like any other station frame. Both are :class:`ocpp_gw.sdk.CsmsClient`;
:func:`call` turns every way a call can end into one :class:`CallOutcome`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any, Literal

from ocpp_gw.config import Config
from ocpp_gw.kafka_clients import check_access
from ocpp_gw.sdk import CallErrorReceived, CallTimeout, CsmsClient, StationOffline

EXIT_CODES = {"answered": 0, "callerror": 1, "timeout": 2, "offline": 3}


@dataclass(frozen=True)
class CallOutcome:
    """How a call ended: the station's answer (``answered`` or ``callerror``), or why there is none."""

    status: Literal["answered", "callerror", "timeout", "offline"]
    answer: dict[str, Any] | None
    """The CALLRESULT's payload, or the CALLERROR's code, description, details and origin."""
    explanation: str
    rtt_ms: float | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "answer": self.answer, "explanation": self.explanation, "rtt_ms": self.rtt_ms}


async def call(
    client: CsmsClient, station_id: str, action: str, payload: dict[str, Any], timeout: float
) -> CallOutcome:
    """Call ``action`` on the station through ``client`` and wait for the answer, ``timeout`` seconds at most."""
    started = time.monotonic()
    try:
        result = await client.send_call(station_id, action, payload, timeout)
    except StationOffline:
        return CallOutcome("offline", None, f"station {station_id} is not connected to any gateway")
    except CallTimeout:
        return CallOutcome("timeout", None, f"no answer from {station_id} within {timeout:g} s")
    except CallErrorReceived as error:
        answer = {
            "errorCode": error.code,
            "errorDescription": error.description,
            "errorDetails": error.details,
            "origin": error.origin,
        }
        gateway = error.record.gateway_id
        return CallOutcome(
            "callerror", answer, f"{action} via {gateway} answered with CALLERROR {error.code}", _since(started)
        )
    return CallOutcome("answered", result, f"{action} answered", _since(started))


def _since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


async def call_station(config: Config, station_id: str, action: str, payload: dict[str, Any]) -> int:
    """``csms-server call``: print the answer's payload (or the CALLERROR) as JSON; the exit status says which."""
    await check_access(config.kafka)
    async with CsmsClient(config.kafka) as client:
        outcome = await call(client, station_id, action, payload, config.csms.call_timeout)
    if outcome.answer is not None:
        print(json.dumps(outcome.answer))
    if outcome.status != "answered":
        print(f"csms-server call: {outcome.explanation}", file=sys.stderr)
    return outcome.exit_code
