"""The station link room: one station's socket and its session.

It reads the station's frames into the session, carries out the actions the session returns (write
to the station, publish for the CSMS, close, count a round trip) and runs the session's one timer.
It decides nothing itself; the session does.

A frame for the station is framed by websockets' protocol object and handed to the transport at
once, without a task or a queue of its own: the transport's buffer is the outbox, bounded by
``send_queue_bytes``. An idle station therefore costs no task or queue beyond websockets' own (about
4 KB less per station, measured: README, Performance).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

from websockets.exceptions import ConnectionClosed
from websockets.frames import Close
from websockets.protocol import State

from .clock import utc_now
from .core.actions import Action, Author, CallAnswered, CloseStation, PublishToCsms, SendToStation
from .core.envelope import Origin
from .core.protocol import MessageType
from .core.routing import HeldStation
from .core.session import StationSession
from .csms_bus import CsmsBus
from .metrics import MESSAGE_TYPES, GatewayMetrics

log = logging.getLogger("ocpp_gw")


class FrameWriter(Protocol):
    """websockets' sans-I/O protocol object: its state, the close frames received and sent, and framing."""

    @property
    def state(self) -> State: ...

    def send_text(self, data: bytes) -> None: ...

    @property
    def close_rcvd(self) -> Close | None: ...

    @property
    def close_sent(self) -> Close | None: ...


class Transport(Protocol):
    def get_write_buffer_size(self) -> int: ...


class Socket(Protocol):
    """What a link needs of a WebSocket (websockets' ServerConnection in production)."""

    @property
    def protocol(self) -> FrameWriter: ...

    @property
    def transport(self) -> Transport: ...

    def send_data(self) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    def __aiter__(self) -> AsyncIterator[str | bytes]: ...


class StationLink:
    """One station connection: socket, session, timer."""

    def __init__(
        self,
        socket: Socket,
        session: StationSession,
        origin: Origin,
        bus: CsmsBus,
        metrics: GatewayMetrics,
        send_queue_bytes: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.socket, self.session, self.origin = socket, session, origin
        self.bus, self.metrics, self.send_queue_bytes, self.loop = bus, metrics, send_queue_bytes, loop
        self.route = HeldStation(uuid.uuid4().hex)
        self.connected_at = utc_now()
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at: float | None = None
        self.closing: asyncio.Task[None] | None = None
        self.finished: asyncio.Future[None] = loop.create_future()
        """Done once the connection's end has been handled (its calls answered); await it shielded."""

    @property
    def station_id(self) -> str:
        return self.origin.station_id

    def close(self, code: int, reason: str) -> None:
        """Close the socket once, from synchronous code."""
        if self.closing is None:
            self.closing = asyncio.create_task(self.socket.close(code, reason))

    async def serve(self) -> None:
        """Read the station's frames until the connection ends, then answer what the session still owes."""
        session = self.session
        try:
            async for message in self.socket:
                now = self.loop.time()
                if isinstance(message, str):
                    self.apply(session.station_text(message, now))
                else:
                    self.apply(session.station_binary(now))
        except ConnectionClosed:
            pass
        finally:
            try:
                self.apply(session.close(self.loop.time()))
            except Exception:
                log.exception(
                    "failed to answer the calls of a closed connection", extra={"station_id": self.station_id}
                )
            finally:
                if self.timer is not None:
                    self.timer.cancel()

    @property
    def close_status(self) -> tuple[int, str]:
        """The close code and reason of the ended connection (1006: no close frame)."""
        state = self.socket.protocol
        closing = state.close_rcvd or state.close_sent
        return (closing.code, closing.reason) if closing is not None else (1006, "")

    def apply(self, actions: list[Action]) -> None:
        """Carry out the session's actions, in order, then arm the timer for its next deadline."""
        for action in actions:
            if isinstance(action, SendToStation):
                self._send(action)
            elif isinstance(action, PublishToCsms):
                station_call = action.origin == Author.STATION and action.message_type == MessageType.CALL
                refused = functools.partial(self._call_refused, action.message_id) if station_call else None
                self.bus.frame(self.origin, action, refused)
            elif isinstance(action, CloseStation):
                self.close(action.code, action.reason)
            elif isinstance(action, CallAnswered):
                self.metrics.round_trip.observe(action.round_trip)
            else:
                self.bus.notice(self.origin, action)
        self._arm_timer()

    def _send(self, action: SendToStation) -> None:
        text = action.text
        if action.error_code is not None:
            self.metrics.callerrors.labels(action.error_code).inc()
        else:
            self.metrics.frames.labels("csms_to_station", MESSAGE_TYPES.get(action.message_type, "?")).inc()
        socket = self.socket
        if self.closing is not None or socket.protocol.state is not State.OPEN:
            return  # the connection is ending; what the station owes is answered when it has ended
        data = text.encode()
        queued = socket.transport.get_write_buffer_size()
        if queued + len(data) > self.send_queue_bytes:
            self.metrics.events.labels("send_queue_full").inc()
            log.warning(
                "station send queue full (it does not read, or floods calls); closing",
                extra={"station_id": self.station_id, "queued_bytes": queued},
            )
            self.close(1008, "send queue full")
            return
        socket.protocol.send_text(data)
        socket.send_data()

    def _call_refused(self, message_id: str) -> None:
        """Kafka did not take the station's CALL ``message_id``: the session answers it now."""
        self.apply(self.session.publish_failed(message_id, self.loop.time()))

    def _arm_timer(self) -> None:
        deadline = self.session.next_deadline
        if deadline == self.timer_at:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = deadline
        self.timer = None if deadline is None else self.loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self.timer, self.timer_at = None, None
        self.apply(self.session.expire(self.loop.time()))
