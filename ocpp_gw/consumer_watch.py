"""Watches a Kafka consumer and has its owner replace it when it stops making progress.

Every second the watch reads the positions of the partitions the consumer owns and asks the bus,
through a probe client of its own (so a stuck consumer cannot hide the answer), for their end
offsets; :class:`~ocpp_gw.core.liveness.ProgressWatch` decides. A stalled consumer is logged,
counted and handed to ``replace``, which builds a fresh one (rejoining its group).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from .config import KafkaConfig
from .core.liveness import ProgressWatch
from .kafka_clients import make_consumer

log = logging.getLogger(__name__)

CHECK_INTERVAL = 1.0
"""Seconds between two checks of a consumer's progress."""

STOP_TIMEOUT = 5.0
"""Seconds a stalled consumer gets to stop before it is abandoned."""

LAG_TOLERANCE = 3.0
"""Seconds a consumer may be behind without moving before it no longer counts as passing frames (a record
that arrived just before a check is not yet read: that alone must not flip readiness)."""


class ConsumerWatch:
    """Follows ``current()``'s progress; awaits ``replace()`` when it stalls."""

    def __init__(
        self,
        name: str,
        config: KafkaConfig,
        current: Callable[[], AIOKafkaConsumer],
        replace: Callable[[], Awaitable[None]],
        replaced: Counter | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.rule = ProgressWatch(config.stall_seconds)
        self._current, self._replace, self._replaced = current, replace, replaced
        self._probe: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.replacements = 0

    @property
    def passing(self) -> bool:
        """The bus answered at the last check and the consumer has not been behind without moving for long."""
        lag = self.rule.lagging_for(time.monotonic())
        return self.rule.bus_answers and lag < LAG_TOLERANCE

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watch-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._probe is not None:
            with contextlib.suppress(KafkaError, TimeoutError):
                await asyncio.wait_for(self._probe.stop(), STOP_TIMEOUT)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            consumer = self._current()
            owned = sorted(consumer.assignment(), key=lambda tp: (tp.topic, tp.partition))
            positions = {tp: await self._position(consumer, tp) for tp in owned}
            ends = await self._ends(owned) if owned else {}
            if not self.rule.check(time.monotonic(), positions, ends):
                continue
            self.replacements += 1
            if self._replaced is not None:
                self._replaced.inc()
            log.error(
                "kafka consumer stopped making progress; replacing it",
                extra={"consumer": self.name, "stalled_seconds": self.config.stall_seconds, "positions": len(owned)},
            )
            try:
                await self._replace()
            except Exception:
                log.exception("replacing the consumer failed; trying again", extra={"consumer": self.name})
            self.rule.reset()

    async def _position(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
        try:
            position: int = await asyncio.wait_for(consumer.position(tp), CHECK_INTERVAL)
            return position
        except (KafkaError, TimeoutError, AssertionError):
            return self.rule.positions.get(tp, -1)

    async def _ends(self, owned: list[TopicPartition]) -> dict[TopicPartition, int] | None:
        try:
            if self._probe is None:
                probe = make_consumer(self.config, request_timeout_ms=self.config.request_timeout_ms)
                try:
                    await asyncio.wait_for(probe.start(), self.config.request_timeout_ms / 1000)
                except BaseException:
                    await stop_quietly(probe)
                    raise
                self._probe = probe
            ends: dict[TopicPartition, int] = await asyncio.wait_for(
                self._probe.end_offsets(owned), self.config.request_timeout_ms / 1000
            )
            return ends
        except (KafkaError, TimeoutError, OSError):
            return None


async def stop_quietly(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer that may be stuck, giving up after :data:`STOP_TIMEOUT`."""
    try:
        await asyncio.wait_for(consumer.stop(), STOP_TIMEOUT)
    except (KafkaError, TimeoutError, OSError) as error:
        log.warning("a replaced consumer did not stop cleanly", extra={"error": repr(error)})
