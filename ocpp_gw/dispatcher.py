"""The ``messages_out`` dispatcher room: the CSMS's records for stations, read and acted on.

This gateway's consumer-group member reads its partitions of ``messages_out``. Each record is
delivered to the station's link here, passed on to the partition of the gateway the route table
names, or, for a station connected nowhere, answered with a CALLERROR (a CALL) or dropped (the
rest); the routing decision is the core's (:func:`ocpp_gw.core.routing.route_out_record`). Offsets
are committed right after CSMS CALLs are passed on, so a gateway taking over after a crash delivers
again only what came after. A consumer that stops making progress is replaced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from .config import KafkaConfig
from .consumer_watch import ConsumerWatch, stop_quietly
from .core.actions import pending_call, refuse_csms_call
from .core.envelope import EnvelopeError, Origin, decode_out_record
from .core.frames import Call
from .core.protocol import Fault, OcppVersion
from .core.routing import MAX_HOPS, Delivery, route_out_record
from .csms_bus import CsmsBus
from .kafka_clients import make_consumer
from .metrics import GatewayMetrics
from .registry import Registry
from .routes import RouteBook

log = logging.getLogger("ocpp_gw")


class _Assignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the dispatcher which ``messages_out`` partitions this instance owns."""

    def __init__(self, assigned: Callable[[list[int]], None]) -> None:
        self.assigned = assigned

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.assigned(sorted(tp.partition for tp in assigned))


class Dispatcher:
    """Reads ``messages_out`` for one gateway instance."""

    def __init__(
        self,
        kafka: KafkaConfig,
        gateway_id: str,
        registry: Registry,
        routes: RouteBook,
        bus: CsmsBus,
        metrics: GatewayMetrics,
        assigned: Callable[[list[int]], None],
        on_end: Callable[[asyncio.Task[None]], None],
    ) -> None:
        self.kafka, self.gateway_id, self.registry, self.routes = kafka, gateway_id, registry, routes
        self.bus, self.metrics, self.assigned, self.on_end = bus, metrics, assigned, on_end
        self.loop = asyncio.get_running_loop()
        self.last_offsets: dict[int, int] = {}
        self.consumer = self._new_consumer()
        self.consuming: asyncio.Task[None] | None = None
        self.watch = ConsumerWatch(
            "messages_out", kafka, lambda: self.consumer, self.replace, metrics.consumers_replaced
        )

    def _new_consumer(self) -> AIOKafkaConsumer:
        return make_consumer(
            self.kafka,
            group_id=self.kafka.ocpp_gw_consumer_group,
            group_instance_id=self.gateway_id,
            auto_offset_reset="latest",
            enable_auto_commit=True,
            auto_commit_interval_ms=1000,
            request_timeout_ms=self.kafka.request_timeout_ms,
        )

    async def start(self) -> None:
        """Join the ``messages_out`` group and read it in a task that must never end while the gateway runs."""
        await self.consumer.start()
        self.consumer.subscribe([self.kafka.out_messages_topic], listener=_Assignment(self.assigned))
        self.consuming = asyncio.create_task(self._consume(), name="consume-messages_out")
        self.consuming.add_done_callback(self.on_end)

    async def replace(self) -> None:
        """A consumer that stopped making progress is left behind; a new one rejoins the group (same
        static member id, so it takes over the partitions at once)."""
        if self.consuming is not None:
            self.consuming.cancel()
        await stop_quietly(self.consumer)
        self.consumer = self._new_consumer()
        await self.start()

    async def fix_positions(self) -> None:
        """A new group starts at the end of each partition; fix that position now, so that nothing
        published after the gateway says it is ready can fall before it."""
        for tp in self.consumer.assignment():
            await self.consumer.position(tp)

    def stop_reading(self) -> None:
        if self.consuming is not None:
            self.consuming.cancel()

    def lag(self) -> int:
        """Records not read yet on the owned partitions."""
        lag = 0
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                lag += max(0, highwater - self.last_offsets.get(tp.partition, highwater - 1) - 1)
        return lag

    async def _consume(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=500)
            calls = False
            for records in batches.values():
                for record in records:
                    try:
                        calls = self.deliver(record) or calls
                    except Exception:
                        self.metrics.records_in.labels("failed").inc()
                        log.exception(
                            "failed to handle a messages_out record",
                            extra={"partition": record.partition, "offset": record.offset},
                        )
            if calls:
                await self._commit_now()

    async def _commit_now(self) -> None:
        """Commit at once after passing on CSMS CALLs (auto-commit runs every second)."""
        try:
            await self.consumer.commit()
        except KafkaError as error:
            log.warning("offset commit failed; the next one covers it", extra={"error": repr(error)})

    def deliver(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Act on one ``messages_out`` record; True when it carried a CSMS CALL."""
        self.last_offsets[record.partition] = record.offset
        try:
            out = decode_out_record(record.key, record.value, self._version_of)
        except EnvelopeError as error:
            self.metrics.records_in.labels("invalid").inc()
            log.warning(
                "invalid messages_out record",
                extra={"error": str(error), "partition": record.partition, "offset": record.offset},
            )
            return False
        is_call = isinstance(out.frame, Call)
        link = self.registry.get(out.station_id)
        now = self.loop.time()
        hops_header = dict(record.headers or ()).get("hops", b"0")
        hops = int(hops_header) if hops_header.isdigit() else MAX_HOPS
        delivery, partition = route_out_record(
            link is not None, self.routes.get(out.station_id), self.gateway_id, record.partition, hops
        )
        if delivery is Delivery.DELIVER and link is not None:
            self.metrics.records_in.labels("delivered").inc()
            link.apply(link.session.csms_frame(out.frame, now))
            return is_call
        if delivery is Delivery.FORWARD and partition is not None:
            self.metrics.records_in.labels("forwarded").inc()
            headers = [(k, v) for k, v in record.headers or () if k != "hops"] + [("hops", str(hops + 1).encode())]
            self.bus.forward(record.key or b"", record.value, headers, partition)
            return is_call
        self.metrics.records_in.labels("unroutable").inc()
        if isinstance(out.frame, Call) and not out.frame.send:
            version = out.protocol or OcppVersion.V201
            origin = Origin(out.station_id, version, self.gateway_id)
            call = pending_call(out.frame, now)
            self.bus.carry_out(origin, refuse_csms_call(version, call, Fault.UNAVAILABLE, "station is not connected"))
        else:
            log.info("frame for a station not connected here dropped", extra={"station_id": out.station_id})
        return is_call

    def _version_of(self, station_id: str) -> OcppVersion | None:
        link = self.registry.get(station_id)
        return link.origin.version if link else None
