"""The registry room with in-memory sockets and publisher: replace or reject a second connection,
forget ended links, and act on route records, credential changes and partition changes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ocpp_gw import registry as registry_module
from ocpp_gw.core.routing import Route
from ocpp_gw.registry import DuplicatePolicy, Registry
from ocpp_gw.station_link import StationLink
from tests.fakes import GATEWAY_ID, KAFKA, Bench, FakeSocket, bench, eventually, run


async def connection(registry: Registry, link: StationLink, remote: str = "10.0.0.1:5000") -> None:
    """One station connection's life, as the gateway's handler runs it."""
    try:
        await registry.admit(link)
        registry.connected(link, remote)
        await link.serve()
    finally:
        registry.ended(link)


def routes(b: Bench) -> list[tuple[str, bool]]:
    """The route records published: (connection id, whether it is a tombstone)."""
    return [(dict(r.headers)["connection_id"].decode(), r.value is None) for r in b.publisher.on(KAFKA.routes_topic)]


def own_route(b: Bench, link: StationLink) -> Route:
    for record in reversed(b.publisher.on(KAFKA.routes_topic)):
        if record.value is not None and dict(record.headers)["connection_id"] == link.route.connection_id.encode():
            return Route.decode(record.value)
    raise AssertionError("no route published for the link")


def test_a_second_connection_replaces_the_first_which_closes_1000_and_its_tombstone_is_not_wanted() -> None:
    async def test() -> None:
        b = bench()
        registry = Registry(b.bus, b.metrics, DuplicatePolicy.REPLACE)
        old_socket, new_socket = FakeSocket(), FakeSocket()
        old, new = b.link(old_socket), b.link(new_socket)
        first = asyncio.create_task(connection(registry, old))
        await eventually(lambda: registry.get("CP1") is old and b.publisher.records)
        assert not registry.refuses("CP1")
        second = asyncio.create_task(connection(registry, new))
        await first
        await eventually(lambda: len(b.publisher.records) == 6)
        assert old_socket.closes == [(1000, "replaced by a newer connection")] and new_socket.closes == []
        assert registry.get("CP1") is new and len(registry) == 1 and list(registry) == [new]
        assert old.finished.done() and not new.finished.done()
        assert b.publisher.kinds() == [
            "connected",
            KAFKA.routes_topic,
            "disconnected",
            KAFKA.routes_topic,
            "connected",
            KAFKA.routes_topic,
        ]
        old_id, new_id = old.route.connection_id, new.route.connection_id
        assert routes(b) == [(old_id, False), (old_id, True), (new_id, False)]
        old_route, tombstone, new_route = b.publisher.on(KAFKA.routes_topic)
        assert old_route.current is not None and not old_route.current()
        assert tombstone.current is not None and not tombstone.current()  # the newer link holds the station
        assert new_route.current is not None and new_route.current()
        disconnected = [r for r in b.publisher.records if dict(r.headers).get("kind") == b"disconnected"]
        assert b'"close_code":1000' in (disconnected[0].value or b"")
        new_socket.hang_up()
        await second
        assert len(registry) == 0 and registry.get("CP1") is None
        assert routes(b)[-1] == (new_id, True)
        last = b.publisher.on(KAFKA.routes_topic)[-1]
        assert last.current is not None and last.current()

    run(test)


def test_a_replaced_connection_that_does_not_wind_up_in_time_is_left_behind(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(registry_module, "REPLACE_TIMEOUT", 0.01)

    async def test() -> None:
        b = bench()
        registry = Registry(b.bus, b.metrics, DuplicatePolicy.REPLACE)
        old_socket = FakeSocket()
        old, new = b.link(old_socket), b.link()
        await registry.admit(old)
        await registry.admit(new)  # old never serves, so it never finishes
        assert registry.get("CP1") is new and old_socket.closes == [(1000, "replaced by a newer connection")]
        assert "replacing the existing connection of the station" in caplog.messages
        # When it does end, the newer link stays.
        registry.ended(old)
        assert registry.get("CP1") is new

    run(test)


def test_with_the_reject_policy_a_connected_station_is_refused_a_second_connection() -> None:
    async def test() -> None:
        b = bench()
        registry = Registry(b.bus, b.metrics, DuplicatePolicy.REJECT)
        assert not registry.refuses("CP1")
        link = b.link()
        await registry.admit(link)
        assert registry.refuses("CP1") and not registry.refuses("CP2")
        registry.ended(link)
        assert not registry.refuses("CP1")

    run(test)


def test_an_ended_link_publishes_disconnected_and_its_route_tombstone() -> None:
    async def test() -> None:
        b = bench()
        registry = Registry(b.bus, b.metrics, DuplicatePolicy.REPLACE)
        socket = FakeSocket()
        link = b.link(socket)
        task = asyncio.create_task(connection(registry, link, "192.0.2.7:4000"))
        await eventually(lambda: len(b.publisher.records) == 2)
        connected = b.publisher.records[0]
        assert b'"remote_address":"192.0.2.7:4000"' in (connected.value or b"")
        socket.hang_up()
        await task
        disconnected, tombstone = b.publisher.records[2:]
        assert dict(disconnected.headers)["kind"] == b"disconnected"
        assert b'"close_code":1006' in (disconnected.value or b"")
        assert tombstone.topic == KAFKA.routes_topic and tombstone.key == b"CP1" and tombstone.value is None
        assert dict(tombstone.headers) == {
            "gateway_id": GATEWAY_ID.encode(),
            "connection_id": link.route.connection_id.encode(),
        }
        assert tombstone.current is not None and tombstone.current()
        assert link.finished.done() and len(registry) == 0

    run(test)


def test_a_route_of_a_newer_connection_elsewhere_closes_the_stale_link_here_without_a_tombstone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def test() -> None:
        b = bench()
        registry = Registry(b.bus, b.metrics, DuplicatePolicy.REPLACE)
        socket = FakeSocket()
        link = b.link(socket)
        task = asyncio.create_task(connection(registry, link))
        await eventually(lambda: len(b.publisher.records) == 2)
        mine = own_route(b, link)
        assert mine.gateway_id == GATEWAY_ID and mine.partition == 3 and mine.protocol == "ocpp2.0.1"
        other = Route("CP1", "gw-other", 5, "ocpp2.0.1", "other-connection", "2024-01-01T00:00:00.000Z")
        registry.on_route_record("CP1", other, {})  # read before our own: nothing yet
        assert socket.closes == []
        registry.on_route_record("CP1", mine, {})
        registry.on_route_record("CP1", other, {})
        await task
        assert socket.closes == [(1000, "replaced by a newer connection on another gateway")]
        assert b.sample("ocpp_gw_session_events_total", event="stale_connection_closed") == 1
        warned = [r for r in caplog.records if r.levelno == logging.WARNING and "stale" in r.getMessage()]
        assert warned[0].__dict__["other_gateway"] == "gw-other"
        assert [r.value is None for r in b.publisher.on(KAFKA.routes_topic)] == [False]

    run(test)


def test_a_tombstone_of_an_older_connection_after_our_route_republishes_it() -> None:
    async def test() -> None:
        b = bench()
        registry = Registry(b.bus, b.metrics, DuplicatePolicy.REPLACE)
        link = b.link()
        await registry.admit(link)
        registry.connected(link, "10.0.0.1:1")
        mine = own_route(b, link)
        registry.on_route_record("CP1", mine, {})
        registry.on_route_record("CP1", None, {"connection_id": link.route.connection_id.encode()})
        assert len(routes(b)) == 1
        registry.on_route_record("CP1", None, {"connection_id": b"an-older-one"})
        assert routes(b) == [(link.route.connection_id, False)] * 2
        assert b.sample("ocpp_gw_session_events_total", event="route_republished") == 1
        assert own_route(b, link) == mine
        registry.on_route_record("CP9", None, {})  # a station not here: nothing
        assert len(b.publisher.records) == 3

    run(test)


def test_changed_credentials_close_the_link_1008_once() -> None:
    async def test() -> None:
        b = bench()
        registry = Registry(b.bus, b.metrics, DuplicatePolicy.REPLACE)
        socket = FakeSocket()
        link = b.link(socket)
        await registry.admit(link)
        registry.credentials_changed("CP2")
        registry.credentials_changed("CP1")
        registry.credentials_changed("CP1")
        await eventually(lambda: socket.closes)
        assert socket.closes == [(1008, "credentials changed")]
        assert b.sample("ocpp_gw_session_events_total", event="credentials_changed_closed") == 1

    run(test)


def test_new_partitions_republish_every_route_and_no_partition_closes_every_link_1012() -> None:
    async def test() -> None:
        b = bench(partitions=[3])
        registry = Registry(b.bus, b.metrics, DuplicatePolicy.REPLACE)
        sockets = [FakeSocket(), FakeSocket()]
        links = [b.link(sockets[0], "CP1"), b.link(sockets[1], "CP2")]
        for link in links:
            await registry.admit(link)
        b.partitions[:] = [6, 7]
        registry.partitions_changed([6, 7])
        assert {Route.decode(r.value or b"").partition for r in b.publisher.on(KAFKA.routes_topic)} <= {6, 7}
        assert len(b.publisher.on(KAFKA.routes_topic)) == 2
        b.partitions.clear()
        registry.partitions_changed([])
        await eventually(lambda: all(s.closes for s in sockets))
        assert [s.closes for s in sockets] == [[(1012, "gateway lost its partitions; reconnect")]] * 2
        assert len(b.publisher.on(KAFKA.routes_topic)) == 2  # no route without a partition
        registry.connected(links[0], "10.0.0.1:1")
        assert len(b.publisher.on(KAFKA.routes_topic)) == 2

    run(test)


def test_close_all_closes_every_link() -> None:
    async def test() -> None:
        b = bench()
        registry = Registry(b.bus, b.metrics, DuplicatePolicy.REPLACE)
        sockets = [FakeSocket(), FakeSocket()]
        for n, socket in enumerate(sockets):
            await registry.admit(b.link(socket, f"CP{n}"))
        registry.close_all(1012, "gateway restarting; reconnect")
        await eventually(lambda: all(s.closes for s in sockets))
        assert [s.closes for s in sockets] == [[(1012, "gateway restarting; reconnect")]] * 2

    run(test)
