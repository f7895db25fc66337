"""Steps for several gateway instances: stations spread over them, failover, moving stations."""

from __future__ import annotations

import time
import uuid
from typing import Any

from behave import given, then, when
from behave.runner import Context
from support.cluster import latest_partitions
from support.kafka import call_via_routes, read_until, topic_size
from support.station import Station, boot_payload, expect_close
from websockets.exceptions import ConnectionClosed, InvalidStatus

PROTOCOLS = ["ocpp1.6", "ocpp2.0.1", "ocpp2.1"]


def _connect_and_boot(context: Context, station_id: str, gateway: int, protocol: str) -> Station:
    station = Station(context.cluster.urls[gateway], station_id, [protocol])
    assert station.protocol == protocol, station.protocol
    message_id = station.call("BootNotification", boot_payload(protocol, "VendorX", "ModelY"))
    answer = station.receive()
    assert answer[:2] == [3, message_id] and answer[2]["status"] == "Accepted", answer
    context.stations[f"{station_id}@{gateway}"] = station
    return station


@given("{count:d} stations connected round-robin to the cluster's gateways and booted")
def step_spread(context: Context, count: int) -> None:
    context.placement = {}
    context.current = {}
    for index in range(count):
        station_id = f"CP_C{index}_{uuid.uuid4().hex[:4]}"
        gateway = index % len(context.cluster.gateways)
        protocol = PROTOCOLS[index % len(PROTOCOLS)]
        context.current[station_id] = _connect_and_boot(context, station_id, gateway, protocol)
        context.placement[station_id] = gateway


def _call(context: Context, station_id: str, action: str, expect_gateway: str | None = None) -> str:
    cluster = context.cluster
    message_id = str(uuid.uuid4())
    soft_reset = {"type": "Soft"} if context.current[station_id].protocol == "ocpp1.6" else {"type": "OnIdle"}
    frame = [2, message_id, action, soft_reset]
    call_via_routes(
        cluster.servers, cluster.out_topic, cluster.routes_topic, station_id, frame, expect_gateway=expect_gateway
    )
    context.calls[station_id] = message_id
    return message_id


@when('the CSMS calls every station with "{action}" through the route table')
def step_call_all(context: Context, action: str) -> None:
    context.calls = {}
    for station_id, station in context.current.items():
        expect = f"gw-{context.placement[station_id] + 1}"
        message_id = _call(context, station_id, action, expect_gateway=expect)
        frame = station.receive()
        assert frame[:3] == [2, message_id, action], frame
        station.send([3, message_id, {"status": "Accepted"}])


def _answers_on_messages_in(context: Context, station_id: str, message_id: str) -> list[dict[str, Any]]:
    def answered(records: list[dict[str, Any]]) -> bool:
        return any(r.get("message_id") == message_id and r.get("message_type") in (3, 4) for r in records)

    records = read_until(context.cluster.servers, context.cluster.in_topic, station_id, answered)
    return [r for r in records if r.get("message_id") == message_id and r.get("message_type") in (3, 4)]


@then("every station answers and the CSMS gets each answer with the request attached")
def step_all_answered(context: Context) -> None:
    for station_id, message_id in context.calls.items():
        answers = _answers_on_messages_in(context, station_id, message_id)
        assert len(answers) == 1, answers
        answer = answers[0]
        assert answer["origin"] == "station" and answer["frame"] == [3, message_id, {"status": "Accepted"}], answer
        assert answer["request"][:3] == [2, message_id, "Reset"], answer
        assert answer["gateway_id"] == f"gw-{context.placement[station_id] + 1}", answer
    context.answered_at = time.monotonic()


@then("the gateways read every messages_out record exactly once and passed none on")
def step_read_once(context: Context) -> None:
    cluster = context.cluster
    produced = topic_size(cluster.servers, cluster.out_topic)
    counters = cluster.records_read()
    read = sum(sum(c.values()) for c in counters)
    assert produced == 2 * len(context.current), produced
    assert read == produced, (produced, counters)
    assert all(c.get("delivered", 0) > 0 and c.get("forwarded", 0) == 0 for c in counters), counters


@when("gateway {number:d} of the cluster is killed with SIGKILL")
def step_kill(context: Context, number: int) -> None:
    context.killed_at = time.monotonic()
    context.cluster.kill(number - 1)
    context.orphans = [s for s, g in context.placement.items() if g == number - 1]
    assert context.orphans
    for station_id in context.orphans:
        try:
            context.current[station_id].connection.recv(timeout=10)
        except ConnectionClosed:
            continue
        raise AssertionError(f"{station_id} still connected to a killed gateway")


@when("its stations reconnect to the other gateways and boot")
def step_reconnect(context: Context) -> None:
    alive = context.cluster.alive()
    for index, station_id in enumerate(context.orphans):
        gateway = alive[index % len(alive)]
        protocol = context.current[station_id].protocol
        context.current[station_id] = _connect_and_boot(context, station_id, gateway, protocol)
        context.placement[station_id] = gateway


@then("every station was reachable again within {seconds:d} seconds of the kill")
def step_within(context: Context, seconds: int) -> None:
    elapsed = context.answered_at - context.killed_at
    assert elapsed < seconds, f"took {elapsed:.1f} s"


@given('station "{station_id}" connected to gateway {number:d} of the cluster and booted')
def step_station_on(context: Context, station_id: str, number: int) -> None:
    context.calls = {}
    context.placement = {station_id: number - 1}
    context.current = {station_id: _connect_and_boot(context, station_id, number - 1, "ocpp2.0.1")}


@given('the CSMS called "{station_id}" with "{action}" and the station received it but did not answer')
def step_unanswered_call(context: Context, station_id: str, action: str) -> None:
    expect = f"gw-{context.placement[station_id] + 1}"
    context.unanswered = _call(context, station_id, action, expect_gateway=expect)
    frame = context.current[station_id].receive()
    assert frame[:2] == [2, context.unanswered], frame
    context.old = context.current[station_id]


@when('"{station_id}" connects to gateway {number:d} of the cluster and boots')
def step_move(context: Context, station_id: str, number: int) -> None:
    context.current[station_id] = _connect_and_boot(context, station_id, number - 1, "ocpp2.0.1")
    context.placement[station_id] = number - 1


@then('the old connection is closed with code {code:d} and reason "{reason}"')
def step_old_closed(context: Context, code: int, reason: str) -> None:
    expect_close(context.old.connection, code, reason)


@then('the CSMS receives a CALLERROR "{code}" for the unanswered call on the cluster\'s messages_in')
def step_unanswered_error(context: Context, code: str) -> None:
    station_id = next(iter(context.current))
    answers = _answers_on_messages_in(context, station_id, context.unanswered)
    assert len(answers) == 1 and answers[0]["origin"] == "gateway", answers
    assert answers[0]["frame"][2] == code and answers[0]["gateway_id"] == "gw-1", answers


@then('the CSMS\'s next call reaches "{station_id}" on gateway {number:d}')
def step_next_call(context: Context, station_id: str, number: int) -> None:
    message_id = _call(context, station_id, "Reset", expect_gateway=f"gw-{number}")
    station = context.current[station_id]
    frame = station.receive()
    assert frame[:2] == [2, message_id], frame
    station.send([3, message_id, {"status": "Accepted"}])
    answers = _answers_on_messages_in(context, station_id, message_id)
    assert len(answers) == 1 and answers[0]["gateway_id"] == f"gw-{number}", answers


@then("one gateway of the cluster reports that it owns no partition")
def step_no_partition(context: Context) -> None:
    owned = [latest_partitions(g.log_text()) for g in context.cluster.gateways]
    assert owned.count([]) == 1, owned
    context.idle_gateway = owned.index([])
    assert "owns no messages_out partition" in context.cluster.gateways[context.idle_gateway].log_text()


@then("that gateway refuses a station with HTTP 503 and a Retry-After header")
def step_refuses_503(context: Context) -> None:
    url = context.cluster.urls[context.idle_gateway]
    try:
        Station(url, "CP_NOPART", ["ocpp2.0.1"])
    except InvalidStatus as refused:
        assert refused.response.status_code == 503, refused.response.status_code
        assert refused.response.headers.get("Retry-After"), refused.response.headers
    else:
        raise AssertionError("the handshake was accepted")
