"""The gateway process: station WebSockets on one side, Kafka on the other, the core in between.

This module only moves bytes and runs timers. Every decision (what to forward, what to refuse,
when a call has timed out) is made by :class:`ocpp_gw.core.session.StationSession`; the
adapter carries out the actions it returns, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from .cli import bounded
from .config import Config
from .consumer_watch import ConsumerWatch, stop_quietly
from .core.envelope import EnvelopeError, Origin, decode_out_record, frame_record, lifecycle_record
from .core.frames import Call, load_json
from .core.protocol import Fault, MessageType, OcppVersion
from .core.routing import (
    MAX_HOPS,
    Delivery,
    HeldStation,
    Route,
    RouteVerdict,
    reply_partition,
    route_out_record,
)
from .core.session import (
    Action,
    CloseStation,
    Notice,
    PendingCall,
    PublishToCsms,
    SendToStation,
    SessionLimits,
    StationSession,
    pending_call,
    refuse_csms_call,
)
from .core.validation import PayloadValidator, StrictMode, StrictPolicy
from .credential_store import CredentialStore, FileCredentials
from .handshake import Handshake, station_id_from_path
from .kafka_clients import make_consumer
from .kafka_topics import ensure_topics
from .metrics import MESSAGE_TYPES, GatewayMetrics, close_code_label
from .publisher import OrderedPublisher, Outgoing, RecoveringProducer
from .routes import RouteBook
from .schemas import load_ocpp_schemas
from .status import StatusServer
from .tls import TlsContexts

log = logging.getLogger("ocpp_gw")

REPLACE_TIMEOUT = 15.0
"""Seconds a new connection waits for the one it replaces to be wound up."""

SEND_QUEUE_SIZE = 1000
"""Frames waiting to be written to one station; a station that stops reading is closed beyond it
(or beyond ``send_queue_bytes``, whichever comes first)."""


def correlation_id(origin: Origin, message_id: str) -> str:
    """Follows one call through gateway, Kafka (header ``correlation_id``) and CSMS logs.

    Message ids are unique per station and sender (OCPP-J §4.1.4), so station id and message id
    name a call everywhere without any state. The id is the station's choice, so characters that
    are not printable (CR, LF, ...) are written as escapes: a header or a log line cannot be forged.
    """
    if not message_id.isprintable():
        message_id = message_id.encode("unicode_escape").decode("ascii")
    return f"{origin.station_id}/{message_id}"


def _metric_message_type(text: str) -> int:
    """The message type of compact OCPP-J text (``[3,...``), for a metric's label only."""
    head = text[1:3].strip()
    return int(head[0]) if head[:1].isdigit() else 0


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


LISTEN_BACKLOG = 4096
"""Connections the kernel queues before the gateway accepts them (capped by net.core.somaxconn): when a
fleet reconnects at once, a short queue drops SYNs and stations wait for their retransmission."""


class StationConnection:
    """One station's socket, its session and the writer that keeps socket writes off the hot path."""

    def __init__(self, websocket: ServerConnection, session: StationSession, origin: Origin) -> None:
        self.websocket = websocket
        self.session = session
        self.origin = origin
        self.route = HeldStation(uuid.uuid4().hex)
        self.connected_at = utc_now()
        self.outbox: asyncio.Queue[str] = asyncio.Queue(SEND_QUEUE_SIZE)
        self.outbox_bytes = 0
        """Characters of the frames in ``outbox`` (a bound on memory, not on the wire's bytes)."""
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at: float | None = None
        self.closing: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        """Set once the connection's end has been handled (its calls answered, its event published)."""
        self.writer = asyncio.create_task(self._write(), name=f"writer-{origin.station_id}")

    async def _write(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                text = await self.outbox.get()
                self.outbox_bytes -= len(text)
                await self.websocket.send(text)

    def close(self, code: int, reason: str) -> None:
        """Close the socket once, from synchronous code."""
        if self.closing is None:
            self.closing = asyncio.create_task(self.websocket.close(code, reason))


class _Assignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tracks which ``messages_out`` partitions this instance owns."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.gateway.partitions_changed(sorted(tp.partition for tp in assigned))


class Gateway:
    """Accepts stations, bridges their frames to Kafka and delivers the CSMS's frames back."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.gw = config.ocpp_gateway
        self.gateway_id = self.gw.gateway_id
        self.versions = tuple(OcppVersion(name) for name in self.gw.subprotocols)
        self.limits = SessionLimits(
            csms_response_timeout=self.gw.csms_response_timeout,
            station_response_timeout=self.gw.station_response_timeout,
            csms_queue_size=self.gw.csms_queue_size,
            message_rate=self.gw.station_message_rate,
            message_burst=self.gw.station_message_burst,
            close_when_limited=self.gw.rate_limit_action == "close",
            max_frame_size=self.gw.max_message_size,
        )
        self.validator = self._strict_mode()
        self.connections: dict[str, StationConnection] = {}
        self.partitions: list[int] = []
        self.assigned = asyncio.Event()
        self.routes = RouteBook(config.kafka, self._on_route_record)
        self.credentials = CredentialStore(
            FileCredentials(self.gw.credentials_file) if self.gw.credentials_file else None,
            config.kafka,
            self.gw.credentials_topic,
            on_change=self._credentials_changed,
        )
        needs_tls = any(profile >= 2 for _, _, profile in self.gw.listeners)
        self.tls = TlsContexts(self.gw.tls_cert_file, self.gw.tls_key_file, self.gw.tls_ca_file) if needs_tls else None
        self.failed = False
        self.draining = False
        self.loop = asyncio.get_running_loop()
        self.metrics = GatewayMetrics()
        self.producer = RecoveringProducer(config.kafka)
        self.publisher = OrderedPublisher(
            self.producer,
            self.metrics.produce_latency,
            self.metrics.produce_errors,
            config.kafka.unsent_max_records,
            config.kafka.unsent_max_bytes,
        )
        self.handshake = Handshake(
            self.gw,
            self.credentials,
            self.metrics,
            lambda: bool(self.partitions) and not self.draining,
            lambda: len(self.connections),
            self.loop.time,
        )
        self.last_offsets: dict[int, int] = {}
        self.consumer = self._new_consumer()
        self.consuming: asyncio.Task[None] | None = None
        self.watch = ConsumerWatch(
            "messages_out", config.kafka, lambda: self.consumer, self._replace_consumer, self.metrics.consumers_replaced
        )
        self._stop: asyncio.Event | None = None
        self._watch_gauges()

    def _new_consumer(self) -> AIOKafkaConsumer:
        return make_consumer(
            self.config.kafka,
            group_id=self.config.kafka.ocpp_gw_consumer_group,
            group_instance_id=self.gateway_id,
            auto_offset_reset="latest",
            enable_auto_commit=True,
            auto_commit_interval_ms=1000,
            request_timeout_ms=self.config.kafka.request_timeout_ms,
        )

    async def _start_consuming(self) -> None:
        """Join the ``messages_out`` group and read it in a task that must never end while the gateway runs."""
        await self.consumer.start()
        self.consumer.subscribe([self.config.kafka.out_messages_topic], listener=_Assignment(self))
        self.consuming = asyncio.create_task(self._consume(), name="consume-messages_out")
        self.consuming.add_done_callback(self._worker_ended)

    async def _replace_consumer(self) -> None:
        """A consumer that stopped making progress is left behind; a new one rejoins the group (same
        static member id, so it takes over the partitions at once)."""
        if self.consuming is not None:
            self.consuming.cancel()
        await stop_quietly(self.consumer)
        self.consumer = self._new_consumer()
        await self._start_consuming()

    # Start-up and shutdown.

    def _strict_mode(self) -> PayloadValidator | None:
        gw = self.gw
        policy = StrictPolicy(
            StrictMode(gw.strict_station_calls),
            StrictMode(gw.strict_station_results),
            StrictMode(gw.strict_csms_calls),
            StrictMode(gw.strict_csms_results),
            gw.strict_allow_additional_properties,
            gw.strict_lenient_formats,
        )
        if not policy.active:
            return None
        started = time.monotonic()
        validator = PayloadValidator(load_ocpp_schemas(self.versions), policy)
        log.info(
            "strict mode",
            extra={
                "station_calls": gw.strict_station_calls,
                "station_results": gw.strict_station_results,
                "csms_calls": gw.strict_csms_calls,
                "csms_results": gw.strict_csms_results,
                "allow_additional_properties": gw.strict_allow_additional_properties,
                "lenient_formats": gw.strict_lenient_formats,
                "compile_seconds": round(time.monotonic() - started, 2),
            },
        )
        return validator

    def _watch_gauges(self) -> None:
        m = self.metrics
        m.csms_queue.set_function(lambda: sum(len(c.session.csms_queue) for c in self.connections.values()))
        m.publish_queue.set_function(lambda: self.publisher.depth)
        m.unsent_records.set_function(lambda: self.publisher.waiting_records)
        m.unsent_bytes.set_function(lambda: self.publisher.waiting_bytes)
        m.kept_records.set_function(lambda: self.publisher.kept_records)
        m.consumer_lag.set_function(self._consumer_lag)
        m.partitions.set_function(lambda: len(self.partitions))
        m.ready.set_function(lambda: int(self.ready()))
        m.draining.set_function(lambda: int(self.draining))

    def _consumer_lag(self) -> int:
        lag = 0
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                lag += max(0, highwater - self.last_offsets.get(tp.partition, highwater - 1) - 1)
        return lag

    def ready(self) -> bool:
        """Ready for stations: owns a partition, not draining, and frames pass both ways (Kafka takes
        the records, the bus answers and the ``messages_out`` consumer keeps up)."""
        return bool(self.partitions) and not self.draining and self.publisher.healthy and self.watch.passing

    async def run(self, stop: asyncio.Event) -> None:
        async with StatusServer(self.gw.status_host, self.gw.status_port, self.metrics.registry, self.ready):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        kafka = self.config.kafka
        self._stop = stop
        compacted = tuple(t for t in (kafka.routes_topic, self.gw.credentials_topic) if t)
        await ensure_topics(kafka, kafka.in_messages_topic, kafka.out_messages_topic, *compacted, compacted=compacted)
        await self.producer.start()
        self.publisher.start()
        await self.routes.start(self._worker_ended)
        await self.credentials.start(self._worker_ended)
        watching = None
        if self.tls is not None:
            watching = asyncio.create_task(self.tls.watch(), name="watch-tls-files")
            self.loop.add_signal_handler(signal.SIGHUP, self.tls.reload)
        await self._start_consuming()
        self.watch.start()
        try:
            await self._wait_assignment(stop)
            if stop.is_set():
                return
            async with contextlib.AsyncExitStack() as listeners:
                servers = [await listeners.enter_async_context(self._listen(*spec)) for spec in self.gw.listeners]
                self._log_ready(servers)
                await stop.wait()
                await self._drain()
                for server in servers:
                    server.close()
                for server in servers:
                    await server.wait_closed()
        finally:
            if watching is not None:
                watching.cancel()
            await self.watch.stop()
            if self.consuming is not None:
                self.consuming.cancel()
            await bounded(self.publisher.close(), "flush records")
            await bounded(self.producer.stop(), "stop producer")
            await bounded(self.consumer.stop(), "leave consumer group")
            await bounded(self.routes.stop(), "stop following routes")
            await bounded(self.credentials.stop(), "stop following credentials")
            log.info("gateway stopped")

    async def _drain(self) -> None:
        """Refuse new stations, let calls in flight finish, then close stations at ``drain_rate`` per second."""
        self.draining = True
        deadline = self.loop.time() + self.gw.drain_timeout
        log.info("draining", extra={"stations": len(self.connections), "drain_rate": self.gw.drain_rate})
        in_flight_until = self.loop.time() + max(self.gw.csms_response_timeout, self.gw.station_response_timeout) + 1
        while self.loop.time() < min(deadline, in_flight_until) and any(
            c.session.station_call or c.session.csms_call for c in self.connections.values()
        ):
            await asyncio.sleep(0.05)
        for connection in list(self.connections.values()):
            if self.loop.time() >= deadline:
                break
            connection.close(1012, "gateway restarting; reconnect")
            await asyncio.sleep(1 / self.gw.drain_rate)
        finishing = [c.finished.wait() for c in list(self.connections.values())]
        if finishing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*finishing), max(0.1, deadline - self.loop.time()))
        log.info("drained", extra={"stations_left": len(self.connections)})

    def _worker_ended(self, task: asyncio.Task[None]) -> None:
        """A Kafka loop must never end while the gateway runs: if one does, stop so it gets restarted."""
        stop = self._stop
        if task.cancelled() or stop is None or stop.is_set():
            return
        log.critical("%s ended; stopping the gateway", task.get_name(), exc_info=task.exception())
        self.failed = True
        stop.set()

    async def _wait_assignment(self, stop: asyncio.Event) -> None:
        """Open the listener only after the first assignment (stations are refused while it is empty)."""
        waiters = [asyncio.ensure_future(e.wait()) for e in (self.assigned, stop)]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        for tp in self.consumer.assignment():
            # A new group starts at the end of each partition; fix that position now, so that
            # nothing published after the gateway says it is ready can fall before it.
            await self.consumer.position(tp)

    def _listen(self, host: str, port: int, profile: int) -> Any:
        if profile == 0:
            log.warning(
                "SECURITY PROFILE 0: stations on this listener are not authenticated; for development only."
                " Stations any credential store knows are refused here",
                extra={"host": host, "port": port},
            )
        if profile == 3 and not self.gw.operator_name:
            log.warning(
                "[ocpp_gateway] operator_name is not set: the organization (O) of station certificates is not"
                " checked on this profile 3 listener (OCPP 2.0.1 part 2 A00.FR.404 asks for the check)",
                extra={"host": host, "port": port},
            )
        tls = self.tls.for_profile(profile) if self.tls is not None else None
        return serve(
            self._handle,
            host,
            port,
            compression="deflate" if self.gw.compression else None,
            open_timeout=self.gw.handshake_timeout,
            ssl=tls,
            ssl_handshake_timeout=self.gw.handshake_timeout if tls is not None else None,
            select_subprotocol=self.handshake.select_subprotocol,
            process_request=functools.partial(self.handshake.check_request, profile),
            create_connection=self.handshake.connection_class,
            max_size=self.gw.max_message_size,
            ping_interval=self.gw.ping_interval,
            ping_timeout=self.gw.ping_timeout,
            server_header=None,
            backlog=LISTEN_BACKLOG,
        )

    def _log_ready(self, servers: list[Server]) -> None:
        ports = sorted({sock.getsockname()[1] for server in servers for sock in server.sockets})
        log.info(
            "gateway ready" if self.partitions else "gateway listening, not ready: no partition",
            extra={
                "gateway_id": self.gateway_id,
                "ports": ports,
                "listeners": [f"{h}:{p}/{profile}" for h, p, profile in self.gw.listeners],
                "subprotocols": list(self.gw.subprotocols),
            },
        )

    # The WebSocket side.

    async def _handle(self, websocket: ServerConnection) -> None:
        self.handshake.opened(websocket)
        station_id = station_id_from_path(websocket.request.path if websocket.request else "")
        assert station_id is not None
        host, port = websocket.remote_address[:2]
        remote = f"{host}:{port}"
        context = {"station_id": station_id, "remote_address": remote}
        if websocket.subprotocol is None:
            self.metrics.refused.labels("no_subprotocol").inc()
            log.warning("refused: no supported OCPP subprotocol offered", extra=context)
            await websocket.close(1002, "no supported OCPP subprotocol offered")
            return
        version = OcppVersion(websocket.subprotocol)
        previous = self.connections.get(station_id)
        if previous is not None and self.gw.duplicate_connection == "reject":
            self.metrics.refused.labels("duplicate").inc()
            log.warning("refused: station already connected", extra=context)
            await websocket.close(1008, "station is already connected")
            return
        origin = Origin(station_id, version, self.gateway_id)
        connection = StationConnection(
            websocket, StationSession(station_id, version, self.limits, self.validator), origin
        )
        self.connections[station_id] = connection
        self.metrics.opened.labels(version.value).inc()
        self.metrics.connected.labels(version.value).inc()
        try:
            if previous is not None:
                log.warning("replacing the existing connection of the station", extra=context)
                await previous.websocket.close(1000, "replaced by a newer connection")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(previous.finished.wait(), REPLACE_TIMEOUT)
            self._publish_lifecycle(origin, "connected", remote_address=remote)
            self._publish_route(connection)
            log.info("station connected", extra={**context, "protocol": version.value})
            session = connection.session
            async for message in websocket:
                now = self.loop.time()
                if isinstance(message, str):
                    self._apply(connection, session.station_text(message, now))
                else:
                    self._apply(connection, session.station_binary(now))
        except ConnectionClosed:
            pass
        finally:
            await self._closed(connection, context)

    async def _closed(self, connection: StationConnection, context: dict[str, str]) -> None:
        """Answer the connection's pending calls, then forget it; the forgetting happens whatever fails."""
        websocket = connection.websocket
        try:
            self._apply(connection, connection.session.close(self.loop.time()))
        except Exception:
            log.exception("failed to answer the calls of a closed connection", extra=context)
        finally:
            if connection.timer is not None:
                connection.timer.cancel()
            connection.writer.cancel()
            if self.connections.get(connection.origin.station_id) is connection:
                del self.connections[connection.origin.station_id]
            connection.finished.set()
        closing = websocket.protocol.close_rcvd or websocket.protocol.close_sent
        code, reason = (closing.code, closing.reason) if closing is not None else (1006, "")
        self.metrics.connected.labels(connection.origin.version.value).dec()
        self.metrics.closed.labels(close_code_label(code)).inc()
        self._publish_lifecycle(connection.origin, "disconnected", close_code=code, close_reason=reason)
        if not connection.route.superseded:
            self._publish_route_tombstone(connection)
        log.info("station disconnected", extra={**context, "close_code": code, "close_reason": reason})

    # Carrying out the core's actions.

    def _apply(self, connection: StationConnection, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendToStation):
                self._send(connection, action)
            elif isinstance(action, PublishToCsms):
                self._publish_frame(connection.origin, action)
            elif isinstance(action, CloseStation):
                connection.close(action.code, action.reason)
            else:
                self._notice(connection.origin, action)
        self._arm_timer(connection)

    def _send(self, connection: StationConnection, action: SendToStation) -> None:
        text = action.text
        if action.generated:
            self.metrics.callerrors.labels(load_json(text)[2]).inc()
        else:
            self.metrics.frames.labels("csms_to_station", MESSAGE_TYPES.get(_metric_message_type(text), "?")).inc()
        if connection.closing is not None:
            return
        if connection.outbox_bytes + len(text) <= self.gw.send_queue_bytes and not connection.outbox.full():
            connection.outbox.put_nowait(text)
            connection.outbox_bytes += len(text)
            return
        self.metrics.events.labels("send_queue_full").inc()
        log.warning(
            "station send queue full (it does not read, or floods calls); closing",
            extra={"station_id": connection.origin.station_id, "queued_bytes": connection.outbox_bytes},
        )
        connection.close(1008, "send queue full")

    def _publish_frame(self, origin: Origin, action: PublishToCsms) -> None:
        request = action.request
        reply = reply_partition(origin.station_id, self.partitions)
        value = frame_record(
            origin,
            utc_now(),
            reply_partition=reply,
            frame_text=action.text,
            message_type=action.message_type,
            message_id=action.message_id,
            action=action.action,
            source=action.origin,
            request_text=request.text if request else None,
            late=action.late,
        )
        on_failure = None
        durable = True
        connection = self.connections.get(origin.station_id)
        if action.origin == "station" and action.message_type == MessageType.CALL and connection is not None:
            # A station CALL Kafka does not take is refused at once; the station sends it again.
            on_failure = lambda: self._publish_failed(connection, action.message_id)  # noqa: E731
            durable = False
        elif action.origin == "station" and request is not None:
            on_failure = lambda: self._answer_unpublishable(origin, request)  # noqa: E731
        if action.origin == "station":
            self.metrics.frames.labels("station_to_csms", MESSAGE_TYPES.get(action.message_type, "?")).inc()
        else:
            self.metrics.callerrors.labels(load_json(action.text)[2]).inc()
        self.publisher.publish(
            Outgoing(
                self.config.kafka.in_messages_topic,
                origin.station_id.encode(),
                value,
                [
                    *origin.headers("frame", reply),
                    ("correlation_id", correlation_id(origin, action.message_id).encode()),
                ],
                on_failure,
                durable=durable,
            )
        )

    def _publish_lifecycle(self, origin: Origin, kind: str, **details: object) -> None:
        reply = reply_partition(origin.station_id, self.partitions)
        value = lifecycle_record(origin, utc_now(), kind, reply, **details)
        self.publisher.publish(
            Outgoing(
                self.config.kafka.in_messages_topic, origin.station_id.encode(), value, origin.headers(kind, reply)
            )
        )

    # Routes and partitions.

    def _publish_route(self, connection: StationConnection) -> None:
        partition = reply_partition(connection.origin.station_id, self.partitions)
        if partition is None:
            return
        origin = connection.origin
        route = Route(
            origin.station_id,
            self.gateway_id,
            partition,
            origin.version.value,
            connection.route.connection_id,
            connection.connected_at,
        )
        self.publisher.publish(
            Outgoing(
                self.config.kafka.routes_topic,
                origin.station_id.encode(),
                route.encode(),
                self._route_headers(connection),
                current=lambda: self._route_current(connection),
            )
        )

    def _route_current(self, connection: StationConnection) -> bool:
        """A route kept for another attempt is still wanted while its connection is the station's here."""
        held = self.connections.get(connection.origin.station_id) is connection
        return held and not connection.route.superseded

    def _publish_route_tombstone(self, connection: StationConnection) -> None:
        station_id = connection.origin.station_id
        self.publisher.publish(
            Outgoing(
                self.config.kafka.routes_topic,
                station_id.encode(),
                None,
                self._route_headers(connection),
                # A newer connection of the station here has published its own route since.
                current=lambda: station_id not in self.connections,
            )
        )

    def _route_headers(self, connection: StationConnection) -> list[tuple[str, bytes]]:
        return [("gateway_id", self.gateway_id.encode()), ("connection_id", connection.route.connection_id.encode())]

    def _on_route_record(self, station_id: str, route: Route | None, headers: dict[str, bytes]) -> None:
        connection = self.connections.get(station_id)
        if connection is None:
            return
        tombstone_of = headers.get("connection_id", b"").decode(errors="replace") if route is None else None
        verdict = connection.route.on_route_record(route, tombstone_of)
        if verdict is RouteVerdict.CLOSE_STALE:
            self.metrics.events.labels("stale_connection_closed").inc()
            log.warning(
                "station connected to another gateway; closing the stale connection here",
                extra={"station_id": station_id, "other_gateway": route.gateway_id if route else None},
            )
            connection.close(1000, "replaced by a newer connection on another gateway")
        elif verdict is RouteVerdict.REPUBLISH:
            self.metrics.events.labels("route_republished").inc()
            self._publish_route(connection)

    def partitions_changed(self, partitions: list[int]) -> None:
        """A rebalance gave this instance ``partitions``: readiness and every route follow."""
        changed = partitions != self.partitions
        self.partitions = partitions
        self.metrics.rebalances.inc()
        self.assigned.set()
        if not partitions:
            for connection in list(self.connections.values()):
                connection.close(1012, "gateway lost its partitions; reconnect")
            log.error(
                "this gateway owns no messages_out partition and refuses stations: are there more gateway "
                "instances than partitions of the topic? Add partitions or remove instances",
                extra={"topic": self.config.kafka.out_messages_topic, "partitions": []},
            )
            return
        log.info("messages_out partitions assigned", extra={"partitions": partitions})
        if changed:
            for connection in self.connections.values():
                self._publish_route(connection)

    def _publish_failed(self, connection: StationConnection, message_id: str) -> None:
        if self.connections.get(connection.origin.station_id) is connection:
            self._apply(connection, connection.session.publish_failed(message_id, self.loop.time()))

    def _answer_unpublishable(self, origin: Origin, request: PendingCall) -> None:
        """Kafka refused the station's answer (too large, say): the CSMS gets a small CALLERROR instead."""
        description = "the station's answer could not be published"
        for action in refuse_csms_call(origin.version, request, Fault.INTERNAL, description):
            if isinstance(action, PublishToCsms):
                self._publish_frame(origin, action)
            elif isinstance(action, Notice):
                self._notice(origin, action)

    def _notice(self, origin: Origin, notice: Notice) -> None:
        self.metrics.events.labels(notice.event).inc()
        if notice.event in ("station_call_timeout", "csms_call_timeout"):
            self.metrics.timeouts.labels(notice.event.removesuffix("_timeout")).inc()
        if notice.quiet:
            return
        extra: dict[str, object] = {
            "station_id": origin.station_id,
            "gateway_id": self.gateway_id,
            "message_id": notice.message_id,
            "correlation_id": correlation_id(origin, notice.message_id),
            "detail": notice.detail,
        }
        if notice.suppressed:
            extra["suppressed"] = notice.suppressed
        log.warning(notice.event.replace("_", " "), extra=extra)

    def _credentials_changed(self, station_id: str) -> None:
        """A station's credentials were revoked or changed: its connection here ends now, and it must
        connect again with what the stores say now."""
        connection = self.connections.get(station_id)
        if connection is None or connection.closing is not None:
            return
        self.metrics.events.labels("credentials_changed_closed").inc()
        log.warning("station credentials changed; closing its connection", extra={"station_id": station_id})
        connection.close(1008, "credentials changed")

    def _arm_timer(self, connection: StationConnection) -> None:
        deadline = connection.session.next_deadline
        if deadline == connection.timer_at:
            return
        if connection.timer is not None:
            connection.timer.cancel()
        connection.timer_at = deadline
        connection.timer = None if deadline is None else self.loop.call_at(deadline, self._expire, connection)

    def _expire(self, connection: StationConnection) -> None:
        connection.timer, connection.timer_at = None, None
        self._apply(connection, connection.session.expire(self.loop.time()))

    # The Kafka side.

    async def _consume(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=500)
            calls = False
            for records in batches.values():
                for record in records:
                    try:
                        calls = self._deliver(record) or calls
                    except Exception:
                        self.metrics.records_in.labels("failed").inc()
                        log.exception(
                            "failed to handle a messages_out record",
                            extra={"partition": record.partition, "offset": record.offset},
                        )
            if calls:
                await self._commit_now()

    async def _commit_now(self) -> None:
        """Commit at once after passing on CSMS CALLs (auto-commit runs every second): a gateway taking
        over the partition after a crash then re-reads, and delivers again, only what came after."""
        try:
            await self.consumer.commit()
        except KafkaError as error:
            log.warning("offset commit failed; the next one covers it", extra={"error": repr(error)})

    def _deliver(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Act on one ``messages_out`` record; True when it carried a CSMS CALL."""
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
        connection = self.connections.get(out.station_id)
        now = self.loop.time()
        self.last_offsets[record.partition] = record.offset
        hops_header = dict(record.headers or ()).get("hops", b"0")
        hops = int(hops_header) if hops_header.isdigit() else MAX_HOPS
        delivery, partition = route_out_record(
            connection is not None, self.routes.get(out.station_id), self.gateway_id, record.partition, hops
        )
        if delivery is Delivery.DELIVER and connection is not None:
            self.metrics.records_in.labels("delivered").inc()
            call = connection.session.station_call
            self._apply(connection, connection.session.csms_frame(out.frame, now))
            if call is not None and connection.session.station_call is None and out.frame.message_id == call.message_id:
                self.metrics.round_trip.observe(now - call.received_at)
            return is_call
        if delivery is Delivery.FORWARD:
            self.metrics.records_in.labels("forwarded").inc()
            headers = [(k, v) for k, v in record.headers or () if k != "hops"] + [("hops", str(hops + 1).encode())]
            self.publisher.publish(
                Outgoing(
                    self.config.kafka.out_messages_topic, record.key or b"", record.value, headers, partition=partition
                )
            )
            return is_call
        self.metrics.records_in.labels("unroutable").inc()
        if isinstance(out.frame, Call) and not out.frame.send:
            version = out.protocol or OcppVersion.V201
            origin = Origin(out.station_id, version, self.gateway_id)
            for action in refuse_csms_call(
                version, pending_call(out.frame, now), Fault.UNAVAILABLE, "station is not connected"
            ):
                if isinstance(action, PublishToCsms):
                    self._publish_frame(origin, action)
                elif isinstance(action, Notice):
                    self._notice(origin, action)
        else:
            log.info("frame for a station not connected here dropped", extra={"station_id": out.station_id})
        return is_call

    def _version_of(self, station_id: str) -> OcppVersion | None:
        connection = self.connections.get(station_id)
        return connection.origin.version if connection else None
