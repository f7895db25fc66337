"""The ``messages_out`` dispatcher room with hand-made records, an in-memory consumer and publisher:
deliver, forward, unroutable, invalid, and when offsets are committed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, cast

import orjson
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError

from ocpp_gw import dispatcher as dispatcher_module
from ocpp_gw.core.envelope import out_record
from ocpp_gw.core.frames import Call, CallError
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.core.routing import Route
from ocpp_gw.dispatcher import Dispatcher, _Assignment
from ocpp_gw.registry import DuplicatePolicy, Registry
from ocpp_gw.routes import RouteBook
from tests.fakes import GATEWAY_ID, KAFKA, Bench, FakeSocket, bench, call, eventually, result, run

TOPIC = KAFKA.out_messages_topic


class FakeConsumer:
    """The ``messages_out`` consumer: batches handed over by the test, commits and positions recorded."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.started = self.stopped = False
        self.topics: list[str] = []
        self.listener: _Assignment | None = None
        self.batches: asyncio.Queue[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]] = asyncio.Queue()
        self.commits = 0
        self.commit_error: Exception | None = None
        self.owned: set[TopicPartition] = set()
        self.highwaters: dict[TopicPartition, int | None] = {}
        self.asked_positions: list[TopicPartition] = []

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def subscribe(self, topics: list[str], listener: _Assignment) -> None:
        self.topics, self.listener = topics, listener

    async def getmany(self, timeout_ms: int = 0) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        return await self.batches.get()

    async def commit(self) -> None:
        self.commits += 1
        if self.commit_error is not None:
            raise self.commit_error

    def assignment(self) -> set[TopicPartition]:
        return self.owned

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp)

    async def position(self, tp: TopicPartition) -> int:
        self.asked_positions.append(tp)
        return 0


class FakeRoutes:
    """The route table: what ``station_routes`` says now."""

    def __init__(self) -> None:
        self.entries: dict[str, Route] = {}

    def get(self, station_id: str) -> Route | None:
        return self.entries.get(station_id)


@pytest.fixture(autouse=True)
def no_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatcher_module, "make_consumer", lambda config, **options: FakeConsumer(**options))


class Setup:
    def __init__(self, partitions: list[int] | None = None) -> None:
        self.b: Bench = bench(partitions)
        self.registry = Registry(self.b.bus, self.b.metrics, DuplicatePolicy.REPLACE)
        self.routes = FakeRoutes()
        self.assignments: list[list[int]] = []
        self.ended: list[asyncio.Task[None]] = []
        self.dispatcher = Dispatcher(
            KAFKA,
            GATEWAY_ID,
            self.registry,
            cast(RouteBook, self.routes),
            self.b.bus,
            self.b.metrics,
            self.assignments.append,
            self.ended.append,
        )

    @property
    def consumer(self) -> FakeConsumer:
        return cast(FakeConsumer, self.dispatcher.consumer)

    def outcome(self, name: str) -> float:
        return self.b.sample("ocpp_gw_csms_records_total", outcome=name)


def record(
    frame: list[Any] | None = None,
    *,
    value: bytes | None = None,
    key: bytes | None = b"CP1",
    protocol: OcppVersion | None = None,
    partition: int = 3,
    offset: int = 10,
    headers: Sequence[tuple[str, bytes]] = (),
) -> ConsumerRecord[bytes, bytes]:
    data = out_record(frame, protocol) if frame is not None else value
    return ConsumerRecord(
        TOPIC, partition, offset, 0, 0, key, data, None, len(key or b""), len(data or b""), list(headers)
    )


def test_a_record_for_a_station_connected_here_is_delivered_to_its_socket() -> None:
    async def test() -> None:
        s = Setup()
        socket = FakeSocket()
        await s.registry.admit(s.b.link(socket))
        assert s.dispatcher.deliver(record([2, "c1", "Reset", {"type": "Hard"}], offset=41)) is True
        await eventually(lambda: socket.sent)
        assert [orjson.loads(text) for text in socket.sent] == [[2, "c1", "Reset", {"type": "Hard"}]]
        assert s.dispatcher.last_offsets == {3: 41}
        assert s.outcome("delivered") == 1
        assert s.dispatcher.deliver(record([3, "c1", {"status": "Accepted"}])) is False  # not a CALL
        assert s.outcome("delivered") == 2

    run(test)


def test_a_record_is_read_in_the_protocol_of_the_station_connected_here() -> None:
    async def test() -> None:
        s = Setup()
        await s.registry.admit(s.b.link(version=OcppVersion.V16))
        # A SEND is an OCPP 2.1 frame: the 1.6 station's session refuses it, whatever the record says.
        assert s.dispatcher.deliver(record([6, "s1", "Notify", {}], protocol=OcppVersion.V21)) is False
        assert s.b.sample("ocpp_gw_session_events_total", event="csms_frame_rejected") == 1

    run(test)


def test_a_record_for_a_station_held_by_another_gateway_is_passed_on_with_one_more_hop() -> None:
    async def test() -> None:
        s = Setup()
        s.routes.entries["CP1"] = Route("CP1", "gw-other", 5, "ocpp2.0.1", "conn", "t0")
        incoming = record([2, "c1", "Reset", {}], headers=[("correlation_id", b"CP1/c1"), ("hops", b"0")])
        assert s.dispatcher.deliver(incoming) is True
        [forwarded] = s.b.publisher.records
        assert forwarded.topic == TOPIC and forwarded.partition == 5
        assert forwarded.key == b"CP1" and forwarded.value == incoming.value
        assert forwarded.headers == [("correlation_id", b"CP1/c1"), ("hops", b"1")]
        assert s.dispatcher.deliver(record([3, "x", {}])) is False
        assert s.b.publisher.records[1].headers == [("hops", b"1")]
        assert s.outcome("forwarded") == 2

    run(test)


@pytest.mark.parametrize(
    ("route", "hops"),
    [
        (None, b"0"),
        (Route("CP1", GATEWAY_ID, 3, "ocpp2.0.1", "conn", "t0"), b"0"),  # a stale route to this gateway
        (Route("CP1", "gw-other", 3, "ocpp2.0.1", "conn", "t0"), b"0"),  # the partition it came from
        (Route("CP1", "gw-other", 5, "ocpp2.0.1", "conn", "t0"), b"2"),  # passed on too often
        (Route("CP1", "gw-other", 5, "ocpp2.0.1", "conn", "t0"), b"x"),  # unreadable hops count as too many
    ],
)
def test_a_csms_call_for_a_station_connected_nowhere_is_answered_with_a_callerror(
    route: Route | None, hops: bytes
) -> None:
    async def test() -> None:
        s = Setup()
        if route is not None:
            s.routes.entries["CP1"] = route
        incoming = record([2, "c1", "Reset", {"type": "Hard"}], protocol=OcppVersion.V16, headers=[("hops", hops)])
        assert s.dispatcher.deliver(incoming) is True
        assert s.outcome("unroutable") == 1 and s.outcome("forwarded") == 0
        [answer] = s.b.publisher.frames
        assert answer.origin == "gateway" and answer.protocol is OcppVersion.V16 and answer.gateway_id == GATEWAY_ID
        assert isinstance(answer.frame, CallError) and answer.frame.message_id == "c1"
        assert answer.frame.code == "InternalError" and answer.frame.description == "station is not connected"
        assert isinstance(answer.request, Call) and answer.request.action == "Reset"
        assert answer.correlation_id == "CP1/c1"
        assert s.b.sample("ocpp_gw_session_events_total", event="csms_call_failed") == 1

    run(test)


def test_an_unroutable_call_without_a_protocol_is_answered_in_ocpp_2_0_1() -> None:
    async def test() -> None:
        s = Setup()
        s.dispatcher.deliver(record([2, "c1", "Reset", {}]))
        [answer] = s.b.publisher.frames
        assert answer.protocol is OcppVersion.V201

    run(test)


@pytest.mark.parametrize(
    ("frame", "protocol", "is_call"),
    [
        ([6, "s1", "NotifyPeriodicEventStream", {}], OcppVersion.V21, True),
        ([3, "r1", {}], None, False),
        ([4, "r1", "GenericError", "", {}], None, False),
    ],
)
def test_anything_but_a_call_for_a_station_connected_nowhere_is_dropped(
    frame: list[Any], protocol: OcppVersion | None, is_call: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async def test() -> None:
        s = Setup()
        caplog.set_level(logging.INFO, logger="ocpp_gw")
        # A SEND is a Call frame, so it counts as commit-worthy like a CALL although nothing answers it.
        assert s.dispatcher.deliver(record(frame, protocol=protocol)) is is_call
        assert s.b.publisher.records == [] and s.outcome("unroutable") == 1
        assert "frame for a station not connected here dropped" in caplog.messages

    run(test)


@pytest.mark.parametrize(
    "incoming",
    [
        record([2, "c1", "Reset", {}], key=None),
        record(value=None),
        record(value=b"{not json"),
        record(value=b'{"v": 1}'),
        record(value=b'{"v": 2, "frame": []}'),
    ],
)
def test_an_invalid_record_is_counted_and_skipped(
    incoming: ConsumerRecord[bytes, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    async def test() -> None:
        s = Setup()
        assert s.dispatcher.deliver(incoming) is False
        assert s.outcome("invalid") == 1 and s.b.publisher.records == []
        assert s.dispatcher.last_offsets == {incoming.partition: incoming.offset}
        [warning] = caplog.records
        assert warning.getMessage() == "invalid messages_out record" and warning.__dict__["offset"] == 10

    run(test)


def test_offsets_are_committed_at_once_after_a_batch_that_carried_a_csms_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def test() -> None:
        s = Setup()
        await s.dispatcher.start()
        consumer = s.consumer
        assert consumer.started and consumer.topics == [TOPIC] and consumer.listener is not None
        assert consumer.options["group_instance_id"] == GATEWAY_ID
        assert consumer.options["group_id"] == KAFKA.ocpp_gw_consumer_group
        tp = TopicPartition(TOPIC, 3)
        consumer.batches.put_nowait({tp: [record([3, "r1", {}], offset=1), record(value=b"", offset=2)]})
        await eventually(lambda: s.dispatcher.last_offsets == {3: 2} and consumer.batches.empty())
        consumer.batches.put_nowait({tp: [record([3, "r2", {}], offset=3)]})
        await eventually(lambda: s.dispatcher.last_offsets == {3: 3})
        assert consumer.commits == 0
        consumer.batches.put_nowait({tp: [record([2, "c1", "Reset", {}], offset=4), record([3, "r3", {}], offset=5)]})
        await eventually(lambda: consumer.commits == 1)
        consumer.commit_error = KafkaConnectionError()
        consumer.batches.put_nowait({tp: [record([2, "c2", "Reset", {}], offset=6)]})
        await eventually(lambda: consumer.commits == 2)
        await eventually(lambda: "offset commit failed; the next one covers it" in caplog.messages)
        s.dispatcher.stop_reading()
        consuming = s.dispatcher.consuming
        assert consuming is not None
        await eventually(lambda: s.ended == [consuming])
        assert consuming.cancelled()

    run(test)


def test_a_record_that_fails_is_counted_and_the_rest_of_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def test() -> None:
        s = Setup()
        real = s.dispatcher.deliver

        def deliver(incoming: ConsumerRecord[bytes, bytes]) -> bool:
            if incoming.offset == 1:
                raise RuntimeError("boom")
            return real(incoming)

        monkeypatch.setattr(s.dispatcher, "deliver", deliver)
        await s.dispatcher.start()
        tp = TopicPartition(TOPIC, 3)
        s.consumer.batches.put_nowait(
            {tp: [record([2, "c1", "Heartbeat", {}], offset=1), record([2, "c2", "Reset", {}], offset=2)]}
        )
        await eventually(lambda: s.consumer.commits == 1)
        assert s.outcome("failed") == 1 and s.outcome("unroutable") == 1
        failed = [r for r in caplog.records if r.getMessage() == "failed to handle a messages_out record"]
        assert failed[0].__dict__["offset"] == 1 and failed[0].exc_info is not None
        s.dispatcher.stop_reading()

    run(test)


def test_a_replaced_consumer_is_stopped_and_a_new_one_rejoins_and_reads() -> None:
    async def test() -> None:
        s = Setup()
        s.dispatcher.stop_reading()  # not reading yet: nothing to stop
        await s.dispatcher.start()
        old, reading = s.consumer, s.dispatcher.consuming
        await s.dispatcher.replace()
        assert old.stopped and s.consumer is not old and s.consumer.started
        assert reading is not None and s.dispatcher.consuming is not reading
        await eventually(lambda: reading.done())
        assert reading.cancelled()
        s.consumer.batches.put_nowait({TopicPartition(TOPIC, 3): [record([2, "c1", "Reset", {}], offset=7)]})
        await eventually(lambda: s.consumer.commits == 1)
        s.dispatcher.stop_reading()

    run(test)


def test_positions_are_fixed_for_every_owned_partition_and_lag_counts_unread_records() -> None:
    async def test() -> None:
        s = Setup()
        consumer = s.consumer
        read, fresh, unknown = (TopicPartition(TOPIC, p) for p in (3, 4, 5))
        consumer.owned = {read, fresh, unknown}
        consumer.highwaters = {read: 20, fresh: 8, unknown: None}
        await s.dispatcher.fix_positions()
        assert set(consumer.asked_positions) == {read, fresh, unknown}
        assert s.dispatcher.lag() == 0
        s.dispatcher.deliver(record([3, "r", {}], partition=3, offset=10))
        assert s.dispatcher.lag() == 9

    run(test)


def test_the_assignment_listener_reports_the_owned_partitions_in_order() -> None:
    async def test() -> None:
        s = Setup()
        await s.dispatcher.start()
        listener = s.consumer.listener
        assert listener is not None
        await listener.on_partitions_revoked([TopicPartition(TOPIC, 1)])
        await listener.on_partitions_assigned([TopicPartition(TOPIC, 4), TopicPartition(TOPIC, 1)])
        await listener.on_partitions_assigned([])
        assert s.assignments == [[1, 4], []]
        s.dispatcher.stop_reading()

    run(test)


def test_a_csms_answer_to_a_station_call_is_delivered_once_the_station_asked() -> None:
    async def test() -> None:
        s = Setup()
        socket = FakeSocket()
        link = s.b.link(socket)
        await s.registry.admit(link)
        serving = asyncio.create_task(link.serve())
        socket.receive(call("s1"))
        await eventually(lambda: s.b.publisher.records)
        assert s.dispatcher.deliver(record(orjson.loads(result("s1", {"currentTime": "t"})))) is False
        await eventually(lambda: socket.sent)
        assert orjson.loads(socket.sent[0]) == [3, "s1", {"currentTime": "t"}]
        socket.hang_up()
        await serving

    run(test)


def test_invalid_records_count_as_read_in_the_lag() -> None:
    async def test() -> None:
        s = Setup()
        tp = TopicPartition(TOPIC, 3)
        s.consumer.owned = {tp}
        s.consumer.highwaters = {tp: 13}
        s.dispatcher.deliver(record([3, "r", {}], offset=10))
        s.dispatcher.deliver(record(value=b"not json", offset=11))
        s.dispatcher.deliver(record(value=b"not json", offset=12))
        assert s.dispatcher.lag() == 0

    run(test)
