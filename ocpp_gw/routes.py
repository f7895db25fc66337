"""Tables kept in compacted topics: the station routes (and, in ``credential_store``, credentials).

Gateways keep it to pass on records for stations that moved, and to notice stale sockets; a CSMS
uses it to start calls (:func:`publish_to_station`). Any service can read the topic the same way:
key = station id, value = :class:`ocpp_gw.core.routing.Route` as JSON, a tombstone on disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from .config import KafkaConfig
from .consumer_watch import ConsumerWatch, stop_quietly
from .core.envelope import out_record
from .core.protocol import OcppVersion
from .core.routing import Route
from .kafka_clients import make_consumer
from .kafka_topics import partitions_of

log = logging.getLogger(__name__)

T = TypeVar("T")
RouteListener = Callable[[str, Route | None, dict[str, bytes]], None]


LOADING_POLL_MS = 10
"""How long a read waits for records while the table is still loading (then whether it is caught up)."""


class StationOffline(Exception):
    """The route table has no route for the station."""


class CompactedTable(Generic[T]):
    """Follows a compacted topic from its beginning and keeps the latest value of every key."""

    def __init__(
        self,
        config: KafkaConfig,
        topic: str,
        decode: Callable[[bytes], T],
        listener: Callable[[str, T | None, dict[str, bytes]], None] | None = None,
    ) -> None:
        self.config = config
        self.topic = topic
        self.entries: dict[str, T] = {}
        self.loaded = asyncio.Event()
        self._decode = decode
        self._listener = listener
        self._consumer = self._new_consumer()
        self._task: asyncio.Task[None] | None = None
        self._next: dict[TopicPartition, int] = {}
        """The next offset to read of every partition (where a replacement consumer goes on)."""
        self._on_end: Callable[[asyncio.Task[None]], None] | None = None
        self.watch = ConsumerWatch(topic, config, lambda: self._consumer, self._replace_consumer)

    def _new_consumer(self) -> AIOKafkaConsumer:
        return make_consumer(
            self.config,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=self.config.request_timeout_ms,
        )

    @property
    def task(self) -> asyncio.Task[None]:
        """The task following the topic (after :meth:`start`)."""
        assert self._task is not None
        return self._task

    def get(self, key: str) -> T | None:
        return self.entries.get(key)

    async def start(self, on_end: Callable[[asyncio.Task[None]], None] | None = None) -> None:
        """Start following the topic and return once everything already in it has been read.

        ``on_end`` is told if the following task ever ends by itself (it must not)."""
        self._on_end = on_end
        partitions = await partitions_of(self.config, self.topic)
        await self._consumer.start()
        assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        ends = await self._end_offsets(assigned)
        self._consumer.assign(assigned)
        await self._consumer.seek_to_beginning(*assigned)
        self._follow_in_task(ends)
        self.watch.start()
        loaded = asyncio.create_task(self.loaded.wait())
        done, _ = await asyncio.wait((loaded, self.task), return_when=asyncio.FIRST_COMPLETED)
        if self.task in done:
            loaded.cancel()
            self.task.result()

    def _follow_in_task(self, ends: dict[TopicPartition, int]) -> None:
        self._task = asyncio.create_task(self._follow(ends), name=f"follow-{self.topic}")
        if self._on_end is not None:
            self._task.add_done_callback(self._on_end)

    async def _replace_consumer(self) -> None:
        """Go on from where the stalled consumer was, with a new one."""
        self.task.cancel()
        await stop_quietly(self._consumer)
        self._consumer = self._new_consumer()
        await self._consumer.start()
        assigned = [TopicPartition(self.topic, p) for p in sorted(await partitions_of(self.config, self.topic))]
        ends = await self._end_offsets(assigned)
        self._consumer.assign(assigned)
        for tp in assigned:
            if tp in self._next:
                self._consumer.seek(tp, self._next[tp])
            else:
                await self._consumer.seek_to_beginning(tp)
        self._follow_in_task(ends)

    async def _end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The partitions' ends, asked before they are assigned: once assigned, the consumer's fetch
        waits at the broker for new records, and a broker answers one connection's requests in
        order, so the question would wait behind it for up to ``fetch_max_wait_ms`` (0.5 s of every
        start, measured)."""
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(partitions)
        return ends

    async def stop(self) -> None:
        await self.watch.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _follow(self, ends: dict[TopicPartition, int]) -> None:
        while True:
            if not self.loaded.is_set() and all(
                await asyncio.gather(*(self._caught_up(tp, end) for tp, end in ends.items()))
            ):
                self.loaded.set()
                log.info("table loaded", extra={"topic": self.topic, "entries": len(self.entries)})
            # While loading, look again soon: an empty or fully read topic must not hold the start up.
            batches = await self._consumer.getmany(timeout_ms=200 if self.loaded.is_set() else LOADING_POLL_MS)
            for tp, records in batches.items():
                for record in records:
                    self._apply(record.key, record.value, dict(record.headers or ()))
                self._next[tp] = records[-1].offset + 1

    async def _caught_up(self, tp: TopicPartition, end: int) -> bool:
        position: int = await self._consumer.position(tp)
        return position >= end

    def _apply(self, key: bytes | None, value: bytes | None, headers: dict[str, bytes]) -> None:
        if not key:
            return
        name = key.decode(errors="replace")
        entry: T | None = None
        if value is None:
            self.entries.pop(name, None)
        else:
            try:
                entry = self._decode(value)
            except ValueError as error:
                log.warning(
                    "skipping an unreadable record", extra={"topic": self.topic, "key": name, "error": str(error)}
                )
                return
            self.entries[name] = entry
        if self._listener is not None:
            try:
                self._listener(name, entry, headers)
            except Exception:
                log.exception("table listener failed", extra={"topic": self.topic, "key": name})


class RouteBook(CompactedTable[Route]):
    """The route of every connected station, from ``station_routes``."""

    def __init__(self, config: KafkaConfig, listener: RouteListener | None = None) -> None:
        super().__init__(config, config.routes_topic, Route.decode, listener)


async def publish_to_station(
    producer: AIOKafkaProducer,
    config: KafkaConfig,
    routes: RouteBook,
    station_id: str,
    frame: list[Any],
) -> Route:
    """Publish ``frame`` for ``station_id`` on the partition of its current route (for CSMS-started calls)."""
    route = routes.get(station_id)
    if route is None:
        raise StationOffline(station_id)
    await producer.send_and_wait(
        config.out_messages_topic,
        out_record(frame, OcppVersion(route.protocol)),
        key=station_id.encode(),
        partition=route.partition,
    )
    return route
