"""The composition root without Kafka: a real listener and real WebSocket clients, an in-memory publisher."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.server import ServerProtocol

from ocpp_gw.config import Config, GatewayConfig, load_config
from ocpp_gw.core.frames import parse_frame
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.gateway import Gateway, deflate
from ocpp_gw.publisher import Outgoing

ROOT = Path(__file__).resolve().parent.parent
QUIET = {
    f"OCPPGW_OCPP_GATEWAY__STRICT_{kind}": "off"
    for kind in ("STATION_CALLS", "STATION_RESULTS", "CSMS_CALLS", "CSMS_RESULTS")
}


class Records:
    """An in-memory publisher: what the gateway would have handed to Kafka."""

    def __init__(self) -> None:
        self.records: list[Outgoing] = []

    def publish(self, record: Outgoing) -> None:
        self.records.append(record)

    def values(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(r.value) for r in self.records if r.topic == topic and r.value is not None]

    def kinds(self, topic: str) -> list[str]:
        return [value["kind"] for value in self.values(topic)]


def config(**env: str) -> Config:
    return load_config(ROOT / "config.cfg", {**QUIET, **env})


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def run(test: Callable[[Gateway, Records, str], Awaitable[None]], **env: str) -> None:
    """Run ``test`` with a gateway that owns partitions and listens on a free port (profile 0)."""

    async def main() -> None:
        gateway = Gateway(config(**env))
        records = Records()
        gateway.bus.publisher = records
        gateway.partitions_changed([0, 1])
        async with gateway._listen("127.0.0.1", 0, 0) as server:
            port = server.sockets[0].getsockname()[1]
            await test(gateway, records, f"ws://127.0.0.1:{port}/ocpp")

    asyncio.run(main())


def test_a_station_call_is_published_and_the_end_of_the_connection_too() -> None:
    async def test(gateway: Gateway, records: Records, url: str) -> None:
        topic = gateway.config.kafka.in_messages_topic
        async with connect(f"{url}/CP_1", subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
            await ws.send('[2,"m1","Heartbeat",{}]')
            await until(lambda: "frame" in records.kinds(topic))
            assert gateway.registry.get("CP_1") is not None
        await until(lambda: "disconnected" in records.kinds(topic))
        assert records.kinds(topic) == ["connected", "frame", "disconnected"]
        routes = [r for r in records.records if r.topic == gateway.config.kafka.routes_topic]
        assert [r.value is None for r in routes] == [False, True]
        assert gateway.registry.get("CP_1") is None
        closed = gateway.metrics.registry.get_sample_value("ocpp_gw_connections_closed_total", {"code": "1000"})
        assert closed == 1

    run(test)


def test_the_csms_answer_reaches_the_station_and_the_round_trip_is_counted() -> None:
    async def test(gateway: Gateway, records: Records, url: str) -> None:
        async with connect(f"{url}/CP_2", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            await ws.send('[2,"m1","Heartbeat",{}]')
            await until(lambda: len(records.values(gateway.config.kafka.in_messages_topic)) == 2)
            link = gateway.registry.get("CP_2")
            assert link is not None
            link.apply(
                link.session.csms_frame(
                    parse_frame('[3,"m1",{"currentTime":"t"}]', OcppVersion.V16), gateway.loop.time()
                )
            )
            assert json.loads(await ws.recv()) == [3, "m1", {"currentTime": "t"}]
        count = gateway.metrics.registry.get_sample_value("ocpp_gw_call_round_trip_seconds_count")
        assert count == 1

    run(test)


def test_no_common_subprotocol_is_closed_with_1002() -> None:
    async def test(gateway: Gateway, records: Records, url: str) -> None:
        async with connect(f"{url}/CP_3", subprotocols=["ocpp9"]) as ws:  # type: ignore[list-item]
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1002
        assert gateway.metrics.registry.get_sample_value(
            "ocpp_gw_handshakes_refused_total", {"reason": "no_subprotocol"}
        )

    run(test)


def test_a_closed_connection_is_freed_by_reference_counting_not_left_for_a_full_collection() -> None:
    """With the cyclic collector off, every server connection, accepted or refused, is gone once closed:
    a reference cycle would keep each one until a full collection walks the whole heap."""

    def alive(gateway: Gateway) -> int:
        kinds = (gateway.handshake.connection_class, ServerProtocol)
        return sum(1 for o in gc.get_objects() if type(o) in kinds)

    async def test(gateway: Gateway, records: Records, url: str) -> None:
        async with connect(f"{url}/CP_GC", subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
            await ws.send('[2,"m1","Heartbeat",{}]')
            await until(lambda: "frame" in records.kinds(gateway.config.kafka.in_messages_topic))
            assert alive(gateway) == 2
        with pytest.raises(InvalidStatus):
            async with connect(f"{url}/", subprotocols=["ocpp2.0.1"]):  # type: ignore[list-item]
                pass
        await until(lambda: "disconnected" in records.kinds(gateway.config.kafka.in_messages_topic))
        records.records.clear()  # what Kafka would have taken: their callbacks name the station's link
        await until(lambda: alive(gateway) == 0)

    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        run(test)
    finally:
        if was_enabled:
            gc.enable()


def test_a_second_connection_is_rejected_when_so_configured() -> None:
    async def test(gateway: Gateway, records: Records, url: str) -> None:
        async with connect(f"{url}/CP_4", subprotocols=["ocpp2.0.1"]) as first:  # type: ignore[list-item]
            async with connect(f"{url}/CP_4", subprotocols=["ocpp2.0.1"]) as second:  # type: ignore[list-item]
                with pytest.raises(ConnectionClosed) as closed:
                    await second.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            await first.send('[2,"m1","Heartbeat",{}]')
            await until(lambda: "frame" in records.kinds(gateway.config.kafka.in_messages_topic))

    run(test, OCPPGW_OCPP_GATEWAY__DUPLICATE_CONNECTION="reject")


def test_a_second_connection_replaces_the_first_by_default() -> None:
    async def test(gateway: Gateway, records: Records, url: str) -> None:
        first_connection = connect(f"{url}/CP_5", subprotocols=["ocpp2.0.1"])  # type: ignore[list-item]
        second_connection = connect(f"{url}/CP_5", subprotocols=["ocpp2.0.1"])  # type: ignore[list-item]
        async with first_connection as first, second_connection:
            with pytest.raises(ConnectionClosed) as closed:
                await first.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
            await until(lambda: records.kinds(gateway.config.kafka.in_messages_topic).count("connected") == 2)

    run(test)


def test_draining_refuses_new_stations_and_closes_the_connected_ones_with_1012() -> None:
    async def test(gateway: Gateway, records: Records, url: str) -> None:
        async with connect(f"{url}/CP_6", subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
            await until(lambda: gateway.registry.get("CP_6") is not None)
            draining = asyncio.create_task(gateway._drain())
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
            await draining
        assert not gateway.ready()
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{url}/CP_7", subprotocols=["ocpp2.0.1"])  # type: ignore[list-item]
        assert refused.value.response.status_code == 503

    run(test, OCPPGW_OCPP_GATEWAY__DRAIN_RATE="100")


def test_losing_every_partition_closes_the_stations_with_1012() -> None:
    async def test(gateway: Gateway, records: Records, url: str) -> None:
        async with connect(f"{url}/CP_8", subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
            await until(lambda: gateway.registry.get("CP_8") is not None)
            gateway.partitions_changed([])
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012

    run(test)


def test_new_partitions_republish_every_route() -> None:
    async def test(gateway: Gateway, records: Records, url: str) -> None:
        async with connect(f"{url}/CP_9", subprotocols=["ocpp2.0.1"]):  # type: ignore[list-item]
            routes = gateway.config.kafka.routes_topic
            await until(lambda: any(r.topic == routes for r in records.records))
            gateway.partitions_changed([0, 1, 2])
            assert sum(r.topic == routes and r.value is not None for r in records.records) == 2

    run(test)


def test_a_kafka_loop_that_ends_stops_the_gateway() -> None:
    async def main() -> None:
        gateway = Gateway(config())
        stop = asyncio.Event()
        gateway._stop = stop

        async def fails() -> None:
            raise RuntimeError("consumer died")

        task = asyncio.create_task(fails(), name="consume-messages_out")
        await asyncio.gather(task, return_exceptions=True)
        gateway._worker_ended(task)
        assert stop.is_set() and gateway.failed

    asyncio.run(main())


def test_strict_mode_off_compiles_nothing() -> None:
    async def main() -> None:
        assert Gateway(config()).validator is None

    asyncio.run(main())


def test_permessage_deflate_is_offered_with_the_configured_window_and_memory_level() -> None:
    config = GatewayConfig(compression_window_bits=10, compression_mem_level=3)
    [factory] = deflate(config) or []
    assert isinstance(factory, ServerPerMessageDeflateFactory)
    assert factory.server_max_window_bits == 10 and factory.client_max_window_bits == 10
    assert factory.compress_settings == {"memLevel": 3}
    assert deflate(GatewayConfig(compression=False)) is None
