"""The shared test harness (testing.harness): waits, probes, environments and processes, without Kafka."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from testing.harness import (
    Exited,
    Process,
    TimedOut,
    csms_env,
    gateway_env,
    http_status,
    metric_samples,
    topics_env,
    wait_ready,
    wait_until,
)


def test_wait_until_returns_the_seconds_it_took_or_times_out_as_a_failed_check_and_a_timeout() -> None:
    calls = iter([False, False, True])
    assert wait_until(lambda: next(calls), 5, "the third call", interval=0.01) >= 0
    with pytest.raises(TimedOut, match=r"timed out after 0\.05 s waiting for never") as raised:
        wait_until(lambda: False, 0.05, "never", interval=0.01)
    assert isinstance(raised.value, AssertionError) and isinstance(raised.value, TimeoutError)


def test_gateway_and_csms_environments() -> None:
    kafka = {"OCPPGW_KAFKA__SERVERS": "k:9092", **topics_env("ops", "abc", gateways="gw")}
    assert kafka["OCPPGW_KAFKA__OCPP_GW_CONSUMER_GROUP"] == "ops_gw_abc"
    assert kafka["OCPPGW_KAFKA__ROUTES_TOPIC"] == "ops_routes_abc"
    assert gateway_env(kafka, 9000, 9009, "gw-1", max_connections="3") == {
        **kafka,
        "OCPPGW_OCPP_GATEWAY__LISTENING_PORT": "9000",
        "OCPPGW_OCPP_GATEWAY__STATUS_PORT": "9009",
        "OCPPGW_OCPP_GATEWAY__INSTANCE_ID": "gw-1",
        "OCPPGW_OCPP_GATEWAY__MAX_CONNECTIONS": "3",
    }
    assert "OCPPGW_OCPP_GATEWAY__INSTANCE_ID" not in gateway_env(kafka, 9000, 0)
    assert csms_env(kafka, 9019) == {**kafka, "OCPPGW_CSMS__STATUS_PORT": "9019"}


def test_metric_samples_and_readiness_from_a_real_scrape() -> None:
    registry = CollectorRegistry()
    frames = Counter("frames", "frames seen", ["direction"], registry=registry)
    frames.labels("in").inc(2)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        port = server.server_address[1]
        assert metric_samples(port, "frames_total") == [({"direction": "in"}, 2.0)]
        assert http_status(port, "/metrics") == 200
        wait_ready(port, 5)
    finally:
        server.shutdown()
        thread.join()


def test_a_process_logs_is_waited_for_and_stopped(tmp_path: Path) -> None:
    server = Process("server", "http.server", {"PYTHONUNBUFFERED": "1"}, tmp_path, ("0", "--bind", "127.0.0.1"))
    try:
        server.wait_for_log("Serving HTTP", timeout=30)
        found = re.search(r"port (\d+)", server.log_text())
        assert found and http_status(int(found.group(1)), "/no-such-file") == 404
        server.check_alive()
    finally:
        assert server.stop(timeout=10) != 0 and server.killed
    assert (tmp_path / "server.log").exists()


def test_a_process_that_ends_is_reported_with_its_log(tmp_path: Path) -> None:
    zen = Process("zen", "this", {}, tmp_path)
    zen.wait_for_log("Beautiful is better than ugly.", timeout=30)
    assert zen.wait(30) == 0 and zen.exit_code == 0
    with pytest.raises(Exited, match="zen exited with 0"):
        zen.wait_for_log("never printed", timeout=30)
    assert zen.stop() == 0
