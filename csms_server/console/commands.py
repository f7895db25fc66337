"""The command form's choices: the actions a CSMS may call on a station of each version, with examples.

Actions come from the ``ocpp`` package's schemas (every request of the version), less those the
reference CSMS answers itself (stations send them), DataTransfer excepted: it goes both ways.
Examples are valid payloads (a unit test checks them against the schemas) for the common commands.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import ocpp

from ocpp_gw.core.protocol import OcppVersion

from ..handlers import HANDLERS

SCHEMA_FOLDERS = {OcppVersion.V16: "v16", OcppVersion.V201: "v201", OcppVersion.V21: "v21"}

_V2_EXAMPLES: dict[str, dict[str, Any]] = {
    "Reset": {"type": "Immediate"},
    "TriggerMessage": {"requestedMessage": "Heartbeat"},
    "GetVariables": {
        "getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]
    },
    "RequestStartTransaction": {
        "idToken": {"idToken": "DEMO-TAG", "type": "ISO14443"},
        "remoteStartId": 1,
        "evseId": 1,
    },
    "RequestStopTransaction": {"transactionId": "TRANSACTION_ID"},
    "ChangeAvailability": {"operationalStatus": "Operative", "evse": {"id": 1}},
}

EXAMPLES: dict[OcppVersion, dict[str, dict[str, Any]]] = {
    OcppVersion.V16: {
        "Reset": {"type": "Soft"},
        "TriggerMessage": {"requestedMessage": "Heartbeat"},
        "GetConfiguration": {"key": ["HeartbeatInterval"]},
        "RemoteStartTransaction": {"idTag": "DEMO-TAG", "connectorId": 1},
        "RemoteStopTransaction": {"transactionId": 1},
        "ChangeAvailability": {"connectorId": 1, "type": "Operative"},
    },
    OcppVersion.V201: _V2_EXAMPLES,
    OcppVersion.V21: _V2_EXAMPLES,
}
"""Prefilled payloads; "TRANSACTION_ID" (and 1.6's transactionId 1) stand for the station's open transaction."""


@cache
def station_actions(version: OcppVersion) -> tuple[str, ...]:
    """The actions of ``version`` a CSMS may call, the examples' first, then the rest by name."""
    folder = Path(ocpp.__file__).parent / SCHEMA_FOLDERS[version] / "schemas"
    requests = {path.stem.removesuffix("Request") for path in folder.glob("*.json")}
    requests = {name for name in requests if not name.endswith("Response")}
    callable_ = {name for name in requests if (version, name) not in HANDLERS or name == "DataTransfer"}
    common = [name for name in EXAMPLES[version] if name in callable_]
    return tuple(common + sorted(callable_ - set(common)))


def command_catalogue() -> dict[str, dict[str, Any]]:
    """What the page's command form offers, per OCPP version (the subprotocol name)."""
    return {
        version.value: {"actions": list(station_actions(version)), "examples": EXAMPLES[version]}
        for version in OcppVersion
    }
