"""The CSMS bus room: what the gateway tells the CSMS becomes Kafka records, over a :class:`Publisher`.

Frames and the gateway's own CALLERRORs go to ``messages_in`` (keyed by station id, with the reply
partition and the ``correlation_id`` header), and so do connection events; a station's route goes to
``station_routes``. Which records are durable (kept until Kafka takes them) and what happens when
Kafka refuses one is decided here, per kind of record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from .clock import utc_now
from .config import KafkaConfig
from .core.actions import Action, Notice, PendingCall, PublishToCsms, refuse_csms_call
from .core.envelope import Origin, frame_record, lifecycle_record
from .core.protocol import Fault, MessageType
from .core.routing import HeldStation, Route, reply_partition
from .metrics import MESSAGE_TYPES, GatewayMetrics
from .publisher import Outgoing

log = logging.getLogger("ocpp_gw")


class Publisher(Protocol):
    """Takes records for Kafka in order; :class:`ocpp_gw.publisher.OrderedPublisher` in production."""

    def publish(self, record: Outgoing) -> None: ...


def correlation_id(origin: Origin, message_id: str) -> str:
    """Follows one call through gateway, Kafka (header ``correlation_id``) and CSMS logs.

    Message ids are unique per station and sender (OCPP-J §4.1.4), so station id and message id
    name a call everywhere without any state. The id is the station's choice, so characters that
    are not printable (CR, LF, ...) are written as escapes: a header or a log line cannot be forged.
    """
    if not message_id.isprintable():
        message_id = message_id.encode("unicode_escape").decode("ascii")
    return f"{origin.station_id}/{message_id}"


class CsmsBus:
    """Records for the CSMS from one gateway instance."""

    def __init__(
        self,
        publisher: Publisher,
        kafka: KafkaConfig,
        gateway_id: str,
        metrics: GatewayMetrics,
        partitions: Callable[[], list[int]],
    ) -> None:
        self.publisher, self.kafka, self.gateway_id = publisher, kafka, gateway_id
        self.metrics, self.partitions = metrics, partitions

    def reply_partition(self, station_id: str) -> int | None:
        return reply_partition(station_id, self.partitions())

    def frame(self, origin: Origin, action: PublishToCsms, on_call_refused: Callable[[], None] | None = None) -> None:
        """Publish a frame on ``messages_in``.

        A station CALL Kafka does not take is refused at once (``on_call_refused``: the station gets a
        CALLERROR and sends it again); every other frame is durable, and a station's answer Kafka can
        never take becomes a small CALLERROR to the CSMS instead.
        """
        request = action.request
        reply = self.reply_partition(origin.station_id)
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
        from_station = action.origin == "station"
        if from_station and action.message_type == MessageType.CALL and on_call_refused is not None:
            on_failure, durable = on_call_refused, False
        elif from_station and request is not None:
            on_failure = lambda: self.answer_unpublishable(origin, request)  # noqa: E731
        if from_station:
            self.metrics.frames.labels("station_to_csms", MESSAGE_TYPES.get(action.message_type, "?")).inc()
        else:
            self.metrics.callerrors.labels(action.error_code or "?").inc()
        headers = [
            *origin.headers("frame", reply),
            ("correlation_id", correlation_id(origin, action.message_id).encode()),
        ]
        self.publisher.publish(
            Outgoing(
                self.kafka.in_messages_topic,
                origin.station_id.encode(),
                value,
                headers,
                on_failure,
                durable=durable,
            )
        )

    def answer_unpublishable(self, origin: Origin, request: PendingCall) -> None:
        """Kafka refused the station's answer (too large, say): the CSMS gets a small CALLERROR instead."""
        description = "the station's answer could not be published"
        self.carry_out(origin, refuse_csms_call(origin.version, request, Fault.INTERNAL, description))

    def carry_out(self, origin: Origin, actions: list[Action]) -> None:
        """Actions for the CSMS only (a refused CSMS call): its records and notices."""
        for action in actions:
            if isinstance(action, PublishToCsms):
                self.frame(origin, action)
            elif isinstance(action, Notice):
                self.notice(origin, action)

    def lifecycle(self, origin: Origin, kind: str, **details: object) -> None:
        """A ``connected`` or ``disconnected`` event, in order with the station's frames."""
        reply = self.reply_partition(origin.station_id)
        value = lifecycle_record(origin, utc_now(), kind, reply, **details)
        self.publisher.publish(
            Outgoing(self.kafka.in_messages_topic, origin.station_id.encode(), value, origin.headers(kind, reply))
        )

    def route(self, origin: Origin, held: HeldStation, connected_at: str, current: Callable[[], bool]) -> None:
        """The station's route (this gateway, its reply partition); ``current`` says whether a route kept
        for another attempt is still wanted."""
        partition = self.reply_partition(origin.station_id)
        if partition is None:
            return
        route = Route(
            origin.station_id, self.gateway_id, partition, origin.version.value, held.connection_id, connected_at
        )
        self.publisher.publish(
            Outgoing(
                self.kafka.routes_topic,
                origin.station_id.encode(),
                route.encode(),
                self._route_headers(held),
                current=current,
            )
        )

    def route_tombstone(self, station_id: str, held: HeldStation, current: Callable[[], bool]) -> None:
        self.publisher.publish(
            Outgoing(self.kafka.routes_topic, station_id.encode(), None, self._route_headers(held), current=current)
        )

    def _route_headers(self, held: HeldStation) -> list[tuple[str, bytes]]:
        return [("gateway_id", self.gateway_id.encode()), ("connection_id", held.connection_id.encode())]

    def forward(self, key: bytes, value: bytes | None, headers: list[tuple[str, bytes]], partition: int) -> None:
        """Pass a ``messages_out`` record on to the partition of the gateway that holds the station."""
        self.publisher.publish(Outgoing(self.kafka.out_messages_topic, key, value, headers, partition=partition))

    def notice(self, origin: Origin, notice: Notice) -> None:
        """Count a session event and, unless it is a quiet one, log it."""
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
