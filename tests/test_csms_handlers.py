"""The reference CSMS answers with payloads that validate against the ocpp package's own schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import ocpp
import pytest

from csms_server.handlers import HANDLERS
from csms_server.worker import answer
from ocpp_gw.core.protocol import OcppVersion

SCHEMA_DIRS = {OcppVersion.V16: "v16", OcppVersion.V201: "v201", OcppVersion.V21: "v21"}
REQUESTS = {
    ("ocpp1.6", "BootNotification"): {"chargePointVendor": "V", "chargePointModel": "M"},
    ("ocpp2.0.1", "BootNotification"): {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"},
    ("ocpp2.1", "BootNotification"): {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"},
}


def response_schema(version: OcppVersion, action: str) -> dict[str, object]:
    folder = Path(ocpp.__file__).parent / SCHEMA_DIRS[version] / "schemas"
    return json.loads((folder / f"{action}Response.json").read_text())  # type: ignore[no-any-return]


def record(protocol: str, action: str, payload: dict[str, object]) -> dict[str, object]:
    return {
        "v": 1,
        "kind": "frame",
        "origin": "station",
        "station_id": "CP_1",
        "protocol": protocol,
        "frame": [2, "m1", action, payload],
    }


@pytest.mark.parametrize(("version", "action"), sorted(HANDLERS, key=lambda k: (k[0].value, k[1])))
def test_every_handler_answers_schema_valid(version: OcppVersion, action: str) -> None:
    reply = answer(record(version.value, action, REQUESTS.get((version.value, action), {})), heartbeat_interval=60)
    assert reply is not None and reply[:2] == [3, "m1"]
    jsonschema.validate(reply[2], response_schema(version, action))


@pytest.mark.parametrize(("protocol", "code"), [("ocpp1.6", "NotImplemented"), ("ocpp2.1", "NotImplemented")])
def test_unknown_actions_get_not_implemented(protocol: str, code: str) -> None:
    reply = answer(record(protocol, "FlyToTheMoon", {}), heartbeat_interval=60)
    assert reply is not None and reply[:3] == [4, "m1", code]


def test_only_station_calls_are_answered() -> None:
    assert answer({**record("ocpp1.6", "Heartbeat", {}), "kind": "connected"}, 60) is None
    assert answer({**record("ocpp1.6", "Heartbeat", {}), "origin": "gateway"}, 60) is None
    assert answer({**record("ocpp1.6", "Heartbeat", {}), "frame": [3, "m1", {}]}, 60) is None
