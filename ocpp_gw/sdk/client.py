"""The SDK's client: calls to stations, and what arrives on ``messages_in`` from the moment it starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from ..cli import SHUTDOWN_TIMEOUT
from ..config import KafkaConfig
from ..core.envelope import EnvelopeError, InRecord, decode_in_record
from ..core.frames import CallError, CallResult
from ..core.protocol import MessageType
from ..kafka_clients import make_consumer, make_producer
from ..kafka_topics import partitions_of
from ..routes import RouteBook, publish_to_station
from .calls import CallErrorReceived, CallTimeout, Payload, Response, to_payload

log = logging.getLogger("ocpp_gw.sdk")


class CsmsClient:
    """Starts calls to stations, and follows ``messages_in`` from the moment it starts.

    It reads every partition without a consumer group, so each client sees every answer and event.
    Use it as ``async with CsmsClient(kafka) as client:``.
    """

    def __init__(self, kafka: KafkaConfig) -> None:
        self.kafka = kafka
        self._routes: RouteBook | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reading: asyncio.Task[None] | None = None
        self._answers: dict[tuple[str, str], asyncio.Future[InRecord]] = {}
        self._listeners: list[Callable[[InRecord], None]] = []
        self._followers: set[asyncio.Queue[InRecord]] = set()

    async def __aenter__(self) -> CsmsClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Load the route table and start reading ``messages_in`` at its end."""
        kafka = self.kafka
        self._routes = RouteBook(kafka)
        self._consumer = make_consumer(kafka, enable_auto_commit=False)
        self._producer = make_producer(kafka)
        try:
            await self._routes.start()
            await self._consumer.start()
            await self._producer.start()
            topic = kafka.in_messages_topic
            partitions = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
            self._consumer.assign(partitions)
            await self._consumer.seek_to_end(*partitions)
            for partition in partitions:
                await self._consumer.position(partition)  # fixes the end now: what comes later is read
        except BaseException:
            await self.stop()
            raise
        self._reading = asyncio.create_task(self._read(self._consumer), name="client-read-messages_in")

    async def stop(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        for client in (self._producer, self._consumer, self._routes):
            if client is not None:
                with contextlib.suppress(KafkaError, TimeoutError, OSError):
                    await asyncio.wait_for(client.stop(), SHUTDOWN_TIMEOUT)

    async def send_call(self, station_id: str, action: str, payload: Response, timeout: float = 35.0) -> Payload:
        """Call ``action`` on the station and return the payload of its CALLRESULT.

        Raises :class:`StationOffline` (no route), :class:`CallErrorReceived` (a CALLERROR) or
        :class:`CallTimeout` (no answer within ``timeout`` seconds of Kafka taking the call).
        """
        message_id = str(uuid.uuid4())
        key = (station_id, message_id)
        answer = self._answers[key] = asyncio.get_running_loop().create_future()
        try:
            await self.publish_call(station_id, action, payload, message_id)
            try:
                record = await asyncio.wait_for(answer, timeout)
            except TimeoutError:
                raise CallTimeout(f"no answer from {station_id} to {action} within {timeout:g} s") from None
        finally:
            self._answers.pop(key, None)
        if isinstance(record.frame, CallResult):
            return record.frame.payload
        raise CallErrorReceived(record)

    async def publish_call(self, station_id: str, action: str, payload: Response, message_id: str | None = None) -> str:
        """Publish a CALL on the station's route without waiting for its answer (it reaches the :meth:`listen`
        callbacks); returns its message id. Raises :class:`StationOffline` when the station has no route."""
        if self._producer is None or self._routes is None:
            raise RuntimeError("start the client first")
        message_id = message_id or str(uuid.uuid4())
        frame = [MessageType.CALL, message_id, action, to_payload(payload)]
        await publish_to_station(self._producer, self.kafka, self._routes, station_id, frame)
        return message_id

    def listen(self, callback: Callable[[InRecord], None]) -> None:
        """Have ``callback`` called with every record read from now on: frames, answers and events."""
        self._listeners.append(callback)

    def events(self) -> AsyncIterator[InRecord]:
        """The ``connected`` and ``disconnected`` records of every station from now on, as they come."""
        queue: asyncio.Queue[InRecord] = asyncio.Queue()
        self._followers.add(queue)
        return self._follow(queue)

    async def _follow(self, queue: asyncio.Queue[InRecord]) -> AsyncIterator[InRecord]:
        try:
            while True:
                yield await queue.get()
        finally:
            self._followers.discard(queue)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=200)
            except KafkaError as error:
                log.warning("reading messages_in failed; trying again", extra={"error": repr(error)})
                await asyncio.sleep(0.2)
                continue
            for records in batches.values():
                for consumed in records:
                    try:
                        record = decode_in_record(consumed.key, consumed.value, consumed.headers)
                    except EnvelopeError as error:
                        log.warning(
                            "skipping unreadable record", extra={"offset": consumed.offset, "error": str(error)}
                        )
                        continue
                    self._deliver(record)

    def _deliver(self, record: InRecord) -> None:
        frame = record.frame
        if isinstance(frame, CallResult) or (isinstance(frame, CallError) and not frame.to_result):
            answer = self._answers.get((record.station_id, frame.message_id))
            if answer is not None and not answer.done():
                answer.set_result(record)
        elif record.kind != "frame":
            for queue in self._followers:
                queue.put_nowait(record)
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:
                log.exception("record listener failed", extra={"station_id": record.station_id})
