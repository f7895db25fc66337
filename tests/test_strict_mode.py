"""Strict mode: each version's error codes, both directions, enforce and log."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from csms_server.handlers import HANDLERS
from csms_server.worker import answer
from ocpp_gw.config import CsmsConfig
from ocpp_gw.core.frames import parse_frame
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.core.session import Notice, PublishToCsms, SendToStation, SessionLimits, StationSession
from ocpp_gw.core.validation import PayloadValidator, StrictMode, StrictPolicy
from ocpp_gw.schemas import load_ocpp_schemas

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
HANDLED = sorted(HANDLERS, key=lambda k: (k[0].value, k[1]))
ENFORCE_ALL = StrictPolicy(*(StrictMode.ENFORCE,) * 4)


@cache
def validator(policy: StrictPolicy = ENFORCE_ALL) -> PayloadValidator:
    return PayloadValidator(load_ocpp_schemas((V16, V201, V21)), policy)


BOOT = {
    V16: {"chargePointVendor": "V", "chargePointModel": "M"},
    V201: {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"},
    V21: {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"},
}


def broken(version: OcppVersion, kind: str) -> dict[str, object]:
    payload: dict[str, Any] = json.loads(json.dumps(BOOT[version]))
    if kind == "missing":
        payload.pop("chargePointModel" if version is V16 else "reason")
    elif kind == "type":
        if version is V16:
            payload["chargePointModel"] = 7
        else:
            payload["chargingStation"]["model"] = 7
    elif kind == "extra":
        payload["surprise"] = True
    elif kind == "value":
        if version is V16:
            payload["chargePointModel"] = "M" * 100
        else:
            payload["reason"] = "Bored"
    return payload


@pytest.mark.parametrize(
    ("version", "kind", "code"),
    [
        (V16, "missing", "ProtocolError"),
        (V16, "type", "TypeConstraintViolation"),
        (V16, "extra", "FormationViolation"),
        (V16, "value", "PropertyConstraintViolation"),
        (V201, "missing", "OccurrenceConstraintViolation"),
        (V201, "type", "TypeConstraintViolation"),
        (V201, "extra", "FormatViolation"),
        (V201, "value", "PropertyConstraintViolation"),
        (V21, "missing", "OccurrenceConstraintViolation"),
        (V21, "type", "TypeConstraintViolation"),
        (V21, "extra", "FormatViolation"),
        (V21, "value", "PropertyConstraintViolation"),
    ],
)
def test_station_calls_get_the_versions_code_and_stay_off_kafka(version: OcppVersion, kind: str, code: str) -> None:
    session = StationSession("CP", version, SessionLimits(), validator())
    actions = session.station_text(json.dumps([2, "m1", "BootNotification", broken(version, kind)]), now=0)
    sent = [json.loads(a.text) for a in actions if isinstance(a, SendToStation)]
    assert [f[:3] for f in sent] == [[4, "m1", code]], sent
    assert not [a for a in actions if isinstance(a, PublishToCsms)]


def test_the_16_occurrence_code_keeps_the_errata_spelling() -> None:
    violation = validator().check_request(V16, "MeterValues", {"connectorId": 1, "meterValue": []})
    assert violation is not None and violation.code == "OccurenceConstraintViolation"
    violation = validator().check_request(V201, "MeterValues", {"evseId": 1, "meterValue": []})
    assert violation is not None and violation.code == "OccurrenceConstraintViolation"


@pytest.mark.parametrize("version", [V16, V201, V21])
def test_unknown_actions_are_not_implemented(version: OcppVersion) -> None:
    session = StationSession("CP", version, SessionLimits(), validator())
    actions = session.station_text('[2,"m1","FlyToTheMoon",{}]', now=0)
    assert [json.loads(a.text)[:3] for a in actions if isinstance(a, SendToStation)] == [[4, "m1", "NotImplemented"]]


def test_an_invalid_csms_call_is_refused_back_to_the_csms_and_never_reaches_the_station() -> None:
    session = StationSession("CP", V201, SessionLimits(), validator())
    call = parse_frame('[2,"c1","Reset",{"type":"Sideways"}]', V201)
    actions = session.csms_frame(call, now=0)
    assert not [a for a in actions if isinstance(a, SendToStation)]
    [refusal] = [a for a in actions if isinstance(a, PublishToCsms)]
    assert refusal.origin == "gateway" and json.loads(refusal.text)[:3] == [4, "c1", "PropertyConstraintViolation"]


def test_an_invalid_station_result_in_21_gets_a_callresulterror_and_the_csms_a_callerror() -> None:
    session = StationSession("CP", V21, SessionLimits(), validator())
    session.csms_frame(parse_frame('[2,"c1","Reset",{"type":"Immediate"}]', V21), now=0)
    actions = session.station_text('[3,"c1",{"status":"Maybe"}]', now=1)
    [to_station] = [json.loads(a.text) for a in actions if isinstance(a, SendToStation)]
    [to_csms] = [a for a in actions if isinstance(a, PublishToCsms)]
    assert to_station[:3] == [5, "c1", "PropertyConstraintViolation"]
    assert json.loads(to_csms.text)[:2] == [4, "c1"] and to_csms.request is not None


def test_an_invalid_csms_result_reaches_the_station_as_a_callerror() -> None:
    session = StationSession("CP", V16, SessionLimits(), validator())
    session.station_text(json.dumps([2, "m1", "BootNotification", BOOT[V16]]), now=0)
    actions = session.csms_frame(parse_frame('[3,"m1",{"status":"Accepted"}]', V16), now=1)
    assert [json.loads(a.text)[:3] for a in actions if isinstance(a, SendToStation)] == [[4, "m1", "ProtocolError"]]


def test_log_mode_passes_the_frame_on_and_says_so() -> None:
    logging_only = validator(StrictPolicy(*(StrictMode.LOG,) * 4))
    session = StationSession("CP", V201, SessionLimits(), logging_only)
    actions = session.station_text(json.dumps([2, "m1", "BootNotification", broken(V201, "missing")]), now=0)
    assert [a.event for a in actions if isinstance(a, Notice)] == ["station_call_invalid"]
    assert [a.message_id for a in actions if isinstance(a, PublishToCsms)] == ["m1"]


def test_leniency_is_explicit() -> None:
    lenient = validator(
        StrictPolicy(*(StrictMode.ENFORCE,) * 4, allow_additional_properties=True, lenient_formats=True)
    )
    assert lenient.check_request(V201, "BootNotification", broken(V201, "extra")) is None
    assert validator().check_request(V201, "BootNotification", broken(V201, "extra")) is not None
    heartbeat_bad_time = {"currentTime": "yesterday"}
    assert validator().check_response(V201, "Heartbeat", heartbeat_bad_time) is not None
    assert lenient.check_response(V201, "Heartbeat", heartbeat_bad_time) is None


@pytest.mark.parametrize(("version", "action"), HANDLED)
def test_every_reference_csms_answer_passes_strict_mode(version: OcppVersion, action: str) -> None:
    document = {
        "kind": "frame",
        "origin": "station",
        "station_id": "CP",
        "protocol": version.value,
        "frame": [2, "m1", action, BOOT[version] if action == "BootNotification" else {}],
    }
    reply = answer(document, CsmsConfig())
    assert reply is not None and validator().check_response(version, action, reply[2]) is None
