"""In-memory stand-ins for the adapter's edges: the Kafka publisher and a station's WebSocket.

The rooms (:mod:`ocpp_gw.station_link`, :mod:`ocpp_gw.registry`, :mod:`ocpp_gw.csms_bus`,
:mod:`ocpp_gw.dispatcher`) are driven through these, on a real event loop, without a network.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close
from websockets.protocol import State

from ocpp_gw.config import KafkaConfig
from ocpp_gw.core.actions import SessionLimits
from ocpp_gw.core.envelope import InRecord, Origin, decode_in_record
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.core.session import StationSession
from ocpp_gw.csms_bus import CsmsBus
from ocpp_gw.metrics import GatewayMetrics
from ocpp_gw.publisher import Outgoing
from ocpp_gw.station_link import StationLink

GATEWAY_ID = "gw-test"
KAFKA = KafkaConfig()


class FakePublisher:
    """Records what would go to Kafka, in order; :meth:`refuse` plays Kafka refusing a record."""

    def __init__(self) -> None:
        self.records: list[Outgoing] = []

    def publish(self, record: Outgoing) -> None:
        self.records.append(record)

    def on(self, topic: str) -> list[Outgoing]:
        return [record for record in self.records if record.topic == topic]

    @property
    def frames(self) -> list[InRecord]:
        """The decoded ``messages_in`` frame records."""
        decoded = [decode_in_record(r.key, r.value, r.headers) for r in self.on(KAFKA.in_messages_topic)]
        return [record for record in decoded if record.kind == "frame"]

    def kinds(self) -> list[str]:
        """The kind header of every ``messages_in`` record, or the topic name of the others."""
        return [dict(r.headers).get("kind", b"").decode() or r.topic for r in self.records]

    @staticmethod
    def refuse(record: Outgoing) -> None:
        """Kafka does not take ``record``: what the real publisher does once it gives up on it."""
        assert record.on_failure is not None, "this record has no fallback"
        record.on_failure()


@dataclass
class FakeFraming:
    """websockets' protocol object: its state, the close frames, and the frames it was given to send."""

    close_rcvd: Close | None = None
    close_sent: Close | None = None
    state: State = State.OPEN
    framed: list[bytes] = field(default_factory=list)

    def send_text(self, data: bytes) -> None:
        assert self.state is State.OPEN, "websockets refuses to frame data on a connection that is not open"
        self.framed.append(data)


@dataclass
class FakeTransport:
    """The bytes written to a station and not taken by it yet (all of them while it does not read)."""

    buffered: int = 0

    def get_write_buffer_size(self) -> int:
        return self.buffered


_END = object()


class FakeSocket:
    """A station's WebSocket: scripted incoming frames, recorded outgoing ones and closes.

    ``stalled``: a station that does not read, whose frames stay in the transport's buffer until
    :meth:`resume`; :meth:`close` records the close, sets the close frame sent and ends the
    iteration, as does :meth:`hang_up` (the station's close, or none: 1006).
    """

    def __init__(self, stalled: bool = False) -> None:
        self.protocol = FakeFraming()
        self.transport = FakeTransport()
        self.sent: list[str] = []
        self.closes: list[tuple[int, str]] = []
        self._incoming: asyncio.Queue[object] = asyncio.Queue()
        self.stalled = stalled
        self.receive_error: BaseException | None = None

    def receive(self, *frames: str | bytes) -> None:
        """The station sends ``frames``."""
        for frame in frames:
            self._incoming.put_nowait(frame)

    def hang_up(self, close: Close | None = None) -> None:
        """The station's side ends the connection, with its close frame or none."""
        self.protocol.close_rcvd = close
        self.protocol.state = State.CLOSED
        self._incoming.put_nowait(_END)

    def resume(self) -> None:
        """The station reads again: what waited in the buffer reaches it."""
        self.stalled = False
        self.send_data()

    def send_data(self) -> None:
        """The framed data goes to the transport: to the station, or into the buffer while it does not read."""
        if self.stalled:
            self.transport.buffered = sum(len(data) for data in self.protocol.framed)
            return
        self.sent.extend(data.decode() for data in self.protocol.framed)
        self.protocol.framed.clear()
        self.transport.buffered = 0

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closes.append((code, reason))
        if self.protocol.close_sent is None:
            self.protocol.close_sent = Close(code, reason)
        self.protocol.state = State.CLOSING
        self._incoming.put_nowait(_END)

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[str | bytes]:
        while True:
            frame = await self._incoming.get()
            if frame is _END:
                if self.receive_error is not None:
                    raise self.receive_error
                return
            assert isinstance(frame, str | bytes)
            yield frame


def closed_abnormally() -> ConnectionClosed:
    return ConnectionClosed(None, None)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one test's coroutine on a fresh event loop."""
    asyncio.run(test())


async def eventually(condition: Callable[[], object], timeout: float = 2.0) -> None:
    """Wait until ``condition()`` holds, yielding to the loop; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.001)


@dataclass
class Bench:
    """A bus on a fake publisher, with real metrics."""

    publisher: FakePublisher
    bus: CsmsBus
    metrics: GatewayMetrics
    partitions: list[int]

    def link(
        self,
        socket: FakeSocket | None = None,
        station_id: str = "CP1",
        version: OcppVersion = OcppVersion.V201,
        limits: SessionLimits | None = None,
        send_queue_bytes: int = 1 << 20,
    ) -> StationLink:
        """A link for a new connection of ``station_id`` (needs a running loop)."""
        session = StationSession(station_id, version, limits or SessionLimits())
        return StationLink(
            socket or FakeSocket(),
            session,
            Origin(station_id, version, GATEWAY_ID),
            self.bus,
            self.metrics,
            send_queue_bytes,
            asyncio.get_running_loop(),
        )

    def sample(self, name: str, **labels: str) -> float:
        """A metric's value (0 when the series does not exist yet)."""
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


def bench(partitions: list[int] | None = None) -> Bench:
    owned = [3] if partitions is None else partitions
    publisher = FakePublisher()
    metrics = GatewayMetrics()
    return Bench(publisher, CsmsBus(publisher, KAFKA, GATEWAY_ID, metrics, lambda: owned), metrics, owned)


def call(message_id: str, action: str = "Heartbeat", payload: dict[str, object] | None = None) -> str:
    return orjson.dumps([2, message_id, action, payload or {}]).decode()


def result(message_id: str, payload: dict[str, object] | None = None) -> str:
    return orjson.dumps([3, message_id, payload or {}]).decode()
