"""The SDK's worker: a member of the CSMS consumer group on ``messages_in`` that answers station calls."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from ..cli import base_parser, bounded, install_stop_handlers, keep_out_of_collections, run_program
from ..config import Config, KafkaConfig
from ..consumer_watch import ConsumerWatch, stop_quietly
from ..core.envelope import EnvelopeError, InRecord, decode_in_record, out_record
from ..core.frames import Call
from ..core.protocol import Fault, MessageType, OcppVersion
from ..kafka_clients import check_access, make_consumer
from ..kafka_topics import ensure_topics, partitions_of
from ..metrics import CsmsMetrics
from ..publisher import RecoveringProducer
from ..status import StatusServer
from .calls import C, ConnectionHandler, H, Handler, StationCall, _call_error, to_payload

log = logging.getLogger("ocpp_gw.sdk")


COMMIT_INTERVAL_MS = 200
"""How often answered offsets are committed (and how long a poll waits for records)."""


@dataclass
class _Batch:
    """Records read together and the deliveries of their answers."""

    records: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    answers: list[asyncio.Future[Any]]


class _Assignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """Notes the partitions of ``messages_in`` the worker owns and says "csms ready" when it gets them."""

    def __init__(self, csms: Csms) -> None:
        self.csms = csms

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.csms.partitions = sorted(tp.partition for tp in assigned)
        self.csms.log.info("csms ready", extra={"partitions": self.csms.partitions})


class Csms:
    """A CSMS worker: answers the station CALLs on ``messages_in`` with the registered handlers.

    Stateless, so run as many as ``messages_in`` has partitions; they share a consumer group. Reading
    goes on while answers are on their way; offsets are committed only once Kafka acknowledged the
    answers to everything before them, so a crash answers again rather than loses (the gateway drops
    the duplicates). An action without a handler gets the version's NotImplemented CALLERROR, a
    handler that raises an InternalError one, and a record that is not an envelope is logged and skipped.
    Building one does no I/O: register handlers at import time, then :meth:`run` (or :meth:`main`).
    """

    def __init__(self, *, logger: logging.Logger | None = None) -> None:
        self.log = logger or log
        self.metrics = CsmsMetrics()
        self.metrics.ready.set_function(lambda: int(self.ready()))
        self.partitions: list[int] = []
        """The ``messages_in`` partitions this worker owns."""
        self._handlers: dict[tuple[OcppVersion | None, str], Handler] = {}
        self._connection_handlers: list[ConnectionHandler] = []
        self._kafka = KafkaConfig()
        self._settings: dict[str, Any] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: RecoveringProducer | None = None
        self._out_partitions: set[int] = set()
        """The partitions of ``messages_out``, to check a record's reply partition against."""
        self._watch: ConsumerWatch | None = None
        self._reading: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def on(self, action: str, *versions: OcppVersion | str) -> Callable[[H], H]:
        """Register the decorated function as the handler of ``action`` for ``versions`` (none: every version).

        It gets a :class:`StationCall` and returns the response payload (see :data:`Response`); it may be a
        coroutine function. A handler for the record's own version wins over one for every version.
        """
        keys: list[OcppVersion | None] = [OcppVersion(version) for version in versions] or [None]

        def register(handler: H) -> H:
            for version in keys:
                self._handlers[(version, action)] = handler
            return handler

        return register

    def on_connection(self, handler: C) -> C:
        """Register the decorated function for the ``connected`` and ``disconnected`` records this worker
        reads: in order with the station's frames, each record by one worker of the group."""
        self._connection_handlers.append(handler)
        return handler

    async def answer(self, record: InRecord) -> list[Any] | None:
        """The OCPP-J answer to a station's CALL; None for every other record (there is nothing to answer)."""
        call = record.frame
        if record.origin != "station" or not isinstance(call, Call) or call.send:
            return None
        version = record.protocol
        handler = self._handlers.get((version, call.action)) or self._handlers.get((None, call.action))
        if handler is None:
            description = f"{call.action[:200]} is not implemented by this CSMS"
            return _call_error(version, call.message_id, Fault.NOT_IMPLEMENTED, description)
        try:
            response: object = handler(
                StationCall(record.station_id, version, call.action, call.payload, call.message_id, record)
            )
            if inspect.isawaitable(response):
                response = await response
            return [MessageType.CALLRESULT, call.message_id, to_payload(response)]
        except Exception:
            self.log.exception("handler failed", extra={"station_id": record.station_id, "action": call.action})
            return _call_error(version, call.message_id, Fault.INTERNAL, f"{call.action[:200]} handler failed")

    def ready(self) -> bool:
        """It owns partitions of ``messages_in`` and its consumer is not behind without moving."""
        return bool(self.partitions) and self._watch is not None and self._watch.passing

    def main(self, argv: list[str] | None = None, program: str = "csms") -> int:
        """Run as a program until SIGINT or SIGTERM and return its exit status: ``--config PATH`` (default
        ./config.cfg; ``OCPPGW_`` variables override it), logging as ``[logging]`` says, see :meth:`serve`."""
        args = base_parser(program, "A CSMS worker built on ocpp_gw.sdk.").parse_args(argv)

        async def serve(config: Config, args: argparse.Namespace) -> int:
            stop = asyncio.Event()
            install_stop_handlers(stop)
            await check_access(config.kafka)
            await self.serve(config, stop)
            return 0

        return run_program(program, args, serve)

    async def serve(self, config: Config, stop: asyncio.Event) -> None:
        """:meth:`run` with a program's settings (``[kafka]``, ``[csms] auto_offset_reset``) and its status
        port: ``/healthz``, ``/readyz`` and ``/metrics`` on ``[csms] status_host`` and ``status_port`` (0: none)."""
        settings = config.csms
        async with StatusServer(settings.status_host, settings.status_port, self.metrics.registry, self.ready):
            await self.run(config.kafka, stop, auto_offset_reset=settings.auto_offset_reset)

    async def run(
        self,
        kafka: KafkaConfig,
        stop: asyncio.Event | None = None,
        *,
        group_id: str | None = None,
        auto_offset_reset: str = "earliest",
    ) -> None:
        """Answer until ``stop`` is set (without one, until cancelled): create the topics if they are missing,
        join ``group_id`` (default ``[kafka] csms_consumer_group``) and read ``messages_in``."""
        self._kafka, self._stop = kafka, stop or asyncio.Event()
        self._settings = {
            "group_id": group_id or kafka.csms_consumer_group,
            "auto_offset_reset": auto_offset_reset,
            "enable_auto_commit": False,
            "request_timeout_ms": kafka.request_timeout_ms,
        }
        await ensure_topics(kafka, kafka.in_messages_topic, kafka.out_messages_topic)
        self._out_partitions = set(await partitions_of(kafka, kafka.out_messages_topic))
        self._producer = RecoveringProducer(kafka)
        self._consumer = make_consumer(kafka, **self._settings)
        self._watch = ConsumerWatch(
            "messages_in", kafka, self._current_consumer, self._replace_consumer, self.metrics.consumers_replaced
        )
        await self._producer.start()
        await self._start_reading()
        self._watch.start()
        keep_out_of_collections()
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                assert self._reading is not None
                reading = self._reading
                await asyncio.wait((reading, stopping), return_when=asyncio.FIRST_COMPLETED)
                if reading.done() and not reading.cancelled() and self._reading is reading:
                    reading.result()  # the loop ended by itself: a bug or a lasting Kafka error; stop
        finally:
            stopping.cancel()
            await self._watch.stop()
            if self._reading is not None:
                await bounded(self._reading, "answer what was read")
            await bounded(self._producer.stop(), "stop producer")
            await bounded(self._current_consumer().stop(), "leave consumer group")

    async def _reply_partition(self, partition: int | None) -> int | None:
        """The record's reply partition if ``messages_out`` has it (looked up again once, for partitions
        added since); otherwise None, and the answer goes by key (the gateway passes it on)."""
        if partition is None or partition in self._out_partitions:
            return partition
        with contextlib.suppress(KafkaError):
            self._out_partitions = set(await partitions_of(self._kafka, self._kafka.out_messages_topic))
        if partition in self._out_partitions:
            return partition
        self.log.warning("unknown reply partition; answering by key", extra={"reply_partition": partition})
        return None

    def _current_consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "the worker is not running"
        return self._consumer

    async def _start_reading(self) -> None:
        consumer = self._current_consumer()
        await consumer.start()
        consumer.subscribe([self._kafka.in_messages_topic], listener=_Assignment(self))
        self._reading = asyncio.create_task(self._read(consumer, self._stop), name="read-messages_in")

    async def _replace_consumer(self) -> None:
        """Leave a consumer that stopped making progress; a new one rejoins the group and reads again from
        the committed offsets (answers given twice are dropped by the gateway)."""
        if self._reading is not None:
            self._reading.cancel()
        await stop_quietly(self._current_consumer())
        self._consumer = make_consumer(self._kafka, **self._settings)
        await self._start_reading()

    async def _read(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        batches_in_flight: deque[_Batch] = deque()
        next_commit = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=COMMIT_INTERVAL_MS)
            if batches:
                deliveries = [await self._handle(record) for records in batches.values() for record in records]
                batches_in_flight.append(_Batch(batches, [d for d in deliveries if d is not None]))
            if batches_in_flight and loop.time() >= next_commit:
                next_commit = loop.time() + COMMIT_INTERVAL_MS / 1000
                await self._commit_answered(consumer, batches_in_flight)
        await self._commit_answered(consumer, batches_in_flight, wait=True)

    async def _commit_answered(self, consumer: AIOKafkaConsumer, batches: deque[_Batch], wait: bool = False) -> None:
        """Commit the offsets of the oldest batches whose answers Kafka has acknowledged, in order.

        Reading goes on while answers are in flight; a batch with a failed answer is read again
        (the gateway drops the answers that turn out to be duplicates).
        """
        offsets: dict[TopicPartition, int] = {}
        try:
            while batches and (wait or all(f.done() for f in batches[0].answers)):
                batch = batches.popleft()
                results = await asyncio.gather(*batch.answers, return_exceptions=True)
                if any(isinstance(r, BaseException) for r in results):
                    self.log.error("answers not acknowledged; reading their records again")
                    first: dict[TopicPartition, int] = {}
                    for later in (batch, *batches):
                        for tp, records in later.records.items():
                            first[tp] = min(first.get(tp, records[0].offset), records[0].offset)
                    for tp, offset in first.items():
                        consumer.seek(tp, offset)
                    batches.clear()
                    break
                offsets.update({tp: records[-1].offset + 1 for tp, records in batch.records.items()})
            if offsets:
                await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as error:
            self.log.warning("rebalance while committing; the records will be read again", extra={"error": repr(error)})

    async def _handle(self, consumed: ConsumerRecord[bytes, bytes]) -> asyncio.Future[Any] | None:
        """Decode one record and act on it; the delivery of its answer, if it has one."""
        try:
            record = decode_in_record(consumed.key, consumed.value, consumed.headers)
        except EnvelopeError as error:
            self.metrics.skipped.inc()
            self.log.warning(
                "skipping unreadable record",
                extra={"partition": consumed.partition, "offset": consumed.offset, "error": str(error)},
            )
            return None
        if record.kind != "frame":
            await self._tell_connection_handlers(record)
            return None
        reply = await self.answer(record)
        return None if reply is None else await self._send(record, reply)

    async def _tell_connection_handlers(self, record: InRecord) -> None:
        for handler in self._connection_handlers:
            try:
                told = handler(record)
                if inspect.isawaitable(told):
                    await told
            except Exception:
                self.log.exception(
                    "connection handler failed", extra={"station_id": record.station_id, "kind": record.kind}
                )

    async def _send(self, record: InRecord, reply: list[Any]) -> asyncio.Future[Any]:
        """Publish ``reply`` on the record's reply partition, with its correlation id."""
        station_id, action = record.station_id, record.action or "?"
        try:
            value = out_record(reply, record.protocol)
        except TypeError as error:
            self.log.error("handler answer is not JSON", extra={"station_id": station_id, "error": str(error)})
            reply = _call_error(record.protocol, reply[1], Fault.INTERNAL, f"{action[:200]} handler failed")
            value = out_record(reply, record.protocol)
        self.log.info(
            "answering",
            extra={
                "station_id": station_id,
                "action": record.action,
                "message_id": reply[1],
                "correlation_id": record.correlation_id,
            },
        )
        self.metrics.answered.labels(action, "CALLRESULT" if reply[0] == MessageType.CALLRESULT else reply[2]).inc()
        headers = [] if record.correlation_id is None else [("correlation_id", record.correlation_id.encode())]
        topic, key = self._kafka.out_messages_topic, station_id.encode()
        assert self._producer is not None
        partition = await self._reply_partition(record.reply_partition)
        try:
            future: asyncio.Future[Any] = await self._producer.send(
                topic, value=value, key=key, partition=partition, headers=headers
            )
        except KafkaError as error:
            # Not skipped: the failed delivery makes the worker read this record again and answer it then.
            self.log.error(
                "answer refused by Kafka; will answer again", extra={"station_id": station_id, "error": repr(error)}
            )
            future = asyncio.get_running_loop().create_future()
            future.set_exception(error)
        return future
