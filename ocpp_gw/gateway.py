"""The gateway process, and its composition root: station WebSockets on one side, Kafka on the other.

Each room has one job and is built here, once: the handshake (which requests become stations), the
station links (one socket and its session each), the registry (who is connected here), the CSMS bus
(records for the CSMS), the ``messages_out`` dispatcher, and the Kafka clients under them. This
module wires them, starts and stops them in order, serves the listeners and drains on SIGTERM.
Every protocol decision is the core's (:mod:`ocpp_gw.core`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.extensions import ServerExtensionFactory
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

from .cli import bounded, keep_out_of_collections
from .config import Config, GatewayConfig
from .core.actions import SessionLimits
from .core.envelope import Origin
from .core.protocol import OcppVersion
from .core.session import StationSession
from .core.validation import PayloadValidator, StrictMode, StrictPolicy
from .credential_store import CredentialStore, FileCredentials
from .csms_bus import CsmsBus
from .dispatcher import Dispatcher
from .handshake import Handshake, station_id_from_path
from .kafka_topics import ensure_topics
from .metrics import GatewayMetrics, close_code_label
from .publisher import OrderedPublisher, RecoveringProducer
from .registry import DuplicatePolicy, Registry
from .routes import RouteBook
from .schemas import load_ocpp_schemas
from .station_link import StationLink
from .status import StatusServer
from .tls import TlsContexts

log = logging.getLogger("ocpp_gw")

LISTEN_BACKLOG = 4096
"""Connections the kernel queues before the gateway accepts them (capped by net.core.somaxconn): when a
fleet reconnects at once, a short queue drops SYNs and stations wait for their retransmission."""


class Gateway:
    """Accepts stations, bridges their frames to Kafka and delivers the CSMS's frames back."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.gw = gw = config.ocpp_gateway
        self.gateway_id = gw.gateway_id
        self.versions = tuple(OcppVersion(name) for name in gw.subprotocols)
        self.limits = SessionLimits(
            csms_response_timeout=gw.csms_response_timeout,
            station_response_timeout=gw.station_response_timeout,
            csms_queue_size=gw.csms_queue_size,
            message_rate=gw.station_message_rate,
            message_burst=gw.station_message_burst,
            close_when_limited=gw.rate_limit_action == "close",
            max_frame_size=gw.max_message_size,
        )
        self.validator = self._strict_mode()
        self.partitions: list[int] = []
        self.assigned = asyncio.Event()
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
        self.bus = CsmsBus(self.publisher, config.kafka, self.gateway_id, self.metrics, lambda: self.partitions)
        self.registry = Registry(self.bus, self.metrics, DuplicatePolicy(gw.duplicate_connection))
        self.routes = RouteBook(config.kafka, self.registry.on_route_record)
        self.credentials = CredentialStore(
            FileCredentials(gw.credentials_file) if gw.credentials_file else None,
            config.kafka,
            gw.credentials_topic,
            on_change=self.registry.credentials_changed,
        )
        needs_tls = any(profile >= 2 for _, _, profile in gw.listeners)
        self.tls = TlsContexts(gw.tls_cert_file, gw.tls_key_file, gw.tls_ca_file) if needs_tls else None
        self.handshake = Handshake(
            gw,
            self.credentials,
            self.metrics,
            lambda: bool(self.partitions) and not self.draining,
            lambda: len(self.registry),
            self.loop.time,
        )
        self.dispatcher = Dispatcher(
            config.kafka,
            self.gateway_id,
            self.registry,
            self.routes,
            self.bus,
            self.metrics,
            self.partitions_changed,
            self._worker_ended,
        )
        self._stop: asyncio.Event | None = None
        self._watch_gauges()

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
        m.csms_queue.set_function(lambda: sum(link.session.queued for link in self.registry))
        m.publish_queue.set_function(lambda: self.publisher.depth)
        m.unsent_records.set_function(lambda: self.publisher.waiting_records)
        m.unsent_bytes.set_function(lambda: self.publisher.waiting_bytes)
        m.kept_records.set_function(lambda: self.publisher.kept_records)
        m.consumer_lag.set_function(self.dispatcher.lag)
        m.partitions.set_function(lambda: len(self.partitions))
        m.ready.set_function(lambda: int(self.ready()))
        m.draining.set_function(lambda: int(self.draining))

    def ready(self) -> bool:
        """Ready for stations: owns a partition, not draining, and frames pass both ways (Kafka takes
        the records, the bus answers and the ``messages_out`` consumer keeps up)."""
        return bool(self.partitions) and not self.draining and self.publisher.healthy and self.dispatcher.watch.passing

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
        await self.dispatcher.start()
        self.dispatcher.watch.start()
        try:
            await self._wait_assignment(stop)
            if stop.is_set():
                return
            async with contextlib.AsyncExitStack() as listeners:
                servers = [await listeners.enter_async_context(self._listen(*spec)) for spec in self.gw.listeners]
                self._log_ready(servers)
                keep_out_of_collections()
                await stop.wait()
                await self._drain()
                for server in servers:
                    server.close()
                for server in servers:
                    await server.wait_closed()
        finally:
            if watching is not None:
                watching.cancel()
            await self.dispatcher.watch.stop()
            self.dispatcher.stop_reading()
            await bounded(self.publisher.close(), "flush records")
            await bounded(self.producer.stop(), "stop producer")
            await bounded(self.dispatcher.consumer.stop(), "leave consumer group")
            await bounded(self.routes.stop(), "stop following routes")
            await bounded(self.credentials.stop(), "stop following credentials")
            log.info("gateway stopped")

    async def _drain(self) -> None:
        """Refuse new stations, let calls in flight finish, then close stations at ``drain_rate`` per second."""
        self.draining = True
        deadline = self.loop.time() + self.gw.drain_timeout
        log.info("draining", extra={"stations": len(self.registry), "drain_rate": self.gw.drain_rate})
        in_flight_until = self.loop.time() + max(self.gw.csms_response_timeout, self.gw.station_response_timeout) + 1
        while self.loop.time() < min(deadline, in_flight_until) and any(
            link.session.in_flight for link in self.registry
        ):
            await asyncio.sleep(0.05)
        for link in self.registry:
            if self.loop.time() >= deadline:
                break
            link.close(1012, "gateway restarting; reconnect")
            await asyncio.sleep(1 / self.gw.drain_rate)
        finishing = [asyncio.shield(link.finished) for link in self.registry]
        if finishing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*finishing), max(0.1, deadline - self.loop.time()))
        log.info("drained", extra={"stations_left": len(self.registry)})

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
        await self.dispatcher.fix_positions()

    def partitions_changed(self, partitions: list[int]) -> None:
        """A rebalance gave this instance ``partitions``: readiness and every route follow."""
        changed = partitions != self.partitions
        self.partitions = partitions
        self.metrics.rebalances.inc()
        self.assigned.set()
        if not partitions:
            self.registry.partitions_changed(partitions)
            log.error(
                "this gateway owns no messages_out partition and refuses stations: are there more gateway "
                "instances than partitions of the topic? Add partitions or remove instances",
                extra={"topic": self.config.kafka.out_messages_topic, "partitions": []},
            )
            return
        log.info("messages_out partitions assigned", extra={"partitions": partitions})
        if changed:
            self.registry.partitions_changed(partitions)

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
            compression=None,
            extensions=deflate(self.gw),
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

    async def _handle(self, websocket: ServerConnection) -> None:
        """One station connection, from the completed handshake to its end."""
        self.handshake.opened(websocket)
        station_id = station_id_from_path(websocket.request.path if websocket.request else "")
        assert station_id is not None
        forget_handshake_headers(websocket)
        host, port = websocket.remote_address[:2]
        remote = f"{host}:{port}"
        context = {"station_id": station_id, "remote_address": remote}
        if websocket.subprotocol is None:
            self.metrics.refused.labels("no_subprotocol").inc()
            log.warning("refused: no supported OCPP subprotocol offered", extra=context)
            await websocket.close(1002, "no supported OCPP subprotocol offered")
            return
        if self.registry.refuses(station_id):
            self.metrics.refused.labels("duplicate").inc()
            log.warning("refused: station already connected", extra=context)
            await websocket.close(1008, "station is already connected")
            return
        version = OcppVersion(websocket.subprotocol)
        origin = Origin(station_id, version, self.gateway_id)
        session = StationSession(station_id, version, self.limits, self.validator)
        link = StationLink(websocket, session, origin, self.bus, self.metrics, self.gw.send_queue_bytes, self.loop)
        self.metrics.opened.labels(version.value).inc()
        self.metrics.connected.labels(version.value).inc()
        try:
            await self.registry.admit(link)
            self.registry.connected(link, remote)
            log.info("station connected", extra={**context, "protocol": version.value})
            await link.serve()
        finally:
            self.registry.ended(link)
            code, reason = link.close_status
            self.metrics.connected.labels(version.value).dec()
            self.metrics.closed.labels(close_code_label(code)).inc()
            log.info("station disconnected", extra={**context, "close_code": code, "close_reason": reason})


def forget_handshake_headers(websocket: ServerConnection) -> None:
    """Empty the handshake's request and response headers, read by then and never again: about 2.8 KB
    per connected station (measured: README, Performance). In place, because websockets' parser keeps
    the request for the connection's lifetime."""
    for message in (websocket.request, websocket.response):
        if message is not None:
            message.headers.clear()


def deflate(gw: GatewayConfig) -> list[ServerExtensionFactory] | None:
    """permessage-deflate with the configured window and memory level, which bound its memory per station:
    a compressor holds about 2^(window_bits + 2) + 2^(mem_level + 9) bytes, a decompressor 2^window_bits."""
    if not gw.compression:
        return None
    return [
        ServerPerMessageDeflateFactory(
            server_max_window_bits=gw.compression_window_bits,
            client_max_window_bits=gw.compression_window_bits,
            compress_settings={"memLevel": gw.compression_mem_level},
        )
    ]
