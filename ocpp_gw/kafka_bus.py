"""Kafka plumbing shared by the gateway and the CSMS: topics, producer settings, ordered publishing."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber, ProducerFenced, TopicAlreadyExistsError
from prometheus_client import Counter, Histogram

from .config import KafkaConfig

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


async def ensure_topics(config: KafkaConfig, *topics: str, compacted: tuple[str, ...] = ()) -> None:
    """Create the topics that do not exist yet, with the configured partitions and replicas."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=config.bootstrap_servers, request_timeout_ms=config.request_timeout_ms
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in topics if topic not in existing]
        if not missing:
            return
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        topic,
                        config.num_partitions,
                        config.replica_factor,
                        topic_configs={
                            "max.message.bytes": str(MAX_RECORD_BYTES),
                            **({"cleanup.policy": "compact"} if topic in compacted else {}),
                        },
                    )
                    for topic in missing
                ]
            )
            log.info("created topics", extra={"topics": missing, "partitions": config.num_partitions})
        except TopicAlreadyExistsError:
            pass
        await _wait_for_leaders(admin, missing)
    finally:
        await admin.close()


async def partitions_of(config: KafkaConfig, topic: str) -> list[int]:
    """The partition numbers of ``topic``; ``KafkaError`` if it does not exist."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=config.bootstrap_servers, request_timeout_ms=config.request_timeout_ms
    )
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0 or not described["partitions"]:
        raise KafkaError(f"topic {topic} does not exist")
    return sorted(p["partition"] for p in described["partitions"])


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topics: list[str], timeout: float = 30.0) -> None:
    """Wait until new topics' partitions all have leaders, so consumers see them when they join.

    A consumer that joins before a fresh topic shows up in metadata gets an empty assignment and
    would not notice the topic until its next metadata refresh.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(topics)
        ready = [
            t
            for t in described
            if t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
        ]
        if len(ready) == len(topics):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise KafkaError(f"topics {topics} have no partition leaders after {timeout:g} s")
        await asyncio.sleep(0.1)


HEALTH_WINDOW = 10.0
"""Seconds after a failed record during which the publisher counts as unhealthy (not ready)."""

METADATA_MAX_AGE_MS = 5000
"""Consumers refresh metadata this often, so added partitions and topics are picked up quickly."""


MAX_RECORD_BYTES = 4 * 2**20
"""Largest record the programs produce and create topics for: a station answer of the largest allowed
frame (``max_message_size``, 1 MiB by default) plus the CSMS call attached to it, with room to spare."""


def make_producer(config: KafkaConfig) -> AIOKafkaProducer:
    """An idempotent producer that waits for all in-sync replicas: nothing published twice or lost."""
    return AIOKafkaProducer(
        bootstrap_servers=config.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=config.linger_ms,
        max_request_size=MAX_RECORD_BYTES + 2**16,
        request_timeout_ms=config.request_timeout_ms,
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
    )


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
    """One record to publish, and what to do if Kafka does not take it."""

    topic: str
    key: bytes
    value: bytes | None
    headers: Headers
    on_failure: Callable[[], None] | None = None
    partition: int | None = None
    retried: bool = False


class OrderedPublisher:
    """Publishes records in exactly the order :meth:`publish` was called.

    Callers are synchronous (the protocol core's actions are carried out without awaiting), so
    one task hands the records to the producer; records of one station therefore keep their
    order on its partition. A record Kafka refuses or times out runs its ``on_failure``.
    """

    def __init__(
        self,
        producer: RecoveringProducer,
        latency: Histogram | None = None,
        errors: Counter | None = None,
        max_pending: int = 100_000,
    ) -> None:
        self._producer = producer
        self._queue: asyncio.Queue[Outgoing | None] = asyncio.Queue(max_pending)
        self._task: asyncio.Task[None] | None = None
        self._latency, self._errors = latency, errors
        self._last_failure = -1e9
        self.failures = 0

    @property
    def depth(self) -> int:
        """Records waiting to be handed to the producer."""
        return self._queue.qsize()

    @property
    def healthy(self) -> bool:
        """No record failed in the last ``HEALTH_WINDOW`` seconds."""
        return time.monotonic() - self._last_failure > HEALTH_WINDOW

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kafka-publisher")

    def publish(self, record: Outgoing) -> None:
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            log.error("publish queue full; record refused", extra={"topic": record.topic})
            self._failed(record)

    async def close(self) -> None:
        """Publish what is queued, then wait until Kafka has acknowledged all of it."""
        if self._task is None:
            return
        while True:
            await self._queue.put(None)
            await self._task
            await self._producer.flush()
            await asyncio.sleep(0)  # delivery callbacks run; one may put a record back for its retry
            if self._queue.empty():
                return
            self._task = asyncio.create_task(self._run(), name="kafka-publisher")

    async def _run(self) -> None:
        while (record := await self._queue.get()) is not None:
            await self._producer.usable()
            started = time.monotonic()
            try:
                delivery = await self._producer.send(
                    record.topic, value=record.value, key=record.key, headers=record.headers, partition=record.partition
                )
            except Exception as error:
                if not self._retry(record, error):
                    log.error("kafka refused a record", extra={"topic": record.topic, "error": repr(error)})
                    self._failed(record)
                continue
            delivery.add_done_callback(functools.partial(self._delivered, record=record, started=started))

    def _delivered(self, delivery: asyncio.Future[Any], record: Outgoing, started: float) -> None:
        if delivery.cancelled() or delivery.exception() is not None:
            if not delivery.cancelled() and self._retry(record, delivery.exception()):
                return
            error = "cancelled" if delivery.cancelled() else repr(delivery.exception())
            log.error("kafka did not acknowledge a record", extra={"topic": record.topic, "error": error})
            self._failed(record)
        elif self._latency is not None:
            self._latency.observe(time.monotonic() - started)

    def _retry(self, record: Outgoing, error: BaseException | None) -> bool:
        """Publish once more, on the replacement producer, a record the broken one did not write.

        The broker refused it (out-of-order sequence) or the producer never sent it, so it is not in
        Kafka and publishing it again cannot make a duplicate."""
        if record.retried or not isinstance(error, FATAL_PRODUCER_ERRORS):
            return False
        try:
            self._queue.put_nowait(dataclasses.replace(record, retried=True))
        except asyncio.QueueFull:
            return False
        return True

    def _failed(self, record: Outgoing) -> None:
        self.failures += 1
        self._last_failure = time.monotonic()
        if self._errors is not None:
            self._errors.inc()
        if record.on_failure is not None:
            try:
                record.on_failure()
            except Exception:
                log.exception("handling a publish failure failed", extra={"topic": record.topic})
