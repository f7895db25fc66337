"""Publishing to Kafka: one producer that recovers when it breaks, and records kept in order until Kafka takes them."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError, OutOfOrderSequenceNumber, ProducerFenced
from prometheus_client import Counter, Histogram

from .config import KafkaConfig
from .kafka_clients import make_producer

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]

HEALTH_WINDOW = 10.0
"""Seconds after a refused record during which the publisher counts as unhealthy (not ready)."""

RETRY_BACKOFF = (0.2, 5.0)
"""First and longest pause before records Kafka did not take are offered again (doubling in between)."""

FATAL_PRODUCER_ERRORS = (OutOfOrderSequenceNumber, ProducerFenced)
"""Errors after which aiokafka's idempotent producer fails every later record."""


class RecoveringProducer:
    """The idempotent producer of :func:`make_producer`, replaced by a fresh one when it breaks for good.

    After a broker restart under load, aiokafka's idempotent producer can get OutOfOrderSequenceNumber;
    its sender then stops and every later record fails (found by the fault suite). The records it
    held fail (their callers answer with CALLERRORs) and a new producer, with a new producer id,
    takes the next ones. Nothing is sent twice: failed records are not retried here.
    """

    def __init__(self, config: KafkaConfig) -> None:
        self._config = config
        self._producer = make_producer(config)
        self._replacing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        if self._replacing is not None:
            self._replacing.cancel()
        await self._producer.stop()

    async def flush(self) -> None:
        await self._producer.flush()

    async def usable(self) -> None:
        """Return once no replacement is under way (records sent now reach a working producer)."""
        if self._replacing is not None:
            await asyncio.shield(self._replacing)

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> asyncio.Future[Any]:
        """Hand a record to the producer; the returned future completes when Kafka acknowledges it."""
        producer = self._producer
        try:
            delivery: asyncio.Future[Any] = await producer.send(
                topic, value=value, key=key, partition=partition, headers=headers
            )
        except FATAL_PRODUCER_ERRORS:
            self._replace(producer)
            raise
        delivery.add_done_callback(lambda done: self._check(done, producer))
        return delivery

    def _check(self, delivery: asyncio.Future[Any], producer: AIOKafkaProducer) -> None:
        if not delivery.cancelled() and isinstance(delivery.exception(), FATAL_PRODUCER_ERRORS):
            self._replace(producer)

    def _replace(self, broken: AIOKafkaProducer) -> None:
        if broken is self._producer and self._replacing is None:
            self._replacing = asyncio.create_task(self._swap(broken), name="replace-kafka-producer")

    async def _swap(self, broken: AIOKafkaProducer) -> None:
        log.error("the Kafka producer failed for good; starting a new one")
        while True:
            fresh = make_producer(self._config)
            try:
                await fresh.start()
                break
            except KafkaError:
                await fresh.stop()
                await asyncio.sleep(1.0)
        self._producer = fresh
        self._replacing = None
        try:
            await asyncio.wait_for(broken.stop(), 15)
        except (TimeoutError, KafkaError) as error:
            log.warning("closing the broken producer failed", extra={"error": repr(error)})


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to publish, and what happens if Kafka does not take it.

    A ``durable`` record (a station's answer, the gateway's CALLERROR for a CSMS call, a connection
    event, a route) is kept and offered again until Kafka takes it: the CSMS is waiting for it.
    A record that is not durable (a station CALL) is refused at once through ``on_failure``, so the
    station gets its CALLERROR and retries (OCPP-J). ``on_failure`` of a durable record runs only
    when Kafka can never take it (too large, say) or no room is left to keep it. ``current`` says,
    before each new attempt, whether a durable record is still wanted (a newer route replaces it).
    """

    topic: str
    key: bytes
    value: bytes | None
    headers: Headers
    on_failure: Callable[[], None] | None = None
    partition: int | None = None
    durable: bool = True
    current: Callable[[], bool] | None = None
    retried: bool = False
    size: int = field(init=False)
    """Bytes of key, value and headers: what the record weighs against ``unsent_max_bytes`` (counted once)."""

    def __post_init__(self) -> None:
        weight = len(self.key) + len(self.value or b"") + sum(len(k) + len(v) for k, v in self.headers)
        object.__setattr__(self, "size", weight)


def not_written(error: BaseException | None) -> bool:
    """The idempotent producer did not write a record that failed with ``error``: offering it again
    cannot make a duplicate. aiokafka never expires a batch it has sent (it retries it with its
    sequence number); it fails a batch that found no leader in time, or a send that found no room
    or metadata in time, or everything when its sender broke (then the broker refused the batch)."""
    return isinstance(error, (KafkaTimeoutError, *FATAL_PRODUCER_ERRORS)) or bool(
        isinstance(error, KafkaError) and error.retriable
    )


class OrderedPublisher:
    """Publishes records in the order :meth:`publish` was called, and keeps those Kafka did not take.

    Callers are synchronous (the protocol core's actions are carried out without awaiting), so
    one task hands the records to the producer; records of one station therefore keep their
    order on its partition. A durable record that Kafka did not take waits, with every later
    record of its key, until the next attempt; at most ``max_records`` records and ``max_bytes``
    bytes wait in all (queued or kept), beyond that a record is refused.
    """

    def __init__(
        self,
        producer: RecoveringProducer,
        latency: Histogram | None = None,
        errors: Counter | None = None,
        max_records: int = 100_000,
        max_bytes: int = 256 * 2**20,
    ) -> None:
        self._producer = producer
        self._queue: asyncio.Queue[Outgoing | None] = asyncio.Queue()
        self._kept: dict[tuple[str, bytes], deque[Outgoing]] = {}
        self._task: asyncio.Task[None] | None = None
        self._retrying: asyncio.Task[None] | None = None
        self._latency, self._errors = latency, errors
        self._max_records, self._max_bytes = max_records, max_bytes
        self._last_failure = -1e9
        self.waiting_records = 0
        """Records published but not yet handed to the producer (queued, or kept for another attempt)."""
        self.waiting_bytes = 0
        self.kept_records = 0
        """Records Kafka did not take that wait for another attempt (with the later records of their keys)."""

    @property
    def depth(self) -> int:
        """Records waiting to be handed to the producer."""
        return self.waiting_records

    @property
    def healthy(self) -> bool:
        """Kafka takes records: none refused in the last ``HEALTH_WINDOW`` seconds, none kept for another attempt."""
        return not self._kept and time.monotonic() - self._last_failure > HEALTH_WINDOW

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kafka-publisher")
        self._retrying = asyncio.create_task(self._retry_kept(), name="kafka-publisher-retry")

    def publish(self, record: Outgoing) -> None:
        size = record.size
        if self.waiting_records >= self._max_records or self.waiting_bytes + size > self._max_bytes:
            log.error(
                "too many records wait for Kafka; record refused",
                extra={"topic": record.topic, "waiting_records": self.waiting_records},
            )
            self._failed(record)
            return
        self.waiting_records += 1
        self.waiting_bytes += size
        kept = self._kept.get((record.topic, record.key)) if self._kept else None
        if kept is not None and record.durable:
            kept.append(record)
            self.kept_records += 1
        else:
            self._queue.put_nowait(record)

    async def close(self) -> None:
        """Publish what is queued or kept, then wait until Kafka has acknowledged all of it."""
        if self._task is None:
            return
        try:
            while True:
                self._queue.put_nowait(None)
                await self._task
                await self._producer.flush()
                await asyncio.sleep(0)  # delivery callbacks run; one may keep a record for another attempt
                if self._kept:
                    await asyncio.sleep(RETRY_BACKOFF[0])
                    self._release_kept()
                if self._queue.empty():
                    return
                self._task = asyncio.create_task(self._run(), name="kafka-publisher")
        finally:
            if self._retrying is not None:
                self._retrying.cancel()
            if self.waiting_records:
                log.error("records not published at shutdown", extra={"records": self.waiting_records})

    async def _run(self) -> None:
        while (record := await self._queue.get()) is not None:
            await self._producer.usable()
            self.waiting_records -= 1
            self.waiting_bytes -= record.size
            started = time.monotonic()
            try:
                delivery = await self._producer.send(
                    record.topic, value=record.value, key=record.key, headers=record.headers, partition=record.partition
                )
            except Exception as error:
                self._not_taken(record, error)
                continue
            delivery.add_done_callback(functools.partial(self._delivered, record=record, started=started))

    def _delivered(self, delivery: asyncio.Future[Any], record: Outgoing, started: float) -> None:
        if delivery.cancelled():
            self._not_taken(record, None)
        elif (error := delivery.exception()) is not None:
            self._not_taken(record, error)
        elif self._latency is not None:
            self._latency.observe(time.monotonic() - started)

    def _not_taken(self, record: Outgoing, error: BaseException | None) -> None:
        """Kafka did not take ``record``: keep it for another attempt, offer it once more, or refuse it."""
        if record.durable and not_written(error):
            self._keep(record)
        elif not record.retried and isinstance(error, FATAL_PRODUCER_ERRORS):
            # The broken producer did not write it; the replacement gets one attempt (a station CALL
            # that fails again is refused, and the station sends it again).
            self.waiting_records += 1
            self.waiting_bytes += record.size
            self._queue.put_nowait(dataclasses.replace(record, retried=True))
        else:
            log.error("kafka did not take a record", extra={"topic": record.topic, "error": repr(error or "cancelled")})
            self._failed(record)

    def _keep(self, record: Outgoing) -> None:
        if self.waiting_records >= self._max_records or self.waiting_bytes + record.size > self._max_bytes:
            log.error("too many records wait for Kafka; record dropped", extra={"topic": record.topic})
            self._failed(record)
            return
        if not self._kept:
            log.warning("kafka does not take records; keeping them for another attempt", extra={"topic": record.topic})
        self.waiting_records += 1
        self.waiting_bytes += record.size
        self.kept_records += 1
        self._kept.setdefault((record.topic, record.key), deque()).append(record)

    async def _retry_kept(self) -> None:
        """Offer the kept records again, after a pause that doubles while Kafka keeps refusing."""
        pause = RETRY_BACKOFF[0]
        while True:
            await asyncio.sleep(pause)
            if not self._kept:
                pause = RETRY_BACKOFF[0]
                continue
            self._release_kept()
            pause = min(pause * 2, RETRY_BACKOFF[1])

    def _release_kept(self) -> None:
        """Queue the kept records again, key by key in their order; a record no longer ``current`` is dropped."""
        kept, self._kept = self._kept, {}
        self.kept_records = 0
        for records in kept.values():
            for record in records:
                if record.current is not None and not record.current():
                    self.waiting_records -= 1
                    self.waiting_bytes -= record.size
                    continue
                self._queue.put_nowait(record)

    def _failed(self, record: Outgoing) -> None:
        self._last_failure = time.monotonic()
        if self._errors is not None:
            self._errors.inc()
        if record.on_failure is not None:
            try:
                record.on_failure()
            except Exception:
                log.exception("handling a publish failure failed", extra={"topic": record.topic})
