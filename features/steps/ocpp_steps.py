"""Steps that drive real stations against the running gateways and look at the real Kafka topics."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import datetime
from typing import Any

from behave import given, then, when
from behave.runner import Context
from support.kafka import publish, read_until
from support.station import Station, boot_payload, expect_close
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

IN_TOPIC = "messages_in"


def _open(context: Context, base_url: str, station_id: str, subprotocols: list[str]) -> Station:
    station = Station(base_url, station_id, subprotocols)
    context.stations = getattr(context, "stations", {})
    context.stations[station_id] = station
    context.station = station
    return station


@given(
    'I have a charging station with unique_id "{station_id}" and subprotocol "{subprotocol}" connected to the server'
)
def step_connected(context: Context, station_id: str, subprotocol: str) -> None:
    context.target_station = None
    station = _open(context, context.gateway_url, station_id, [subprotocol])
    assert station.protocol == subprotocol, f"negotiated {station.protocol!r}, wanted {subprotocol!r}"
    context.in_topic = IN_TOPIC


@given('a charging station "{station_id}" with subprotocol "{subprotocol}" connected to a gateway that no CSMS serves')
def step_connected_lonely(context: Context, station_id: str, subprotocol: str) -> None:
    context.target_station = None
    station = _open(context, context.lonely_gateway_url, station_id, [subprotocol])
    assert station.protocol == subprotocol
    context.in_topic, context.out_topic = context.lonely_topics


@given('a station "{station_id}" offering subprotocols "{offered}" connects to the server')
def step_offering(context: Context, station_id: str, offered: str) -> None:
    _open(context, context.gateway_url, station_id, offered.split(","))


@when('I send a BootNotification message with vendor "{vendor}" and model "{model}"')
def step_boot(context: Context, vendor: str, model: str) -> None:
    station = context.station
    context.sent_at = time.monotonic()
    context.call_id = station.call("BootNotification", boot_payload(station.protocol, vendor, model))


@then('I should receive "{status}" as response')
def step_boot_answer(context: Context, status: str) -> None:
    frame = context.station.receive()
    assert frame[0] == 3 and frame[1] == context.call_id, f"expected the CALLRESULT of the boot, got {frame}"
    assert frame[2]["status"] == status, f"expected status {status}, got {frame[2]}"
    assert isinstance(frame[2]["interval"], int) and "currentTime" in frame[2], frame


@then('I start sending heartbeats for "{seconds:d}" seconds')
def step_heartbeats(context: Context, seconds: int) -> None:
    """One Heartbeat a second, each answered by the CSMS for itself and passed to it exactly once."""
    station = context.station
    sent: list[str] = []
    clock: list[datetime] = []
    for _ in range(seconds):
        started = time.monotonic()
        message_id = station.call("Heartbeat", {})
        frame = station.receive()
        assert frame[0] == 3 and frame[1] == message_id, f"expected the Heartbeat CALLRESULT, got {frame}"
        assert frame[2]["currentTime"].endswith("Z"), frame
        sent.append(message_id)
        clock.append(datetime.fromisoformat(frame[2]["currentTime"]))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))  # one heartbeat a second is the scenario
    # Each answer was written after the previous one arrived, so a live CSMS's clock moved on: an
    # answer replayed or cached on the way would repeat a time.
    assert all(a < b for a, b in itertools.pairwise(clock)), clock

    def last_seen(records: list[dict[str, Any]]) -> bool:
        return any(r.get("message_id") == sent[-1] for r in records)

    records = read_until(context.kafka_servers, IN_TOPIC, station.station_id, last_seen)
    published = [r for r in records if r.get("message_id") in sent]
    assert [r["message_id"] for r in published] == sent, f"heartbeats on {IN_TOPIC}, expected once each: {published}"
    assert all(r["action"] == "Heartbeat" and r["origin"] == "station" and r["frame"][0] == 2 for r in published)


@then("close the connection")
def step_close(context: Context) -> None:
    connection = context.station.connection
    connection.close()
    assert connection.close_code == 1000, connection.close_code


@then('the handshake selected subprotocol "{subprotocol}"')
def step_selected(context: Context, subprotocol: str) -> None:
    assert context.station.protocol == subprotocol, context.station.protocol


@then("the handshake selected no subprotocol")
def step_selected_none(context: Context) -> None:
    assert context.station.protocol is None, context.station.protocol


@then("the gateway closes the connection with code {code:d}")
def step_closed_by_gateway(context: Context, code: int) -> None:
    expect_close(context.station.connection, code)


@when('the station sends the text "{text}"')
def step_send_text(context: Context, text: str) -> None:
    context.station.send(text)


@when("the station sends a binary frame")
def step_send_binary(context: Context) -> None:
    context.station.send(b"\x02\x00garbage")


@then('the station receives a CALLERROR "{code}" for message id "{message_id}"')
def step_callerror(context: Context, code: str, message_id: str) -> None:
    frame = context.station.receive()
    assert frame[0] == 4 and frame[1] == message_id and frame[2] == code, frame
    assert isinstance(frame[3], str) and frame[4] == {}, frame


def _kinds_until_heartbeat(context: Context, station_id: str) -> list[dict[str, Any]]:
    """Send a Heartbeat and read the station's records on messages_in up to it (same key, same order)."""
    message_id = context.station.call("Heartbeat", {})
    answer = context.station.receive()
    assert answer[1] == message_id, answer

    def heartbeat_seen(records: list[dict[str, Any]]) -> bool:
        return any(r.get("message_id") == message_id for r in records)

    records = read_until(context.kafka_servers, IN_TOPIC, station_id, heartbeat_seen)
    return records[: next(i for i, r in enumerate(records) if r.get("message_id") == message_id)]


@then('nothing but the connection event reached messages_in for "{station_id}"')
def step_nothing_on_kafka(context: Context, station_id: str) -> None:
    before = _kinds_until_heartbeat(context, station_id)
    last_connect = max(i for i, r in enumerate(before) if r["kind"] == "connected")
    since = before[last_connect + 1 :]
    assert since == [], f"records published for the bad frame: {since}"


@then('the records on messages_in for "{station_id}" carry station id "{expected}"')
def step_records_station_id(context: Context, station_id: str, expected: str) -> None:
    before = _kinds_until_heartbeat(context, station_id)
    assert before and all(r["station_id"] == expected for r in before), before
    boot = [r for r in before if r.get("action") == "BootNotification"]
    assert boot and boot[-1]["protocol"] == context.station.protocol, boot


@then('connecting as "{station_id}" is refused with HTTP {status:d}')
def step_refused(context: Context, station_id: str, status: int) -> None:
    try:
        connect(f"{context.gateway_url}/{station_id}", subprotocols=["ocpp2.0.1"], open_timeout=10)  # type: ignore[list-item]
    except InvalidStatus as refused:
        assert refused.response.status_code == status, refused.response.status_code
    else:
        raise AssertionError("the handshake was accepted")


@then('the station receives a CALLERROR "{code}" for its call after the gateway\'s timeout')
def step_timeout_callerror(context: Context, code: str) -> None:
    frame = context.station.receive(timeout=context.lonely_timeout + 10)
    waited = time.monotonic() - context.sent_at
    assert frame[0] == 4 and frame[1] == context.call_id and frame[2] == code, frame
    assert waited >= context.lonely_timeout, f"answered after {waited:.2f} s, before the timeout"


@when("the CSMS sends the station a \"{action}\" call with payload '{payload}'")
def step_csms_call(context: Context, action: str, payload: str) -> None:
    context.csms_call_id = str(uuid.uuid4())
    context.csms_action = action
    context.csms_payload = json.loads(payload)
    frame = [2, context.csms_call_id, action, context.csms_payload]
    publish(context.kafka_servers, context.out_topic, context.station.station_id, {"v": 1, "frame": frame})


@then('the station receives the "{action}" call')
def step_station_gets_call(context: Context, action: str) -> None:
    frame = context.station.receive()
    assert frame == [2, context.csms_call_id, action, context.csms_payload], frame


@then('the CSMS receives a CALLERROR "{code}" for its "{action}" call with the request attached')
def step_csms_gets_callerror(context: Context, code: str, action: str) -> None:
    call_id = context.csms_call_id

    def answered(records: list[dict[str, Any]]) -> bool:
        return any(r.get("message_id") == call_id and r.get("message_type") == 4 for r in records)

    station_id = getattr(context, "target_station", None) or context.station.station_id
    records = read_until(context.kafka_servers, context.in_topic, station_id, answered, context.lonely_timeout + 15)
    answers = [r for r in records if r.get("message_id") == call_id]
    assert len(answers) == 1, f"expected exactly one answer, got {answers}"
    answer = answers[0]
    assert answer["origin"] == "gateway" and answer["frame"][2] == code, answer
    assert answer["action"] == action and answer["request"] == [2, call_id, action, context.csms_payload], answer


@when('the station "{station_id}" connects again with subprotocol "{subprotocol}"')
def step_connect_again(context: Context, station_id: str, subprotocol: str) -> None:
    context.first = context.station
    context.stations[f"{station_id}#1"] = context.first
    _open(context, context.gateway_url, station_id, [subprotocol])


@then('the first connection is closed with code {code:d} and reason "{reason}"')
def step_first_closed(context: Context, code: int, reason: str) -> None:
    expect_close(context.first.connection, code, reason)


@then("the new connection is answered")
def step_new_answered(context: Context) -> None:
    message_id = context.station.call("Heartbeat", {})
    frame = context.station.receive()
    assert frame[:2] == [3, message_id], frame


@then('messages_in holds, in order, for "{station_id}": {kinds}')
def step_lifecycle_order(context: Context, station_id: str, kinds: str) -> None:
    before = _kinds_until_heartbeat(context, station_id)
    lifecycle = [r["kind"] for r in before if r["kind"] != "frame"]
    expected = [kind.strip() for kind in kinds.split(",")]
    assert lifecycle[-len(expected) :] == expected, lifecycle
    closes = [r for r in before if r["kind"] == "disconnected"]
    assert closes[-1]["close_code"] == 1000 and closes[-1]["close_reason"] == "replaced by a newer connection", closes


@when(
    'the CSMS sends a "{action}" call with payload \'{payload}\' to the unconnected station "{station_id}" '
    'speaking "{protocol}"'
)
def step_call_unconnected(context: Context, action: str, payload: str, station_id: str, protocol: str) -> None:
    context.csms_call_id = str(uuid.uuid4())
    context.csms_payload = json.loads(payload)
    context.in_topic, context.out_topic = IN_TOPIC, "messages_out"
    context.target_station = station_id
    frame = [2, context.csms_call_id, action, context.csms_payload]
    publish(context.kafka_servers, "messages_out", station_id, {"v": 1, "frame": frame, "protocol": protocol})
