"""Steps for operations: a gateway of the scenario's own, its status port, its limits and its drain."""

from __future__ import annotations

import itertools
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from behave import given, then, when
from behave.runner import Context
from support.kafka import publish_to_partition, read_until
from support.processes import Program
from support.station import Station, boot_payload, expect_close
from websockets.exceptions import InvalidStatus

from testing.harness import gateway_env, http_status, metric_samples, wait_until

OPS_PORT, OPS_STATUS_PORT = 19300, 19309


def start_ops_gateway(context: Context, extra: dict[str, str] | None = None) -> None:
    suffix = uuid.uuid4().hex[:8]
    context.ops_topics = (f"ops_in_{suffix}", f"ops_out_{suffix}")
    kafka = {
        "OCPPGW_KAFKA__SERVERS": context.kafka_servers,
        "OCPPGW_KAFKA__IN_MESSAGES_TOPIC": context.ops_topics[0],
        "OCPPGW_KAFKA__OUT_MESSAGES_TOPIC": context.ops_topics[1],
        "OCPPGW_KAFKA__ROUTES_TOPIC": f"ops_routes_{suffix}",
        "OCPPGW_KAFKA__OCPP_GW_CONSUMER_GROUP": f"ops_{suffix}",
    }
    env = gateway_env(
        kafka,
        OPS_PORT,
        OPS_STATUS_PORT,
        f"gw-ops-{suffix}",
        max_connections="3",
        max_message_size="4096",
        station_message_rate="1",
        station_message_burst="3",
        drain_rate="2",
    ) | (extra or {})
    context.ops = Program(f"ops-gateway-{suffix}", "ocpp_gw", env, context.log_dir)
    wait_until(lambda: _status(context, "/healthz") == 200, 60, "the ops gateway's /healthz")
    context.ops.wait_for_log("gateway ready", timeout=60)
    context.ops_stations = {}


def _status(context: Context, path: str) -> int:
    context.ops.check_alive()
    try:
        return http_status(OPS_STATUS_PORT, path)
    except OSError:
        return 0


def _value(name: str, **labels: str) -> float:
    return sum(value for found, value in metric_samples(OPS_STATUS_PORT, name) if labels.items() <= found.items())


def _open(context: Context, station_id: str, protocol: str) -> Station:
    station = Station(f"ws://127.0.0.1:{OPS_PORT}/ocpp", station_id, [protocol])
    context.ops_stations[station_id] = station
    context.stations[f"ops:{station_id}"] = station
    return station


@then("the ops gateway's /healthz answers 200 and /readyz answers 200")
def step_health(context: Context) -> None:
    assert _status(context, "/healthz") == 200
    wait_until(lambda: _status(context, "/readyz") == 200, 30, "/readyz to answer 200")


@given('an ops station "{station_id}" speaking "{protocol}"')
def step_ops_station(context: Context, station_id: str, protocol: str) -> None:
    _open(context, station_id, protocol)


@given('ops stations "{first}", "{second}" and "{third}" speaking "{protocol}"')
def step_ops_stations(context: Context, first: str, second: str, third: str, protocol: str) -> None:
    for station_id in (first, second, third):
        _open(context, station_id, protocol)


def _answer_as_csms(context: Context, station_id: str, message_id: str, payload: dict[str, Any]) -> None:
    records = read_until(
        context.kafka_servers,
        context.ops_topics[0],
        station_id,
        lambda rs: any(r.get("message_id") == message_id for r in rs),
    )
    reply_partition = next(r for r in records if r.get("message_id") == message_id)["reply_partition"]
    publish_to_partition(
        context.kafka_servers,
        context.ops_topics[1],
        reply_partition,
        station_id,
        {"v": 1, "frame": [3, message_id, payload]},
    )


@when('"{station_id}" sends a Heartbeat that the CSMS answers')
def step_heartbeat_answered(context: Context, station_id: str) -> None:
    station = context.ops_stations[station_id]
    message_id = station.call("Heartbeat", {})
    _answer_as_csms(context, station_id, message_id, {"currentTime": "2026-01-01T00:00:00Z"})
    assert station.receive()[:2] == [3, message_id]


@then('the ops gateway\'s metrics show {count:d} "{protocol}" station connected')
def step_connected_metric(context: Context, count: int, protocol: str) -> None:
    assert _value("ocpp_gw_connected_stations", protocol=protocol) == count


@then("the ops gateway's metrics count 1 station CALL, 1 CSMS CALLRESULT and 1 call round trip")
def step_traffic_metrics(context: Context) -> None:
    assert _value("ocpp_gw_frames_total", direction="station_to_csms", message_type="CALL") == 1
    assert _value("ocpp_gw_frames_total", direction="csms_to_station", message_type="CALLRESULT") == 1
    assert _value("ocpp_gw_call_round_trip_seconds_count") == 1
    assert _value("ocpp_gw_ready") == 1 and _value("ocpp_gw_owned_partitions") > 0


@then("a fourth ops station is refused with HTTP 503 and a Retry-After header")
def step_fourth_refused(context: Context) -> None:
    try:
        _open(context, "CP_L4", "ocpp1.6")
    except InvalidStatus as refused:
        assert refused.response.status_code == 503 and refused.response.headers.get("Retry-After")
    else:
        raise AssertionError("the fourth station was accepted")


@then('the ops gateway\'s metrics count {count:d} handshake refused for "{reason}"')
def step_refused_metric(context: Context, count: int, reason: str) -> None:
    assert _value("ocpp_gw_handshakes_refused_total", reason=reason) == count


@when('"{station_id}" sends a frame of {size:d} bytes')
def step_big_frame(context: Context, station_id: str, size: int) -> None:
    context.ops_stations[station_id].send('[2,"big","DataTransfer",{"data":"' + "x" * size + '"}]')


@then('the ops connection of "{station_id}" is closed with code {code:d}')
def step_ops_closed(context: Context, station_id: str, code: int) -> None:
    expect_close(context.ops_stations[station_id].connection, code)


@then('the ops gateway\'s metrics count {count:d} connection closed with code "{code}"')
def step_closed_metric(context: Context, count: int, code: str) -> None:
    wait_until(
        lambda: _value("ocpp_gw_connections_closed_total", code=code) == count, 10, f"{count} closes with {code}"
    )


@when('"{station_id}" sends {count:d} BootNotifications back to back')
def step_flood(context: Context, station_id: str, count: int) -> None:
    station = context.ops_stations[station_id]
    context.flood = [station.call("BootNotification", boot_payload("ocpp2.0.1", "V", "M")) for _ in range(count)]


@when('"{station_id}" sends one more BootNotification')
def step_one_more(context: Context, station_id: str) -> None:
    station = context.ops_stations[station_id]
    context.flood.append(station.call("BootNotification", boot_payload("ocpp2.0.1", "V", "M")))


@then('"{station_id}" gets these CALLERRORs, in order, and nothing else')
def step_flood_answers(context: Context, station_id: str) -> None:
    """One CALLERROR per row, for the row's call (1 is the first of the flood); that nothing else
    comes (no answer to call 1: no CSMS reads the ops topics) the next step's close shows."""
    station = context.ops_stations[station_id]
    for row in context.table:
        message_id = context.flood[int(row["call"]) - 1]
        frame = station.receive(timeout=10)
        assert frame[:3] == [4, message_id, row["code"]] and row["about"] in frame[3], (row.cells, frame)


@given('"{station_id}" has a Heartbeat in flight')
def step_in_flight(context: Context, station_id: str) -> None:
    context.in_flight = (station_id, context.ops_stations[station_id].call("Heartbeat", {}))
    read_until(
        context.kafka_servers,
        context.ops_topics[0],
        station_id,
        lambda rs: any(r.get("message_id") == context.in_flight[1] for r in rs),
    )


@when("the ops gateway gets SIGTERM")
def step_sigterm(context: Context) -> None:
    context.ops.send_signal(signal.SIGTERM)


@then("the ops gateway's /readyz answers 503")
def step_not_ready(context: Context) -> None:
    wait_until(lambda: _status(context, "/readyz") == 503, 5, "/readyz to answer 503")


@when("the CSMS answers the Heartbeat in flight")
def step_answer_in_flight(context: Context) -> None:
    station_id, message_id = context.in_flight
    _answer_as_csms(context, station_id, message_id, {"currentTime": "2026-01-01T00:00:00Z"})


@then('"{station_id}" receives the answer before its connection closes')
def step_answer_before_close(context: Context, station_id: str) -> None:
    frame = context.ops_stations[station_id].receive()
    assert frame[:2] == [3, context.in_flight[1]], frame


def _closed_at(station: Station, code: int) -> float:
    expect_close(station.connection, code)
    return time.monotonic()


@then("every ops station is closed with code 1012, in the order they connected, half a second apart")
def step_paced_close(context: Context) -> None:
    """The gateway closes its stations in the order they connected at drain_rate (2 a second). Each
    gap may be off by a busy machine's scheduling; their mean, over the whole drain, by less."""
    connected = list(context.ops_stations)
    with ThreadPoolExecutor(len(connected)) as pool:
        watches = {
            station_id: pool.submit(_closed_at, context.ops_stations[station_id], 1012) for station_id in connected
        }
        closed_at = {station_id: watch.result() for station_id, watch in watches.items()}
    order = sorted(connected, key=closed_at.__getitem__)
    assert order == connected, f"closed in the order {order}, not in the order they connected"
    times = [closed_at[station_id] for station_id in order]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    mean = (times[-1] - times[0]) / len(gaps)
    assert all(0.3 <= gap <= 1.2 for gap in gaps) and 0.4 <= mean <= 0.8, f"gaps {gaps}, mean {mean:.3f} s"


@then("the ops gateway exits with status 0")
def step_exit_zero(context: Context) -> None:
    assert context.ops.wait(timeout=30) == 0, context.ops.tail()
