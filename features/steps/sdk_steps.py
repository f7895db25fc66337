"""Steps for the CSMS SDK: a gateway on topics of its own served by ``examples/csms_worker.py`` run as a
process, and an SDK client (``ocpp_gw.sdk.CsmsClient``) on an event loop in a thread of its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

from behave import given, then, when
from behave.runner import Context
from support.kafka import kafka_config
from support.processes import Program
from support.station import Station, boot_payload

from ocpp_gw.sdk import CallErrorReceived, CsmsClient, InRecord, StationOffline
from testing.harness import csms_env, gateway_env, metric_samples, wait_until

SDK_GATEWAY_PORT, SDK_GATEWAY_STATUS_PORT, SDK_CSMS_STATUS_PORT = 19500, 19509, 19519
GET_VARIABLES = {
    "getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]
}
GET_VARIABLES_RESULT = {
    "getVariableResult": [
        {
            "attributeStatus": "Accepted",
            "attributeValue": "60",
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "HeartbeatInterval"},
        }
    ]
}
T = TypeVar("T")


class LoopThread:
    """An asyncio event loop in a thread, so the synchronous steps can drive the async SDK."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sdk-client", daemon=True)
        self.thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return self.submit(coroutine).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@given("a gateway on topics of its own, served by the example CSMS worker")
def step_sdk_gateway(context: Context) -> None:
    suffix = uuid.uuid4().hex[:8]
    topics = {
        "in_messages_topic": f"sdk_in_{suffix}",
        "out_messages_topic": f"sdk_out_{suffix}",
        "routes_topic": f"sdk_routes_{suffix}",
        "ocpp_gw_consumer_group": f"sdk_gateways_{suffix}",
        "csms_consumer_group": f"sdk_csms_{suffix}",
    }
    context.sdk_kafka = kafka_config(context.kafka_servers, **topics)
    env = {f"OCPPGW_KAFKA__{key.upper()}": value for key, value in topics.items()}
    env["OCPPGW_KAFKA__SERVERS"] = context.kafka_servers
    worker_env = csms_env(env, SDK_CSMS_STATUS_PORT)
    worker = Program(f"sdk-example-csms-{suffix}", "examples.csms_worker", worker_env, context.log_dir)
    context.add_cleanup(worker.stop)
    gateway_settings = gateway_env(env, SDK_GATEWAY_PORT, SDK_GATEWAY_STATUS_PORT, f"gw-sdk-{suffix}")
    gateway = Program(f"sdk-gateway-{suffix}", "ocpp_gw", gateway_settings, context.log_dir)
    context.add_cleanup(gateway.stop)
    for program, needle in ((gateway, "gateway ready"), (worker, "csms ready")):
        program.wait_for_log(needle, timeout=90)
    worker.wait_ready(SDK_CSMS_STATUS_PORT, timeout=30)
    context.sdk_worker = worker


def _open(context: Context, station_id: str, protocol: str) -> Station:
    station = Station(f"ws://127.0.0.1:{SDK_GATEWAY_PORT}/ocpp", station_id, [protocol])
    assert station.protocol == protocol, station.protocol
    context.stations[f"sdk:{station_id}"] = station
    context.sdk_station = station
    return station


@when('the SDK station "{station_id}" speaking "{protocol}" sends a BootNotification')
def step_sdk_boot(context: Context, station_id: str, protocol: str) -> None:
    station = _open(context, station_id, protocol)
    context.sdk_boot_id = station.call("BootNotification", boot_payload(protocol, "VendorX", "ModelY"))


@then("the example worker accepts it with an interval of {interval:d} seconds")
def step_sdk_booted(context: Context, interval: int) -> None:
    frame = context.sdk_station.receive()
    assert frame[:2] == [3, context.sdk_boot_id], frame
    assert frame[2]["status"] == "Accepted" and frame[2]["interval"] == interval, frame
    assert frame[2]["currentTime"].endswith("Z"), frame


@then("the example worker answers its Heartbeat with the current time")
def step_sdk_heartbeat(context: Context) -> None:
    message_id = context.sdk_station.call("Heartbeat", {})
    frame = context.sdk_station.receive()
    assert frame[:2] == [3, message_id] and frame[2]["currentTime"].endswith("Z"), frame


@then('the example worker logged that "{station_id}" connected, and counted its BootNotification')
def step_sdk_logged(context: Context, station_id: str) -> None:

    def logged() -> bool:
        lines = context.sdk_worker.log_text().splitlines()
        return any("station connected" in line and f'"{station_id}"' in line for line in lines)

    wait_until(logged, 10, f"the example worker to log {station_id}'s connection")
    answered = metric_samples(SDK_CSMS_STATUS_PORT, "ocpp_csms_calls_answered_total")
    assert any(
        labels == {"action": "BootNotification", "result": "CALLRESULT"} and value >= 1 for labels, value in answered
    ), answered


@given("an SDK client following the connection events of those topics")
def step_sdk_client(context: Context) -> None:
    context.sdk_loop = loop = LoopThread()
    context.add_cleanup(loop.close)
    client = CsmsClient(context.sdk_kafka)
    context.sdk_events = events = []

    async def start() -> None:
        await client.start()
        following = client.events()

        async def follow() -> None:
            async for event in following:
                events.append(event)

        context.sdk_follower = asyncio.create_task(follow())

    loop.run(start())
    context.sdk_client = client
    context.add_cleanup(lambda: loop.run(client.stop()))


@when('the SDK station "{station_id}" speaking "{protocol}" connects')
def step_sdk_connect(context: Context, station_id: str, protocol: str) -> None:
    _open(context, station_id, protocol)


@then('the SDK client sees "{station_id}" {kind}')
def step_sdk_event(context: Context, station_id: str, kind: str) -> None:
    events: list[InRecord] = context.sdk_events

    def seen() -> bool:
        return any(event.station_id == station_id and event.kind == kind for event in events)

    wait_until(seen, 15, f"the SDK client to see {station_id} {kind}")
    event = next(event for event in events if event.station_id == station_id and event.kind == kind)
    assert event.gateway_id.startswith("gw-sdk-") and event.protocol.value == "ocpp2.0.1", event
    if kind == "disconnected":
        assert event.close_code == 1000, event


def _call(context: Context, station_id: str, action: str, payload: dict[str, Any]) -> None:
    context.sdk_call = context.sdk_loop.submit(context.sdk_client.send_call(station_id, action, payload, timeout=20))


def _station_receives(context: Context, action: str) -> str:
    frame = context.sdk_station.receive()
    assert frame[0] == 2 and frame[2] == action, frame
    return str(frame[1])


@when('the SDK client calls GetVariables on "{station_id}" and the station answers it')
def step_sdk_get_variables(context: Context, station_id: str) -> None:
    _call(context, station_id, "GetVariables", GET_VARIABLES)
    context.sdk_station.send([3, _station_receives(context, "GetVariables"), GET_VARIABLES_RESULT])


@then("send_call returns the station's GetVariables result")
def step_sdk_result(context: Context) -> None:
    assert context.sdk_call.result(30) == GET_VARIABLES_RESULT


@when('the SDK client calls Reset on "{station_id}" and the station answers with CALLERROR "{code}"')
def step_sdk_reset_refused(context: Context, station_id: str, code: str) -> None:
    _call(context, station_id, "Reset", {"type": "Immediate"})
    context.sdk_station.send([4, _station_receives(context, "Reset"), code, "not today", {}])


@when('the SDK client calls Reset on "{station_id}", which no gateway holds')
def step_sdk_reset(context: Context, station_id: str) -> None:
    _call(context, station_id, "Reset", {"type": "Immediate"})


@then('send_call raises CallErrorReceived "{code}" from the station')
def step_sdk_callerror(context: Context, code: str) -> None:
    error = context.sdk_call.exception(30)
    assert isinstance(error, CallErrorReceived), repr(error)
    assert (error.code, error.description, error.origin) == (code, "not today", "station"), error.record
    assert error.record.request is not None and error.record.request.action == "Reset", error.record


@then("send_call raises StationOffline")
def step_sdk_offline(context: Context) -> None:
    error = context.sdk_call.exception(30)
    assert isinstance(error, StationOffline), repr(error)


@when('the SDK station "{station_id}" disconnects')
def step_sdk_disconnect(context: Context, station_id: str) -> None:
    context.stations.pop(f"sdk:{station_id}").close()
