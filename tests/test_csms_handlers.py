"""The reference CSMS answers with payloads that validate against the ocpp package's own schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import ocpp
import pytest

from csms_server.handlers import HANDLERS
from csms_server.worker import answer
from ocpp_gw.config import CsmsConfig
from ocpp_gw.core.protocol import OcppVersion

SCHEMA_DIRS = {OcppVersion.V16: "v16", OcppVersion.V201: "v201", OcppVersion.V21: "v21"}
REQUESTS: dict[tuple[str, str], dict[str, object]] = {
    ("ocpp1.6", "BootNotification"): {"chargePointVendor": "V", "chargePointModel": "M"},
    ("ocpp2.0.1", "BootNotification"): {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"},
    ("ocpp2.1", "BootNotification"): {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"},
    ("ocpp1.6", "StartTransaction"): {
        "connectorId": 1,
        "idTag": "T",
        "meterStart": 0,
        "timestamp": "2026-01-01T00:00:00Z",
    },
    ("ocpp2.0.1", "TransactionEvent"): {"idToken": {"idToken": "T", "type": "ISO14443"}},
    ("ocpp2.1", "VatNumberValidation"): {"vatNumber": "NL123"},
}
SETTINGS = CsmsConfig(heartbeat_interval=60)
HANDLED = sorted(HANDLERS, key=lambda k: (k[0].value, k[1]))
CORE = {
    OcppVersion.V16: [
        "StatusNotification",
        "Authorize",
        "MeterValues",
        "StartTransaction",
        "StopTransaction",
        "DataTransfer",
        "FirmwareStatusNotification",
        "DiagnosticsStatusNotification",
    ],
    OcppVersion.V201: [
        "StatusNotification",
        "Authorize",
        "MeterValues",
        "TransactionEvent",
        "NotifyReport",
        "NotifyEvent",
        "SecurityEventNotification",
        "FirmwareStatusNotification",
        "DataTransfer",
    ],
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


@pytest.mark.parametrize(("version", "action"), HANDLED)
def test_every_handler_answers_schema_valid(version: OcppVersion, action: str) -> None:
    reply = answer(record(version.value, action, REQUESTS.get((version.value, action), {})), SETTINGS)
    assert reply is not None and reply[:2] == [3, "m1"]
    jsonschema.validate(reply[2], response_schema(version, action))


@pytest.mark.parametrize(("protocol", "code"), [("ocpp1.6", "NotImplemented"), ("ocpp2.1", "NotImplemented")])
def test_unknown_actions_get_not_implemented(protocol: str, code: str) -> None:
    reply = answer(record(protocol, "FlyToTheMoon", {}), SETTINGS)
    assert reply is not None and reply[:3] == [4, "m1", code]


def test_only_station_calls_are_answered() -> None:
    assert answer({**record("ocpp1.6", "Heartbeat", {}), "kind": "connected"}, SETTINGS) is None
    assert answer({**record("ocpp1.6", "Heartbeat", {}), "origin": "gateway"}, SETTINGS) is None
    assert answer({**record("ocpp1.6", "Heartbeat", {}), "frame": [3, "m1", {}]}, SETTINGS) is None


def test_the_core_messages_of_each_version_have_handlers() -> None:
    for version, actions in CORE.items():
        for action in ["BootNotification", "Heartbeat", *actions]:
            assert (version, action) in HANDLERS, (version, action)
    assert all((OcppVersion.V21, action) in HANDLERS for action in CORE[OcppVersion.V201])


@pytest.mark.parametrize(
    ("policy", "allowed", "station", "status"),
    [
        ("accept", (), "CP_1", "Accepted"),
        ("allow_list", ("CP_1",), "CP_1", "Accepted"),
        ("allow_list", ("CP_2",), "CP_1", "Rejected"),
        ("pending", (), "CP_1", "Pending"),
    ],
)
def test_boot_policy(policy: str, allowed: tuple[str, ...], station: str, status: str) -> None:
    settings = CsmsConfig(boot_policy=policy, allowed_stations=allowed)
    document = {
        **record("ocpp2.0.1", "BootNotification", REQUESTS[("ocpp2.0.1", "BootNotification")]),
        "station_id": station,
    }
    reply = answer(document, settings)
    assert reply is not None and reply[2]["status"] == status


def test_data_transfer_knows_only_its_own_vendor() -> None:
    ours = answer(record("ocpp1.6", "DataTransfer", {"vendorId": "org.ocpp-gw"}), SETTINGS)
    theirs = answer(record("ocpp1.6", "DataTransfer", {"vendorId": "com.other"}), SETTINGS)
    assert ours is not None and ours[2] == {"status": "Accepted"}
    assert theirs is not None and theirs[2] == {"status": "UnknownVendorId"}


def test_an_unknown_action_of_any_length_gets_a_description_within_255_characters() -> None:
    reply = answer(record("ocpp2.0.1", "X" * 10_000, {}), SETTINGS)
    assert reply is not None and reply[2] == "NotImplemented" and len(reply[3]) <= 255
