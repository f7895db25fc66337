"""The CSMS bus room over an in-memory publisher: which records it writes, which are durable, what
a refusal does, and which session notices are logged."""

from __future__ import annotations

import logging
import re

import orjson
import pytest

from ocpp_gw.clock import utc_now
from ocpp_gw.core.actions import Author, Notice, PendingCall, PublishToCsms
from ocpp_gw.core.envelope import Origin, decode_in_record
from ocpp_gw.core.frames import Call, CallError
from ocpp_gw.core.protocol import MessageType, OcppVersion
from ocpp_gw.core.routing import HeldStation, Route
from ocpp_gw.csms_bus import correlation_id
from tests.fakes import GATEWAY_ID, KAFKA, bench, call, result

ORIGIN = Origin("CP1", OcppVersion.V16, GATEWAY_ID)


def test_utc_now_is_utc_with_milliseconds_and_z() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utc_now())


def test_the_correlation_id_names_station_and_message_and_escapes_what_is_not_printable() -> None:
    assert correlation_id(ORIGIN, "abc-1") == "CP1/abc-1"
    assert correlation_id(ORIGIN, "a\nb\x00é") == "CP1/a\\nb\\x00\\xe9"
    assert correlation_id(ORIGIN, "é") == "CP1/é"


def test_a_connection_event_goes_to_messages_in_in_order_with_the_frames() -> None:
    b = bench(partitions=[0, 4])
    b.bus.lifecycle(ORIGIN, "connected", remote_address="10.0.0.1:1")
    [record] = b.publisher.records
    assert record.topic == KAFKA.in_messages_topic and record.key == b"CP1" and record.durable
    assert record.on_failure is None and record.partition is None
    event = decode_in_record(record.key, record.value, record.headers)
    assert event.kind == "connected" and event.remote_address == "10.0.0.1:1"
    assert event.protocol is OcppVersion.V16 and event.gateway_id == GATEWAY_ID
    assert event.reply_partition == b.bus.reply_partition("CP1") and event.reply_partition in (0, 4)
    assert dict(record.headers)["kind"] == b"connected"


def test_without_partitions_events_have_no_reply_partition_and_no_route_is_published() -> None:
    b = bench(partitions=[])
    b.bus.lifecycle(ORIGIN, "disconnected", close_code=1000, close_reason="bye")
    b.bus.route(ORIGIN, HeldStation("conn-1"), "t0", lambda: True)
    [record] = b.publisher.records
    event = decode_in_record(record.key, record.value, record.headers)
    assert event.reply_partition is None and "reply_partition" not in dict(record.headers)
    assert (event.close_code, event.close_reason) == (1000, "bye")


def test_a_route_names_this_gateway_and_the_reply_partition_and_a_tombstone_names_the_connection() -> None:
    b = bench(partitions=[2])

    def wanted() -> bool:
        return True

    b.bus.route(ORIGIN, HeldStation("conn-1"), "2024-05-01T00:00:00.000Z", wanted)
    b.bus.route_tombstone("CP1", HeldStation("conn-1"), wanted)
    route, tombstone = b.publisher.records
    assert route.topic == tombstone.topic == KAFKA.routes_topic and route.key == tombstone.key == b"CP1"
    assert Route.decode(route.value or b"") == Route(
        "CP1", GATEWAY_ID, 2, "ocpp1.6", "conn-1", "2024-05-01T00:00:00.000Z"
    )
    assert tombstone.value is None
    for record in (route, tombstone):
        assert record.headers == [("gateway_id", GATEWAY_ID.encode()), ("connection_id", b"conn-1")]
        assert record.current is wanted and record.durable


def test_a_forwarded_record_goes_to_the_partition_of_the_gateway_holding_the_station() -> None:
    b = bench()
    b.bus.forward(b"CP1", b"value", [("hops", b"1")], 6)
    [record] = b.publisher.records
    assert (record.topic, record.key, record.value, record.headers, record.partition) == (
        KAFKA.out_messages_topic,
        b"CP1",
        b"value",
        [("hops", b"1")],
        6,
    )
    assert record.durable and record.on_failure is None


def test_a_station_call_is_refused_at_once_and_every_other_frame_is_durable() -> None:
    b = bench()
    refused: list[str] = []
    station_call = PublishToCsms(call("1"), MessageType.CALL, "1", "Heartbeat")
    b.bus.frame(ORIGIN, station_call, lambda: refused.append("1"))
    b.bus.frame(ORIGIN, station_call)  # without a fallback it is kept like the rest
    send = PublishToCsms(orjson.dumps([6, "2", "Notify", {}]).decode(), MessageType.SEND, "2", "Notify")
    b.bus.frame(ORIGIN, send, lambda: refused.append("2"))
    answer = PublishToCsms(result("3"), MessageType.CALLRESULT, "3")  # no request: nothing to fall back on
    b.bus.frame(ORIGIN, answer)
    first, second, third, fourth = b.publisher.records
    assert not first.durable and first.on_failure is not None
    b.publisher.refuse(first)
    assert refused == ["1"]
    assert all(r.durable and r.on_failure is None for r in (second, third, fourth))
    assert b.sample("ocpp_gw_frames_total", direction="station_to_csms", message_type="CALL") == 2
    assert b.sample("ocpp_gw_frames_total", direction="station_to_csms", message_type="SEND") == 1
    assert b.sample("ocpp_gw_frames_total", direction="station_to_csms", message_type="CALLRESULT") == 1


def test_an_answer_kafka_can_never_take_becomes_a_gateway_callerror_with_the_request_attached() -> None:
    b = bench()
    request = PendingCall("c1", "Reset", {"type": "Hard"}, call("c1", "Reset", {"type": "Hard"}), 30.0, 0.0)
    answer = PublishToCsms(result("c1", {"status": "Accepted"}), MessageType.CALLRESULT, "c1", "Reset", request=request)
    b.bus.frame(ORIGIN, answer)
    b.publisher.refuse(b.publisher.records[0])
    assert len(b.publisher.records) == 2
    fallback = decode_in_record(
        b.publisher.records[1].key, b.publisher.records[1].value, b.publisher.records[1].headers
    )
    assert fallback.origin == "gateway" and fallback.action == "Reset" and fallback.correlation_id == "CP1/c1"
    assert isinstance(fallback.frame, CallError) and fallback.frame.code == "InternalError"
    assert fallback.frame.description == "the station's answer could not be published"
    assert isinstance(fallback.request, Call) and fallback.request.payload == {"type": "Hard"}
    assert b.publisher.records[1].on_failure is None  # a refused fallback does not loop
    assert b.sample("ocpp_gw_callerrors_generated_total", code="InternalError") == 1
    assert b.sample("ocpp_gw_session_events_total", event="csms_call_failed") == 1


def test_carry_out_publishes_frames_and_notices_and_leaves_the_rest() -> None:
    b = bench()
    b.bus.carry_out(
        ORIGIN,
        [
            Notice("csms_call_failed", "m1", "why", quiet=True),
            PublishToCsms('[4,"m1","GenericError","x",{}]', MessageType.CALLERROR, "m1", origin=Author.GATEWAY),
        ],
    )
    assert len(b.publisher.records) == 1
    assert b.sample("ocpp_gw_callerrors_generated_total", code="?") == 1
    assert b.sample("ocpp_gw_session_events_total", event="csms_call_failed") == 1


def test_a_quiet_notice_is_counted_not_logged_and_the_next_logged_one_says_how_many_were_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    b = bench()
    caplog.set_level(logging.INFO, logger="ocpp_gw")
    b.bus.notice(ORIGIN, Notice("station_frame_rejected", "m1", "bad", quiet=True))
    assert caplog.records == []
    b.bus.notice(ORIGIN, Notice("station_frame_rejected", "m\r2", "bad again", suppressed=1))
    b.bus.notice(ORIGIN, Notice("station_call_timeout", "m3", "late"))
    b.bus.notice(ORIGIN, Notice("csms_call_timeout", "m4", "late", quiet=True))
    assert b.sample("ocpp_gw_session_events_total", event="station_frame_rejected") == 2
    assert b.sample("ocpp_gw_call_timeouts_total", direction="station_call") == 1
    assert b.sample("ocpp_gw_call_timeouts_total", direction="csms_call") == 1
    rejected, timeout = caplog.records
    assert rejected.getMessage() == "station frame rejected" and rejected.levelno == logging.WARNING
    assert rejected.__dict__["suppressed"] == 1 and rejected.__dict__["detail"] == "bad again"
    assert rejected.__dict__["correlation_id"] == "CP1/m\\r2" and rejected.__dict__["gateway_id"] == GATEWAY_ID
    assert timeout.getMessage() == "station call timeout" and "suppressed" not in timeout.__dict__
