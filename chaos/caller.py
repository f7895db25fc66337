"""The CSMS side of the fault suite: CALLs to stations through Kafka, each one and its answer in a ledger.

Calls go out like ``csms-server call`` sends them (``messages_out``, the partition of the station's
route); answers come back on ``messages_in`` -- the station's own, or a CALLERROR the gateway wrote
(envelope ``origin`` "gateway"). A call Kafka did not take was never sent and is counted apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from ocpp_gw.config import KafkaConfig
from ocpp_gw.core.frames import load_json
from ocpp_gw.core.protocol import MessageType
from ocpp_gw.kafka_clients import make_consumer, make_producer
from ocpp_gw.kafka_topics import partitions_of
from ocpp_gw.routes import RouteBook, StationOffline, publish_to_station

from .ledger import Answer, Ledger

RNG = random.Random()
"""This module's own randomness (hypothesis, fuzzing in the same process, watches the global one)."""

MAX_CALLS_IN_PROGRESS = 200


class CsmsCaller:
    """Sends TriggerMessage CALLs at ``rate`` per second to stations ``targets()`` names."""

    def __init__(self, kafka: KafkaConfig, rate: float, targets: Callable[[], list[str]]) -> None:
        self.kafka, self.rate, self.targets = kafka, rate, targets
        self.ledger = Ledger()
        self.not_sent: Counter[str] = Counter()
        self.clock = asyncio.get_running_loop().time
        self.routes = RouteBook(kafka)
        self.producer = make_producer(kafka)
        self.consumer = make_consumer(kafka)
        self._sending = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._calls: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.routes.start()
        await self.producer.start()
        await self.consumer.start()
        topic = self.kafka.in_messages_topic
        partitions = [TopicPartition(topic, p) for p in await partitions_of(self.kafka, topic)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for partition in partitions:
            await self.consumer.position(partition)
        self._sending.set()
        self._tasks = [asyncio.create_task(self._send_loop()), asyncio.create_task(self._read_loop())]

    async def stop_sending(self) -> None:
        """No new calls; wait for the ones being published."""
        self._sending.clear()
        if self._calls:
            await asyncio.wait(self._calls)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for step in (self.producer.stop(), self.consumer.stop(), self.routes.stop()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(step, 15)

    async def _send_loop(self) -> None:
        while self._sending.is_set():
            await asyncio.sleep(RNG.expovariate(self.rate))
            stations = self.targets()
            if stations and len(self._calls) < MAX_CALLS_IN_PROGRESS and self._sending.is_set():
                task = asyncio.create_task(self._call(RNG.choice(stations)))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)

    async def _call(self, station_id: str) -> None:
        message_id = str(uuid.uuid4())
        frame: list[Any] = [MessageType.CALL, message_id, "TriggerMessage", {"requestedMessage": "Heartbeat"}]
        self.ledger.sent(message_id, self.clock())
        try:
            await publish_to_station(self.producer, self.kafka, self.routes, station_id, frame)
            self.ledger.accepted(message_id, self.clock())
        except StationOffline:
            self.ledger.withdraw(message_id)
            self.not_sent["station offline"] += 1
        except KafkaError as error:
            self.ledger.withdraw(message_id)
            self.not_sent[type(error).__name__] += 1

    async def _read_loop(self) -> None:
        while True:
            try:
                batches = await self.consumer.getmany(timeout_ms=200)
            except KafkaError:
                continue
            for records in batches.values():
                for record in records:
                    self._record(record.value)

    def _record(self, value: bytes | None) -> None:
        document = load_json(value) if value else None
        if not isinstance(document, dict) or document.get("message_type") not in (
            MessageType.CALLRESULT,
            MessageType.CALLERROR,
        ):
            return
        message_id = document.get("message_id")
        if isinstance(message_id, str) and message_id in self.ledger.calls:
            by = Answer.GATEWAY if document.get("origin") == "gateway" else Answer.PEER
            self.ledger.answered(message_id, by, self.clock())
