"""Routing decisions across gateway instances: reply partitions, stale sockets, passing records on."""

from __future__ import annotations

import pytest

from ocpp_gw.core.routing import (
    MAX_HOPS,
    Delivery,
    HeldStation,
    Route,
    RouteVerdict,
    reply_partition,
    route_out_record,
)


def route(connection: str, gateway: str = "gw-b", partition: int = 5) -> Route:
    return Route("CP_1", gateway, partition, "ocpp1.6", connection, "2026-01-01T00:00:00Z")


def test_reply_partition_is_one_of_the_owned_and_stable() -> None:
    owned = [7, 1, 4]
    chosen = {reply_partition(f"CP_{i}", owned) for i in range(200)}
    assert chosen == {1, 4, 7}
    assert reply_partition("CP_1", owned) == reply_partition("CP_1", [1, 4, 7])
    assert reply_partition("CP_1", []) is None


def test_route_record_round_trips_and_rejects_garbage() -> None:
    original = route("c1")
    assert Route.decode(original.encode()) == original
    for bad in (b"nope", b"{}", b'{"station_id": 1}'):
        with pytest.raises(ValueError):
            Route.decode(bad)


def test_a_newer_route_elsewhere_closes_the_stale_socket_once() -> None:
    held = HeldStation("mine")
    assert held.on_route_record(route("older"), None) is RouteVerdict.NOTHING
    assert held.on_route_record(route("mine", "gw-a"), None) is RouteVerdict.NOTHING
    assert held.on_route_record(route("newer"), None) is RouteVerdict.CLOSE_STALE
    assert held.superseded
    assert held.on_route_record(None, "newer") is RouteVerdict.NOTHING


def test_an_older_connections_tombstone_after_our_route_makes_us_republish() -> None:
    held = HeldStation("mine")
    held.on_route_record(route("mine", "gw-a"), None)
    assert held.on_route_record(None, "older") is RouteVerdict.REPUBLISH
    assert held.on_route_record(None, "mine") is RouteVerdict.NOTHING


def test_records_before_our_own_route_are_older_and_ignored() -> None:
    held = HeldStation("mine")
    assert held.on_route_record(None, "older") is RouteVerdict.NOTHING
    assert held.on_route_record(route("older"), None) is RouteVerdict.NOTHING


def test_out_records_are_delivered_here_passed_on_or_unroutable() -> None:
    assert route_out_record(True, None, "gw-a", 0, 0) == (Delivery.DELIVER, None)
    assert route_out_record(False, route("c", "gw-b", 5), "gw-a", 0, 0) == (Delivery.FORWARD, 5)
    assert route_out_record(False, None, "gw-a", 0, 0) == (Delivery.UNROUTABLE, None)
    assert route_out_record(False, route("c", "gw-a", 5), "gw-a", 0, 0) == (Delivery.UNROUTABLE, None)
    assert route_out_record(False, route("c", "gw-b", 0), "gw-a", 0, 0) == (Delivery.UNROUTABLE, None)
    assert route_out_record(False, route("c", "gw-b", 5), "gw-a", 0, MAX_HOPS) == (Delivery.UNROUTABLE, None)
