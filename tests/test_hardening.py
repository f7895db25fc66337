"""Bounds on what a station's input can reach: metric labels, headers, log lines, per-address budgets."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ocpp_gw.config import load_config
from ocpp_gw.core.admission import AddressLimits
from ocpp_gw.core.envelope import Origin
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.credential_store import CredentialStore
from ocpp_gw.csms_bus import correlation_id
from ocpp_gw.handshake import Handshake
from ocpp_gw.logs import TextFormatter
from ocpp_gw.metrics import GatewayMetrics, close_code_label

ROOT = Path(__file__).resolve().parent.parent


def test_close_codes_fall_into_a_fixed_set_of_labels() -> None:
    labels = {close_code_label(code) for code in range(0, 70_000)}
    assert labels == {str(c) for c in (1000, 1001, 1002, 1003, *range(1005, 1016))} | {"3xxx", "4xxx", "other"}


def test_a_message_id_with_cr_lf_cannot_forge_a_header_or_a_log_line() -> None:
    origin = Origin("CP_1", OcppVersion.V201, "gw")
    value = correlation_id(origin, 'x\r\n{"level":"ERROR"}')
    assert "\r" not in value and "\n" not in value and value.startswith("CP_1/x\\r\\n")
    assert correlation_id(origin, "plain-id") == "CP_1/plain-id"


def test_text_logs_escape_values_that_would_start_a_new_line() -> None:
    record = logging.LogRecord("ocpp_gw", logging.WARNING, __file__, 1, "station disconnected", (), None)
    record.close_reason = "bye\n2026-01-01 ERROR forged"
    line = TextFormatter().format(record)
    assert "\n" not in line and "close_reason=bye\\n2026" in line


def test_one_address_is_capped_in_connections_and_unfinished_handshakes() -> None:
    limits = AddressLimits(max_connections=5, max_handshakes=3, rate=0, burst=0)
    assert [limits.connection_opened("10.0.0.1") for _ in range(4)] == [None, None, None, "address_handshakes"]
    assert limits.connection_opened("10.0.0.2") is None
    for _ in range(3):
        limits.handshake_ended("10.0.0.1")
    assert [limits.connection_opened("10.0.0.1") for _ in range(3)] == [None, None, "address_connections"]
    for handshaking in (False, False, False, True, True):
        limits.connection_closed("10.0.0.1", handshaking)
    assert "10.0.0.1" not in limits.connections and "10.0.0.1" not in limits.handshakes


def test_per_address_handshake_budget_is_separate_and_bounded() -> None:
    limits = AddressLimits(0, 0, rate=1.0, burst=2.0, max_addresses=3)
    assert [limits.take_handshake("a", 0.0) for _ in range(3)] == [True, True, False]
    assert limits.take_handshake("b", 0.0)
    for name in "cdef":
        limits.take_handshake(name, 0.0)
    assert len(limits._buckets) == 3
    assert limits.take_handshake("a", 1.0)


def test_zero_turns_the_per_address_checks_off() -> None:
    limits = AddressLimits(0, 0, rate=0, burst=0)
    assert all(limits.connection_opened("a") is None for _ in range(10_000))
    assert all(limits.take_handshake("a", 0.0) for _ in range(10_000))


def test_a_slowed_refusal_is_still_answered_within_the_handshake_timeout() -> None:
    async def main() -> None:
        gw = load_config(ROOT / "config.cfg", {"OCPPGW_OCPP_GATEWAY__HANDSHAKE_TIMEOUT": "3"}).ocpp_gateway
        loop = asyncio.get_running_loop()
        handshake = Handshake(gw, CredentialStore(None, None, ""), GatewayMetrics(), lambda: True, lambda: 0, loop.time)
        for _ in range(20):
            handshake.throttle.failed("10.0.0.9", loop.time())
        assert handshake.throttle.delay("10.0.0.9", loop.time()) == 3.0
        assert handshake.refusal_delay("10.0.0.9") == 1.5

    asyncio.run(main())
