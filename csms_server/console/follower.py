"""Feeds the console's model from Kafka without disturbing anyone.

It reads every partition of ``messages_in`` and ``messages_out`` by assignment, with no consumer
group (so the CSMS group never rebalances and no offsets are committed), starting ``history``
seconds back, and follows ``station_routes`` for the stations connected now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from ocpp_gw.cli import SHUTDOWN_TIMEOUT
from ocpp_gw.config import KafkaConfig
from ocpp_gw.core.envelope import EnvelopeError, decode_in_record, decode_out_record
from ocpp_gw.core.frames import Rejection
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.core.routing import Route
from ocpp_gw.kafka_clients import make_consumer
from ocpp_gw.kafka_topics import partitions_of
from ocpp_gw.routes import RouteBook

from .model import ConsoleModel

log = logging.getLogger("csms_server.console")


class Follower:
    """Reads the topics into ``model``; :meth:`start` returns once the route table is loaded."""

    def __init__(
        self, kafka: KafkaConfig, model: ConsoleModel, history_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.kafka = kafka
        self.model = model
        self.history_seconds = history_seconds
        self.clock = clock
        self.skipped = 0
        """Records that were not envelopes, or that the model could not take (counted, the first logged)."""
        self._routes = RouteBook(kafka, self._on_route)
        self._consumer: AIOKafkaConsumer = make_consumer(kafka, enable_auto_commit=False)
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None]:
        """The task reading the topics (after :meth:`start`); it ends only when cancelled or broken."""
        assert self._task is not None
        return self._task

    async def start(self) -> None:
        kafka = self.kafka
        await self._routes.start()
        await self._consumer.start()
        partitions = [
            TopicPartition(topic, number)
            for topic in (kafka.in_messages_topic, kafka.out_messages_topic)
            for number in await partitions_of(kafka, topic)
        ]
        since_ms = int((self.clock() - self.history_seconds) * 1000)
        # Asked before assigning: an assigned consumer's waiting fetch would hold the questions back.
        found = await self._consumer.offsets_for_times({partition: since_ms for partition in partitions})
        ends = await self._consumer.end_offsets(partitions)
        self._consumer.assign(partitions)
        for partition in partitions:
            offset = found.get(partition)
            self._consumer.seek(partition, ends[partition] if offset is None else offset.offset)
        self._task = asyncio.create_task(self._read(), name="console-follow")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in (self._consumer, self._routes):
            with contextlib.suppress(KafkaError, TimeoutError, OSError):
                await asyncio.wait_for(client.stop(), SHUTDOWN_TIMEOUT)

    def _on_route(self, station_id: str, route: Route | None, headers: dict[str, bytes]) -> None:
        self.model.observe_route(station_id, route)

    async def _read(self) -> None:
        in_topic = self.kafka.in_messages_topic
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=200)
            except KafkaError as error:
                log.warning("reading the message topics failed; trying again", extra={"error": repr(error)})
                await asyncio.sleep(0.5)
                continue
            arrived = [(consumed, partition.topic) for partition, records in batches.items() for consumed in records]
            arrived.sort(key=lambda pair: pair[0].timestamp)  # the two topics' records in the order they were written
            for consumed, topic in arrived:
                try:
                    if topic == in_topic:
                        record = decode_in_record(consumed.key, consumed.value, consumed.headers)
                        self.model.observe_in(record, consumed.timestamp)
                    else:
                        self._observe_out(consumed.key, consumed.value, consumed.timestamp)
                except EnvelopeError as error:
                    self._skip(topic, consumed.offset, error)
                except Exception as error:  # a record the model cannot take must not stop the console
                    self._skip(topic, consumed.offset, error)

    def _observe_out(self, key: bytes | None, value: bytes | None, timestamp: int) -> None:
        decoded = decode_out_record(key, value, self._version_of)
        if isinstance(decoded.frame, Rejection):
            raise EnvelopeError(decoded.frame.description)
        self.model.observe_out(decoded.station_id, decoded.frame, timestamp)

    def _version_of(self, station_id: str) -> OcppVersion | None:
        station = self.model.stations.get(station_id)
        try:
            return OcppVersion(station.protocol) if station is not None else None
        except ValueError:
            return None

    def _skip(self, topic: str, offset: int, error: Exception) -> None:
        self.skipped += 1
        if self.skipped == 1:
            log.warning(
                "skipping records the console cannot read (only the first is logged)",
                extra={"topic": topic, "offset": offset, "error": repr(error)},
            )
