"""The station link room with an in-memory socket and publisher: frames in, actions carried out,
the transport's buffer bounded, the timer run, the end of the connection answered."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from websockets.frames import Close

from ocpp_gw.core.actions import CloseStation, SendToStation, SessionLimits
from ocpp_gw.core.frames import Call, parse_frame
from ocpp_gw.core.protocol import MessageType, OcppVersion
from ocpp_gw.station_link import StationLink
from tests.fakes import (
    GATEWAY_ID,
    KAFKA,
    Bench,
    FakeSocket,
    bench,
    call,
    closed_abnormally,
    eventually,
    result,
    run,
)


def csms_sends(link: StationLink, text: str) -> None:
    """A ``messages_out`` frame for the link's station, as the dispatcher hands it over."""
    link.apply(link.session.csms_frame(parse_frame(text, link.origin.version), link.loop.time()))


async def serving(b: Bench, limits: SessionLimits | None = None) -> tuple[StationLink, FakeSocket, asyncio.Task[None]]:
    """A link serving a new connection."""
    socket = FakeSocket()
    link = b.link(socket, limits=limits)
    return link, socket, asyncio.create_task(link.serve())


def test_a_station_call_is_published_with_its_topic_key_headers_and_an_escaped_correlation_id() -> None:
    async def test() -> None:
        b = bench(partitions=[1, 3])
        _, socket, serve = await serving(b)
        socket.receive(call("id\r\n1"))
        await eventually(lambda: b.publisher.records)
        [record] = b.publisher.records
        assert record.topic == KAFKA.in_messages_topic and record.key == b"CP1" and record.partition is None
        headers = dict(record.headers)
        assert headers["correlation_id"] == b"CP1/id\\r\\n1"
        assert headers["station_id"] == b"CP1" and headers["gateway_id"] == GATEWAY_ID.encode()
        assert headers["kind"] == b"frame" and headers["protocol"] == b"ocpp2.0.1"
        reply = b.bus.reply_partition("CP1")
        assert reply in (1, 3) and headers["reply_partition"] == str(reply).encode()
        assert not record.durable and record.on_failure is not None
        [frame] = b.publisher.frames
        assert frame.origin == "station" and frame.reply_partition == reply and frame.action == "Heartbeat"
        assert frame.correlation_id == "CP1/id\\r\\n1"
        assert isinstance(frame.frame, Call) and frame.frame.message_id == "id\r\n1"
        assert b.sample("ocpp_gw_frames_total", direction="station_to_csms", message_type="CALL") == 1
        socket.hang_up()
        await serve

    run(test)


def test_the_csms_answer_is_written_to_the_station_and_its_round_trip_observed() -> None:
    async def test() -> None:
        b = bench()
        link, socket, serve = await serving(b)
        socket.receive(call("1"))
        await eventually(lambda: b.publisher.records)
        csms_sends(link, result("1", {"currentTime": "now"}))
        await eventually(lambda: socket.sent)
        assert [orjson.loads(text) for text in socket.sent] == [[3, "1", {"currentTime": "now"}]]
        assert b.sample("ocpp_gw_frames_total", direction="csms_to_station", message_type="CALLRESULT") == 1
        assert b.sample("ocpp_gw_call_round_trip_seconds_count") == 1
        assert link.timer is None and link.timer_at is None
        socket.hang_up()
        await serve

    run(test)


def test_a_station_call_kafka_refuses_is_answered_with_a_callerror_and_the_next_one_goes_on() -> None:
    async def test() -> None:
        b = bench()
        link, socket, serve = await serving(b)
        socket.receive(call("1"))
        await eventually(lambda: b.publisher.records)
        b.publisher.refuse(b.publisher.records[0])
        await eventually(lambda: socket.sent)
        [answer] = [orjson.loads(text) for text in socket.sent]
        assert answer[:3] == [4, "1", "InternalError"]
        assert b.sample("ocpp_gw_callerrors_generated_total", code="InternalError") == 1
        assert b.sample("ocpp_gw_session_events_total", event="station_call_undeliverable") == 1
        assert link.session.station_call is None and link.timer is None
        socket.receive(call("2"))
        await eventually(lambda: len(b.publisher.records) == 2)
        # Refusing it again after it was answered changes nothing.
        b.publisher.refuse(b.publisher.records[0])
        socket.hang_up()
        await serve
        assert len(socket.sent) == 1

    run(test)


def test_a_station_answer_kafka_can_never_take_becomes_a_small_gateway_callerror_for_the_csms() -> None:
    async def test() -> None:
        b = bench()
        link, socket, serve = await serving(b)
        csms_sends(link, call("c1", "Reset", {"type": "Immediate"}))
        await eventually(lambda: socket.sent)
        socket.receive(result("c1", {"status": "Accepted"}))
        await eventually(lambda: b.publisher.records)
        [answer] = b.publisher.records
        assert answer.durable and answer.on_failure is not None
        b.publisher.refuse(answer)
        first, fallback = b.publisher.frames
        assert first.origin == "station" and first.request is not None and first.action == "Reset"
        assert fallback.origin == "gateway" and fallback.frame is not None
        assert fallback.frame.message_type == MessageType.CALLERROR and fallback.frame.message_id == "c1"
        assert fallback.request == first.request and fallback.correlation_id == "CP1/c1"
        assert b.publisher.records[-1].durable and b.publisher.records[-1].on_failure is None
        assert b.sample("ocpp_gw_callerrors_generated_total", code="InternalError") == 1
        socket.hang_up()
        await serve

    run(test)


def test_a_close_action_closes_the_socket_once() -> None:
    async def test() -> None:
        b = bench()
        limits = SessionLimits(message_rate=1.0, message_burst=1, close_when_limited=True)
        link, socket, serve = await serving(b, limits=limits)
        socket.receive(call("1"), call("2"), call("3"))
        await serve
        assert socket.closes == [(1008, "message rate limit exceeded")]
        assert link.close_status == (1008, "message rate limit exceeded")
        link.apply([CloseStation(1000, "again")])
        link.close(1001, "and again")
        await asyncio.sleep(0)
        assert socket.closes == [(1008, "message rate limit exceeded")]
        # Frames for a closing station are counted, not written.
        link.apply([SendToStation(call("late"))])
        assert socket.protocol.framed == [] and len(socket.sent) == 0

    run(test)


def test_a_station_that_does_not_read_is_closed_once_its_send_buffer_would_pass_send_queue_bytes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def test() -> None:
        b = bench()
        socket = FakeSocket(stalled=True)
        frame = SendToStation(orjson.dumps([6, "s", "Notify", {"x": "y" * 40}]).decode(), MessageType.SEND)
        link = b.link(socket, version=OcppVersion.V21, send_queue_bytes=3 * len(frame.text))
        link.apply([frame, frame, frame])
        assert socket.closes == [] and socket.transport.buffered == 3 * len(frame.text)
        link.apply([frame])
        await eventually(lambda: socket.closes)
        assert socket.closes == [(1008, "send queue full")]
        assert b.sample("ocpp_gw_session_events_total", event="send_queue_full") == 1
        assert any(r.getMessage().startswith("station send queue full") for r in caplog.records)
        link.apply([frame])
        assert b.sample("ocpp_gw_session_events_total", event="send_queue_full") == 1
        assert b.sample("ocpp_gw_frames_total", direction="csms_to_station", message_type="SEND") == 5
        socket.resume()
        assert len(socket.sent) == 3 and socket.transport.buffered == 0

    run(test)


def test_frames_reach_the_station_in_order_without_waiting_for_the_loop() -> None:
    async def test() -> None:
        b = bench()
        socket = FakeSocket()
        link = b.link(socket)
        link.apply([SendToStation(call(str(n))) for n in range(3)])
        assert [orjson.loads(text)[1] for text in socket.sent] == ["0", "1", "2"]

    run(test)


def test_the_timer_answers_a_station_call_the_csms_does_not_answer_in_time() -> None:
    async def test() -> None:
        b = bench()
        limits = SessionLimits(csms_response_timeout=0.05)
        link, socket, serve = await serving(b, limits=limits)
        socket.receive(call("1"))
        await eventually(lambda: link.timer is not None)
        assert link.timer_at == link.session.next_deadline
        await eventually(lambda: socket.sent)
        [answer] = [orjson.loads(text) for text in socket.sent]
        assert answer[:3] == [4, "1", "InternalError"] and "did not answer Heartbeat" in answer[3]
        assert b.sample("ocpp_gw_call_timeouts_total", direction="station_call") == 1
        assert b.sample("ocpp_gw_session_events_total", event="station_call_timeout") == 1
        assert link.timer is None and link.timer_at is None
        # The CSMS's late answer is not passed on.
        csms_sends(link, result("1"))
        assert b.sample("ocpp_gw_session_events_total", event="late_csms_answer") == 1
        socket.hang_up()
        await serve
        assert len(socket.sent) == 1

    run(test)


def test_the_timer_follows_the_next_deadline_and_is_cancelled_when_nothing_waits() -> None:
    async def test() -> None:
        b = bench()
        limits = SessionLimits(station_response_timeout=60.0, csms_response_timeout=30.0)
        link, socket, serve = await serving(b, limits=limits)
        csms_sends(link, call("c1", "Reset", {"type": "Immediate"}))
        first = link.timer
        assert first is not None and link.timer_at == link.session.next_deadline
        socket.receive(call("s1"))  # the calls cross: the station's deadline comes first
        await eventually(lambda: link.timer is not first)
        assert first.cancelled() and link.timer_at == link.session.next_deadline
        second = link.timer
        socket.hang_up()
        await serve
        assert second is not None and second.cancelled() and link.timer is None
        [refused] = [f for f in b.publisher.frames if f.origin == "gateway"]
        assert refused.frame is not None and refused.frame.message_id == "c1"
        assert refused.frame.message_type == MessageType.CALLERROR

    run(test)


def test_the_end_of_the_connection_answers_the_csms_calls_still_owed() -> None:
    async def test() -> None:
        b = bench()
        link, socket, serve = await serving(b, limits=SessionLimits(csms_queue_size=4))
        csms_sends(link, call("c1", "Reset", {"type": "Immediate"}))
        csms_sends(link, call("c2", "Reset", {"type": "OnIdle"}))
        socket.receive(b"\x00binary")
        await eventually(lambda: len(socket.sent) == 2)
        assert orjson.loads(socket.sent[1])[:3] == [4, "-1", "RpcFrameworkError"]
        socket.hang_up(Close(1001, "going away"))
        await serve
        assert link.close_status == (1001, "going away")
        assert [f.frame.message_id for f in b.publisher.frames if f.frame is not None] == ["c1", "c2"]
        assert all(f.origin == "gateway" for f in b.publisher.frames)

    run(test)


def test_a_connection_that_drops_ends_serve_with_1006() -> None:
    async def test() -> None:
        b = bench()
        link, socket, serve = await serving(b)
        socket.receive_error = closed_abnormally()
        socket.hang_up()
        await serve
        assert link.close_status == (1006, "")
        assert link.session.closed

    run(test)


def test_a_failure_while_answering_at_the_end_is_logged_and_the_link_still_winds_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def test() -> None:
        b = bench()
        link, socket, serve = await serving(b)

        def broken(now: float) -> list[object]:
            raise RuntimeError("boom")

        link.session.close = broken  # type: ignore[assignment,method-assign]
        socket.receive(call("1"))
        await eventually(lambda: link.timer is not None)
        timer = link.timer
        socket.hang_up()
        await serve
        assert timer is not None and timer.cancelled()
        assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
            "failed to answer the calls of a closed connection"
        ]

    run(test)


def test_a_frame_for_a_connection_that_already_ended_is_not_written() -> None:
    async def test() -> None:
        b = bench()
        socket = FakeSocket()
        link = b.link(socket)
        socket.hang_up()
        link.apply([SendToStation(call("1"))])
        assert socket.sent == [] and socket.protocol.framed == []
        assert b.sample("ocpp_gw_frames_total", direction="csms_to_station", message_type="CALL") == 1

    run(test)


def test_the_sessions_notices_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def test() -> None:
        b = bench()
        _, socket, serve = await serving(b)
        socket.receive("not json", result("nobody-asked"))
        await eventually(lambda: b.sample("ocpp_gw_session_events_total", event="unexpected_station_answer"))
        assert b.sample("ocpp_gw_session_events_total", event="station_frame_rejected") == 1
        logged = {r.getMessage(): r for r in caplog.records}
        assert logged["station frame rejected"].__dict__["station_id"] == "CP1"
        assert logged["unexpected station answer"].__dict__["message_id"] == "nobody-asked"
        socket.hang_up()
        await serve

    run(test)
