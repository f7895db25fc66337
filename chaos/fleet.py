"""Stations for the fault suite: every CALL they send and every answer they get goes in a :class:`Ledger`.

Each station speaks one of the three OCPP versions over a raw WebSocket, boots, then sends a
Heartbeat or StatusNotification every ``interval`` seconds and answers the CSMS's TriggerMessage
calls. It prefers its home gateway and fails over to the others (a load balancer's job, done here so
the tests need none). A CALL cut by a dropped connection is sent again, same id, once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from .ledger import Answer, Ledger

RNG = random.Random()
"""This module's own randomness (hypothesis, fuzzing in the same process, watches the global one)."""

VERSIONS = ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")


def boot_payload(version: str) -> dict[str, Any]:
    if version == "ocpp1.6":
        return {"chargePointVendor": "Chaos", "chargePointModel": "C1"}
    return {"chargingStation": {"vendorName": "Chaos", "model": "C1"}, "reason": "PowerUp"}


def status_payload(version: str) -> dict[str, Any]:
    if version == "ocpp1.6":
        return {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    return {"timestamp": "2026-11-21T00:00:00Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1}


@dataclass
class FleetStats:
    connects: int = 0
    disconnects: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    csms_calls_answered: int = 0


class ChaosStation:
    def __init__(self, fleet: Fleet, station_id: str, version: str, urls: list[str]) -> None:
        self.fleet, self.station_id, self.version, self.urls = fleet, station_id, version, urls
        self.connection: ClientConnection | None = None
        self.url = ""
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.sequence = itertools.count(1)

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, boot, call every ``interval`` seconds; after a drop, resend the cut call and boot again."""
        cut: tuple[str, str] | None = None
        while not stop.is_set():
            if not await self._connect(stop):
                return
            assert self.connection is not None
            reader = asyncio.create_task(self._read(self.connection))
            try:
                calls = [cut] if cut else []
                calls.append(self._next("BootNotification", boot_payload(self.version)))
                while not stop.is_set():
                    cut = calls.pop(0) if calls else self._next_routine()
                    if not await self._call(*cut, reader):
                        break
                    cut = None
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.fleet.interval * RNG.uniform(0.5, 1.5))
            except websockets.exceptions.ConnectionClosed:
                pass
            finally:
                reader.cancel()
                self.waiting.clear()
                with contextlib.suppress(Exception):
                    await self.connection.close()
                if not stop.is_set():
                    self.fleet.stats.disconnects += 1

    def _next(self, action: str, payload: dict[str, Any]) -> tuple[str, str]:
        message_id = f"{self.station_id}-{next(self.sequence)}"
        return message_id, orjson.dumps([2, message_id, action, payload]).decode()

    def _next_routine(self) -> tuple[str, str]:
        if RNG.random() < 0.5:
            return self._next("Heartbeat", {})
        return self._next("StatusNotification", status_payload(self.version))

    async def _call(self, message_id: str, text: str, reader: asyncio.Task[None]) -> bool:
        """Send one CALL and wait for its answer; False when the connection dropped before it came."""
        assert self.connection is not None
        answered = asyncio.get_running_loop().create_future()
        self.waiting[message_id] = answered
        self.fleet.ledger.sent(message_id, self.fleet.clock())
        await self.connection.send(text)
        await asyncio.wait({answered, reader}, timeout=self.fleet.call_timeout, return_when=asyncio.FIRST_COMPLETED)
        self.waiting.pop(message_id, None)
        return answered.done() or not reader.done()

    async def _connect(self, stop: asyncio.Event) -> bool:
        for attempt in itertools.count():
            if stop.is_set():
                return False
            url = self.urls[attempt % len(self.urls)]
            try:
                self.connection = await websockets.connect(
                    f"{url}/{self.station_id}",
                    subprotocols=[websockets.Subprotocol(self.version)],
                    open_timeout=10,
                    ping_interval=None,
                    compression=None,
                )
                self.fleet.stats.connects += 1
                self.url = url
                return True
            except websockets.exceptions.InvalidStatus as refused:
                kind = f"http_{refused.response.status_code}"
                self.fleet.stats.refused[kind] = self.fleet.stats.refused.get(kind, 0) + 1
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as error:
                kind = type(error).__name__
                self.fleet.stats.refused[kind] = self.fleet.stats.refused.get(kind, 0) + 1
            await asyncio.sleep(RNG.uniform(0.1, 0.5) * min(4, 2 ** (attempt // len(self.urls))))
        return False

    async def _read(self, connection: ClientConnection) -> None:
        ledger, clock = self.fleet.ledger, self.fleet.clock
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            await self._answer_all(connection, ledger, clock)

    async def _answer_all(self, connection: ClientConnection, ledger: Ledger, clock: Callable[[], float]) -> None:
        async for text in connection:
            message = orjson.loads(text)
            kind, message_id = message[0], message[1]
            if kind == 2:
                self.fleet.stats.csms_calls_answered += 1
                await connection.send(orjson.dumps([3, message_id, {"status": "Accepted"}]).decode())
                continue
            ledger.answered(message_id, Answer.PEER if kind == 3 else Answer.GATEWAY, clock())
            waiting = self.waiting.get(message_id)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)


class Fleet:
    """``count`` stations spread over ``urls`` (station n prefers gateway n mod len(urls)), one ledger."""

    def __init__(
        self, urls: list[str], count: int, interval: float, call_timeout: float, prefix: str = "CHAOS_"
    ) -> None:
        self.ledger = Ledger()
        self.stats = FleetStats()
        self.interval, self.call_timeout = interval, call_timeout
        self.clock = asyncio.get_running_loop().time
        self.stations = [
            ChaosStation(
                self, f"{prefix}{n}", VERSIONS[n % len(VERSIONS)], urls[n % len(urls) :] + urls[: n % len(urls)]
            )
            for n in range(count)
        ]
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(station.run(self._stop)) for station in self.stations]

    def connected(self, url: str | None = None) -> list[str]:
        """The stations whose connection is open (to ``url``, when given)."""
        return [
            s.station_id
            for s in self.stations
            if s.connection is not None and s.connection.state.name == "OPEN" and url in (None, s.url)
        ]

    async def stop(self) -> None:
        """Stop sending new calls; the calls in flight still get their answer (or their timeout)."""
        self._stop.set()
        await asyncio.wait(self._tasks, timeout=self.call_timeout + 5)
        for task in self._tasks:
            task.cancel()
