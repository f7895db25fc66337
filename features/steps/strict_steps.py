"""Steps for strict mode, against the scenario's own enforcing gateway (see operations_steps)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from behave import then, when
from behave.runner import Context
from steps.operations_steps import _answer_as_csms
from support.kafka import publish, read_until
from support.station import boot_payload


def _bad_boot(protocol: str, problem: str) -> dict[str, Any]:
    payload: dict[str, Any] = boot_payload(protocol, "VendorX", "ModelY")
    v16 = protocol == "ocpp1.6"
    if problem == "a required field gone":
        payload.pop("chargePointModel" if v16 else "reason")
    elif problem == "a number for a string":
        if v16:
            payload["chargePointModel"] = 7
        else:
            payload["chargingStation"]["model"] = 7
    elif problem == "an unknown property":
        payload["surprise"] = True
    elif problem == "a value not in its enum":
        payload["reason"] = "Bored"
    elif problem != "nothing wrong":
        raise ValueError(problem)
    return payload


@when('"{station_id}" sends a BootNotification with {problem}')
def step_bad_boot(context: Context, station_id: str, problem: str) -> None:
    station = context.ops_stations[station_id]
    context.strict_id = station.call("BootNotification", _bad_boot(station.protocol, problem))
    context.strict_station = station_id


@then('"{station_id}" receives a CALLERROR "{code}" for it')
def step_callerror_for_it(context: Context, station_id: str, code: str) -> None:
    frame = context.ops_stations[station_id].receive()
    assert frame[:3] == [4, context.strict_id, code], frame


@then('"{station_id}" receives a CALLRESULTERROR "{code}" for it')
def step_callresulterror_for_it(context: Context, station_id: str, code: str) -> None:
    frame = context.ops_stations[station_id].receive()
    assert frame[:3] == [5, context.strict_id, code], frame


@then('nothing of "{station_id}" but its connection event reached the ops messages_in before its next call')
def step_nothing_but_connect(context: Context, station_id: str) -> None:
    marker = context.ops_stations[station_id].call("Heartbeat", {})
    records = read_until(
        context.kafka_servers,
        context.ops_topics[0],
        station_id,
        lambda rs: any(r.get("message_id") == marker for r in rs),
    )
    before = records[: next(i for i, r in enumerate(records) if r.get("message_id") == marker)]
    assert [r["kind"] for r in before] == ["connected"], before


@when("the CSMS sends \"{station_id}\" the call Reset '{payload}'")
def step_csms_reset(context: Context, station_id: str, payload: str) -> None:
    context.strict_id = str(uuid.uuid4())
    context.strict_call = [2, context.strict_id, "Reset", json.loads(payload)]
    publish(context.kafka_servers, context.ops_topics[1], station_id, {"v": 1, "frame": context.strict_call})
    context.strict_station = station_id


@then('the CSMS receives a CALLERROR "{code}" for it on the ops messages_in')
def step_csms_gets_callerror(context: Context, code: str) -> None:
    message_id = context.strict_id

    def answered(records: list[dict[str, Any]]) -> bool:
        return any(r.get("message_id") == message_id and r.get("message_type") == 4 for r in records)

    records = read_until(context.kafka_servers, context.ops_topics[0], context.strict_station, answered)
    [error] = [r for r in records if r.get("message_id") == message_id and r.get("message_type") == 4]
    assert error["origin"] == "gateway" and error["frame"][2] == code and error["action"] == "Reset", error


@then('the next frame "{station_id}" receives is that call')
def step_next_is_call(context: Context, station_id: str) -> None:
    frame = context.ops_stations[station_id].receive()
    assert frame == context.strict_call, frame


@when("\"{station_id}\" answers it with '{payload}'")
def step_station_answers(context: Context, station_id: str, payload: str) -> None:
    station = context.ops_stations[station_id]
    assert station.receive() == context.strict_call
    station.send([3, context.strict_id, json.loads(payload)])


@when("the CSMS answers it with '{payload}'")
def step_csms_answers(context: Context, payload: str) -> None:
    station_id = next(iter(context.ops_stations))
    _answer_as_csms(context, station_id, context.strict_id, json.loads(payload))
