"""The CSMS side of the fault suite: CALLs to stations through Kafka, each one and its answer in a ledger.

Calls go out like ``csms-server call`` sends them (:class:`ocpp_gw.sdk.CsmsClient`: ``messages_out``,
the partition of the station's route); every answer that comes back on ``messages_in`` is counted --
the station's own, or a CALLERROR the gateway wrote (envelope ``origin`` "gateway"), twice if it comes
twice. A call Kafka did not take was never sent and is counted apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import Callable

from aiokafka.errors import KafkaError

from ocpp_gw.config import KafkaConfig
from ocpp_gw.core.frames import CallError, CallResult
from ocpp_gw.sdk import CsmsClient, InRecord, StationOffline

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
        self.client = CsmsClient(kafka)
        self.client.listen(self._record)
        self._sending = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._calls: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.client.start()
        self._sending.set()
        self._tasks = [asyncio.create_task(self._send_loop())]

    async def stop_sending(self) -> None:
        """No new calls; wait for the ones being published."""
        self._sending.clear()
        if self._calls:
            await asyncio.wait(self._calls)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.stop(), 45)

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
        self.ledger.sent(message_id, self.clock())
        try:
            await self.client.publish_call(station_id, "TriggerMessage", {"requestedMessage": "Heartbeat"}, message_id)
            self.ledger.accepted(message_id, self.clock())
        except StationOffline:
            self.ledger.withdraw(message_id)
            self.not_sent["station offline"] += 1
        except KafkaError as error:
            self.ledger.withdraw(message_id)
            self.not_sent[type(error).__name__] += 1

    def _record(self, record: InRecord) -> None:
        """Every CALLRESULT or CALLERROR to one of our calls is an answer, a second one included."""
        frame = record.frame
        if not (isinstance(frame, CallResult) or (isinstance(frame, CallError) and not frame.to_result)):
            return
        if frame.message_id in self.ledger.calls:
            by = Answer.GATEWAY if record.origin == "gateway" else Answer.PEER
            self.ledger.answered(frame.message_id, by, self.clock())
