"""Admission control and the status port, without a broker."""

from __future__ import annotations

import asyncio
import socket

import pytest
from prometheus_client import CollectorRegistry, Counter

from ocpp_gw.core.admission import TokenBucket
from ocpp_gw.handshake import station_id_from_path
from ocpp_gw.metrics import GatewayMetrics
from ocpp_gw.status import StatusServer


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2, burst=3, now=0)
    assert [bucket.take(0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.4) is False
    assert bucket.take(0.5) is True
    assert bucket.take(10) and bucket.take(10) and bucket.take(10) and not bucket.take(10)


def test_gateway_metric_names_follow_prometheus_conventions() -> None:
    names = {metric.name for metric in GatewayMetrics().registry.collect()}
    assert "ocpp_gw_connected_stations" in names and "ocpp_gw_call_round_trip_seconds" in names
    assert all(name.startswith("ocpp_gw_") and name == name.lower() for name in names)


async def _get(port: int, path: str) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    response = (await reader.read()).decode()
    writer.close()
    status_line, _, rest = response.partition("\r\n")
    return status_line, rest.split("\r\n\r\n", 1)[1]


def free_port() -> int:
    """A port nothing listens on now (the status server reads port 0 as "no status port")."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_status_port_0_opens_nothing() -> None:
    async def scenario() -> None:
        async with StatusServer("127.0.0.1", 0, CollectorRegistry(), lambda: True) as server:
            assert server._server is None

    asyncio.run(scenario())


def test_status_endpoints() -> None:
    async def scenario() -> None:
        registry = CollectorRegistry()
        Counter("demo_events_total", "demo", registry=registry).inc(3)
        ready = {"now": False}
        port = free_port()
        async with StatusServer("127.0.0.1", port, registry, lambda: ready["now"]):
            assert (await _get(port, "/healthz"))[0] == "HTTP/1.1 200 OK"
            assert (await _get(port, "/readyz"))[0] == "HTTP/1.1 503 Service Unavailable"
            ready["now"] = True
            assert (await _get(port, "/readyz"))[0] == "HTTP/1.1 200 OK"
            status, body = await _get(port, "/metrics")
            assert status == "HTTP/1.1 200 OK" and "demo_events_total 3.0" in body
            assert (await _get(port, "/nope"))[0] == "HTTP/1.1 404 Not Found"
        with pytest.raises(ConnectionRefusedError):
            await _get(port, "/healthz")

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("path", "station_id"),
    [
        ("/ocpp/CP_1", "CP_1"),
        ("/ocpp/CP%201", None),
        ("/ocpp/CP%zz", None),
        ("/ocpp/CP%2", None),
        ("/ocpp/CP%", None),
        ("/ocpp/CP%3A1", None),
        ("/ocpp/" + "x" * 49, None),
    ],
)
def test_station_id_from_path_refuses_what_is_not_an_identity(path: str, station_id: str | None) -> None:
    assert station_id_from_path(path) == station_id
