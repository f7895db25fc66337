"""``csms-server call``: start a call to one station through Kafka and wait for its answer.

The CALL goes on the partition of the station's current route (``station_routes``); the answer
comes back on ``messages_in`` like any other station frame. Both are :class:`ocpp_gw.sdk.CsmsClient`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ocpp_gw.config import Config
from ocpp_gw.kafka_clients import check_access
from ocpp_gw.sdk import CallErrorReceived, CallTimeout, CsmsClient, StationOffline

EXIT_CALLERROR = 1
EXIT_TIMEOUT = 2
EXIT_OFFLINE = 3


async def call_station(config: Config, station_id: str, action: str, payload: dict[str, Any]) -> int:
    """Publish the CALL, print the answer's payload (or the CALLERROR) as JSON; the exit status says which."""
    await check_access(config.kafka)
    try:
        async with CsmsClient(config.kafka) as client:
            result = await client.send_call(station_id, action, payload, config.csms.call_timeout)
    except StationOffline:
        print(f"csms-server call: station {station_id} is not connected to any gateway", file=sys.stderr)
        return EXIT_OFFLINE
    except CallTimeout:
        print(f"csms-server call: no answer from {station_id} within {config.csms.call_timeout:g} s", file=sys.stderr)
        return EXIT_TIMEOUT
    except CallErrorReceived as error:
        answer = {
            "errorCode": error.code,
            "errorDescription": error.description,
            "errorDetails": error.details,
            "origin": error.origin,
        }
        print(json.dumps(answer))
        gateway = error.record.gateway_id
        print(f"csms-server call: {action} via {gateway} answered with CALLERROR {error.code}", file=sys.stderr)
        return EXIT_CALLERROR
    print(json.dumps(result))
    return 0
