"""The CSMS worker loop: read station CALLs from ``messages_in``, answer them on ``messages_out``.

Stateless: any number of workers share the ``csms_server`` consumer group. Offsets are committed
only after Kafka acknowledged the answers to everything before them, so a crash re-answers rather
than loses; reading does not wait for those acknowledgements. A record that cannot be read is
logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from ocpp_gw.cli import bounded
from ocpp_gw.config import Config, CsmsConfig
from ocpp_gw.consumer_watch import ConsumerWatch, stop_quietly
from ocpp_gw.core.envelope import out_record
from ocpp_gw.core.frames import load_json
from ocpp_gw.core.protocol import Fault, MessageType, OcppVersion, error_code
from ocpp_gw.kafka_clients import make_consumer
from ocpp_gw.kafka_topics import ensure_topics
from ocpp_gw.metrics import CsmsMetrics
from ocpp_gw.publisher import RecoveringProducer
from ocpp_gw.status import StatusServer

from .handlers import HANDLERS, Request

log = logging.getLogger("csms_server")


def answer(document: dict[str, Any], settings: CsmsConfig) -> list[Any] | None:
    """The OCPP-J answer to a station CALL in a ``messages_in`` record, or None if there is none to give."""
    if document.get("kind") != "frame" or document.get("origin") != "station":
        return None
    frame = document.get("frame")
    if not isinstance(frame, list) or len(frame) != 4 or frame[0] != MessageType.CALL:
        return None
    _, message_id, action, payload = frame
    version = OcppVersion(document["protocol"])
    handler = HANDLERS.get((version, action))
    if handler is None:
        code = error_code(version, Fault.NOT_IMPLEMENTED)
        return [MessageType.CALLERROR, message_id, code, f"{action[:200]} is not implemented by this CSMS", {}]
    request = Request(document["station_id"], version, action, payload, settings)
    try:
        return [MessageType.CALLRESULT, message_id, handler(request)]
    except Exception:
        log.exception("handler failed", extra={"station_id": request.station_id, "action": action})
        code = error_code(version, Fault.INTERNAL)
        return [MessageType.CALLERROR, message_id, code, f"{action[:200]} handler failed", {}]


COMMIT_INTERVAL_MS = 200
"""How often answered offsets are committed (and how long a poll waits for records)."""


@dataclass
class _Batch:
    """Records read together and the deliveries of their answers."""

    records: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    answers: list[asyncio.Future[Any]]


class _LogAssignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """Says "csms ready" once this worker owns partitions of ``messages_in``."""

    def __init__(self, worker: CsmsWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.worker.partitions = sorted(tp.partition for tp in assigned)
        log.info("csms ready", extra={"partitions": self.worker.partitions})


class CsmsWorker:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.partitions: list[int] = []
        self.metrics = CsmsMetrics()
        self.metrics.ready.set_function(lambda: int(self.ready()))
        self.producer = RecoveringProducer(config.kafka)
        self.consumer = self._new_consumer()
        self.reading: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.watch = ConsumerWatch(
            "messages_in", config.kafka, lambda: self.consumer, self._replace_consumer, self.metrics.consumers_replaced
        )

    def _new_consumer(self) -> AIOKafkaConsumer:
        kafka = self.config.kafka
        return make_consumer(
            kafka,
            group_id=kafka.csms_consumer_group,
            auto_offset_reset=self.config.csms.auto_offset_reset,
            enable_auto_commit=False,
            request_timeout_ms=kafka.request_timeout_ms,
        )

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.config.csms
        async with StatusServer(settings.status_host, settings.status_port, self.metrics.registry, self.ready):
            await self._run(stop)

    def ready(self) -> bool:
        return bool(self.partitions) and self.watch.passing

    async def _run(self, stop: asyncio.Event) -> None:
        kafka = self.config.kafka
        await ensure_topics(kafka, kafka.in_messages_topic, kafka.out_messages_topic)
        await self.producer.start()
        await self._start_reading(stop)
        self.watch.start()
        try:
            while not stop.is_set():
                assert self.reading is not None
                reading = self.reading
                await asyncio.wait((reading, asyncio.ensure_future(stop.wait())), return_when=asyncio.FIRST_COMPLETED)
                if reading.done() and not reading.cancelled() and self.reading is reading:
                    reading.result()  # the loop ended by itself: a bug or a lasting Kafka error; stop
        finally:
            await self.watch.stop()
            if self.reading is not None:
                await bounded(self.reading, "answer what was read")
            await bounded(self.producer.stop(), "stop producer")
            await bounded(self.consumer.stop(), "leave consumer group")

    async def _start_reading(self, stop: asyncio.Event) -> None:
        await self.consumer.start()
        self.consumer.subscribe([self.config.kafka.in_messages_topic], listener=_LogAssignment(self))
        self.reading = asyncio.create_task(self._read(self.consumer, stop), name="read-messages_in")
        self._stop = stop

    async def _replace_consumer(self) -> None:
        """Leave a consumer that stopped making progress; a new one rejoins the group and reads again from
        the committed offsets (answers given twice are dropped by the gateway)."""
        if self.reading is not None:
            self.reading.cancel()
        await stop_quietly(self.consumer)
        self.consumer = self._new_consumer()
        await self._start_reading(self._stop)

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
                    log.error("answers not acknowledged; reading their records again")
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
            log.warning("rebalance while committing; the records will be read again", extra={"error": repr(error)})

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> asyncio.Future[Any] | None:
        try:
            document = load_json(record.value or b"")
            reply = answer(document, self.config.csms) if isinstance(document, dict) else None
            if reply is not None and not isinstance(document.get("station_id"), str):
                raise ValueError("record has no station_id")
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            self.metrics.skipped.inc()
            log.warning(
                "skipping unreadable record",
                extra={"partition": record.partition, "offset": record.offset, "error": str(error)},
            )
            return None
        if reply is None:
            return None
        station_id = document["station_id"]
        headers = [(k, v) for k, v in record.headers or () if k == "correlation_id"]
        log.info(
            "answering",
            extra={
                "station_id": station_id,
                "action": document.get("action"),
                "message_id": reply[1],
                "correlation_id": headers[0][1].decode(errors="replace") if headers else None,
            },
        )
        self.metrics.answered.labels(document.get("action", "?"), "CALLRESULT" if reply[0] == 3 else reply[2]).inc()
        value = out_record(reply, OcppVersion(document["protocol"]))
        partition = document.get("reply_partition")
        topic, key = self.config.kafka.out_messages_topic, station_id.encode()
        try:
            future: asyncio.Future[Any] = await self.producer.send(
                topic,
                value=value,
                key=key,
                partition=partition if isinstance(partition, int) else None,
                headers=headers,
            )
        except AssertionError:
            log.warning("unknown reply partition; answering by key", extra={"reply_partition": partition})
            future = await self.producer.send(topic, value=value, key=key, headers=headers)
        except KafkaError as error:
            # Not skipped: the failed delivery makes the worker read this record again and answer it then.
            log.error(
                "answer refused by Kafka; will answer again", extra={"station_id": station_id, "error": repr(error)}
            )
            future = asyncio.get_running_loop().create_future()
            future.set_exception(error)
        return future
