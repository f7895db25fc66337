"""1. Fuzzing frames, one lane: a station connection that sends its share of the probes and judges every reaction.

It goes as fast as the oracle allows: answers due from the gateway are pipelined, one CALL at a
time is in flight to the CSMS, silence is proved by a barrier CALL, and a probe that must close
the connection is sent alone (see :class:`_Lane`). :mod:`.fuzz` runs the lanes.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .client import Closed, Lost, Message, RawConnection, next_event
from .framing import OP_CLOSE
from .oracle import UNREADABLE_ID, Expectation, answer, answer_head, fault_code, judge_answer
from .probes import Probe, effective_expectation, probe_wire_bytes
from .tally import Tally, preview


@dataclass
class _Outstanding:
    """A probe whose answer is due, or the barrier that proves the silence of the probes before it."""

    probe: Probe | None
    expect: Expectation
    number: int
    seq: int
    """Order of sending on the connection (probes and barriers alike)."""


@dataclass
class FuzzReport:
    frames: int = 0
    answered: int = 0
    silent: int = 0
    gateway_errors: Counter[str] = field(default_factory=Counter)
    csms_answers: Counter[str] = field(default_factory=Counter)
    closes: Counter[int] = field(default_factory=Counter)
    wires: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    barriers: int = 0
    violations: Tally = field(default_factory=Tally)


class _Lane:
    """One station connection running its share of the probes, as fast as the oracle allows.

    Probes whose answers come straight from the gateway (CALLERRORs, silence) are pipelined, up
    to BATCH of them; the gateway answers them in order. A probe that reaches the CSMS is the one
    CALL in flight: the next such probe waits for its answer. Silence is proved by a barrier, a
    CALL with an array payload that the gateway refuses at once, sent after the silent probes:
    its CALLERROR arrives after anything they could have caused. A probe that must close the
    connection is sent alone, after everything before it was settled; then the lane reconnects.
    """

    BATCH = 24

    def __init__(self, run: _FuzzRun, index: int, version: str, offer_deflate: bool) -> None:
        self.run, self.index, self.version, self.offer_deflate = run, index, version, offer_deflate
        self.station_id = f"{run.station_prefix}{index}"
        self.connection: RawConnection | None = None
        self.ordered: deque[_Outstanding] = deque()
        self.in_flight: _Outstanding | None = None
        self.unproven: list[_Outstanding] = []
        self.barrier_seq = 0
        self.probe_number = 0
        self.seq = 0
        self.answered_seq = 0
        """Send order of the last probe whose in-order answer came: a stray answer comes from a later one."""

    @property
    def report(self) -> FuzzReport:
        return self.run.report

    def violation(self, what: str, item: _Outstanding | None = None) -> None:
        where = f"{self.station_id} ({self.version})"
        if item is not None and item.probe is not None:
            probe = item.probe
            where += f" probe #{item.number} {probe.name}: {preview(probe.raw if probe.raw else probe.data)!r}"
        self.report.violations.add(f"{where}: {what}")

    async def connect(self) -> bool:
        for attempt in range(40):
            connection, reply = await RawConnection.open(
                self.run.host,
                self.run.port,
                f"{self.run.path}/{self.station_id}",
                [self.version],
                deflate=self.offer_deflate,
                timeout=self.run.answer_timeout,
                ssl_context=self.run.ssl_context,
            )
            if connection is not None:
                if connection.subprotocol != self.version:
                    self.violation(f"handshake agreed {connection.subprotocol!r}, offered only {self.version}")
                    connection.abort()
                    return False
                self.connection = connection
                return True
            if reply.status not in (503, None) or attempt == 39:
                self.violation(f"reconnect refused: {reply.status} {reply.ending}")
                return False
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt) if reply.status == 503 else 0.05)
        return False

    async def run_probes(self, probes: Iterable[Probe]) -> None:
        try:
            for probe in probes:
                if self.connection is None:
                    if not await self.connect():
                        return
                    self.report.reconnects += 1
                await self.send_probe(probe)
            await self.settle(wait_forwarded=True)
        finally:
            if self.connection is not None:
                await self.connection.close()
                self.connection = None

    def ids_outstanding(self) -> set[str]:
        ids = {item.expect.message_id for item in self.ordered}
        if self.in_flight is not None:
            ids.add(self.in_flight.expect.message_id)
        return ids

    async def send_probe(self, probe: Probe) -> None:
        connection = self.connection
        assert connection is not None
        expect = effective_expectation(probe, connection.deflate is not None, self.run.max_message_size)
        self.probe_number += 1
        number = self.probe_number
        if expect.outcome == "close":
            await self.settle(wait_forwarded=True)
            if self.connection is None and not await self.connect():
                return
            self.seq += 1
            await self.closing_probe(_Outstanding(probe, expect, number, self.seq))
            return
        if expect.outcome == "answer":
            # One CALL in flight, and an id is outstanding once: otherwise answers could not be told apart.
            flight_id = self.in_flight.expect.message_id if self.in_flight is not None else None
            busy = expect.forwarded and (flight_id is not None or expect.message_id in self.ids_outstanding())
            if busy or expect.message_id == flight_id:
                await self.settle(wait_forwarded=True)
            elif any(_id_in(other.probe.data, expect.message_id) for other in self.unproven if other.probe is not None):
                # A wrong answer to an earlier silent probe could pass for this answer: prove the silence first.
                await self.settle(wait_forwarded=False)
        elif self.unproven:
            # One unproven silent probe at a time, so that a stray answer names its probe exactly.
            await self.settle(wait_forwarded=False)
        if self.connection is None and not await self.connect():
            return
        connection = self.connection
        assert connection is not None
        self.seq += 1  # after any barrier the settling above sent: seq is the order on the wire
        item = _Outstanding(probe, expect, number, self.seq)
        connection.write(probe_wire_bytes(probe, connection.deflate))
        await connection.drain()
        self.report.frames += 1
        self.report.wires[probe.wire] += 1
        if expect.outcome == "answer" and expect.forwarded:
            self.in_flight = item
        elif expect.outcome == "answer":
            self.ordered.append(item)
        else:
            self.unproven.append(item)
        if len(self.ordered) + len(self.unproven) >= self.BATCH:
            await self.settle(wait_forwarded=False)

    async def closing_probe(self, item: _Outstanding) -> None:
        connection = self.connection
        assert connection is not None and item.probe is not None
        if item.probe.wire == "ws_violation" and item.probe.raw[:1] and item.probe.raw[0] & 0xF == OP_CLOSE:
            connection.close_sent = True
        connection.write(probe_wire_bytes(item.probe, connection.deflate))
        await connection.drain()
        self.report.frames += 1
        self.report.wires[item.probe.wire] += 1
        deadline = time.monotonic() + self.run.answer_timeout
        while True:
            event = await next_event(connection, deadline)
            if event is None:
                self.violation(
                    f"no close within {self.run.answer_timeout:g} s; expected {item.expect.describe()}", item
                )
                break
            if isinstance(event, Message):
                self.violation(f"sent {event.text[:120]!r}; expected {item.expect.describe()}", item)
                continue
            if isinstance(event, Lost):
                self.violation(
                    f"connection lost without a close frame ({event.how}); expected {item.expect.describe()}", item
                )
                break
            if event.code in item.expect.close_codes:
                self.report.closes[event.code] += 1
            else:
                self.violation(f"closed with {event.code} {event.reason!r}; expected {item.expect.describe()}", item)
            break
        await self.drop_connection(clean=True)

    async def drop_connection(self, clean: bool) -> None:
        connection, self.connection = self.connection, None
        self.ordered.clear()
        self.unproven.clear()
        self.in_flight = None
        if connection is None:
            return
        if clean:
            ending = await connection.finish(5.0)
            if ending == "timeout":
                self.violation("TCP left open 5 s after the close handshake")
        else:
            connection.abort()
        for fault in connection.server_faults[:3]:
            self.violation(f"server broke RFC 6455: {fault}")

    async def settle(self, wait_forwarded: bool) -> None:
        """Wait for every answer due (and the CSMS's answer when asked); prove pending silence."""
        connection = self.connection
        if connection is None:
            return
        if self.unproven:
            self.barrier_seq += 1
            barrier_id = f"~b{self.index}.{self.barrier_seq}"
            connection.send_text(f'[2,"{barrier_id}","FuzzBarrier",[]]')
            await connection.drain()
            self.report.barriers += 1
            expect = answer(barrier_id, "barrier", fault_code(self.version, "bad_payload"))
            self.seq += 1
            self.ordered.append(_Outstanding(None, expect, 0, self.seq))
        deadline = time.monotonic() + self.run.answer_timeout
        while self.ordered or (wait_forwarded and self.in_flight is not None):
            event = await next_event(connection, deadline)
            if event is None:
                for item in [*self.ordered, *([self.in_flight] if self.in_flight else [])]:
                    self.violation(
                        f"no answer within {self.run.answer_timeout:g} s; expected {item.expect.describe()}", item
                    )
                await self.drop_connection(clean=False)
                return
            if isinstance(event, Message):
                self.on_message(event.text)
                continue
            what = (
                f"closed with {event.code} {event.reason!r}"
                if isinstance(event, Closed)
                else f"connection lost without a close frame ({event.how})"
            )
            outstanding = [*self.ordered, *([self.in_flight] if self.in_flight else [])]
            self.violation(f"{what} while {len(outstanding)} answers were due")
            for item in outstanding[:2]:
                self.violation(f"{what}; expected {item.expect.describe()}", item)
            await self.drop_connection(clean=isinstance(event, Closed))
            return

    def on_message(self, text: str) -> None:
        head = answer_head(text)
        if head is None:
            self.violation(f"gateway sent a frame that is no OCPP-J answer: {text[:200]!r}")
            return
        message_type, message_id = head
        flight = self.in_flight
        if flight is not None and message_id == flight.expect.message_id and message_type in (3, 4):
            self.in_flight = None
            self.judge(text, flight, forwarded=True)
            return
        # The gateway answers frames in the order it reads them, so an answer that is not the one
        # due next skipped the answers before it, or came from the earliest probe still pending.
        # "-1" names no frame: it is the likeliest wrong id for the answer due, not a sign it was skipped.
        match = next(
            (
                k
                for k, item in enumerate(self.ordered)
                if item.expect.message_id == message_id and (k == 0 or message_id != UNREADABLE_ID)
            ),
            None,
        )
        if match is not None:
            for _ in range(match):
                skipped = self.ordered.popleft()
                self.violation(f"no answer (a later one came first); expected {skipped.expect.describe()}", skipped)
            item = self.ordered.popleft()
            self.answered_seq = item.seq
            self.judge(text, item, forwarded=False)
            if item.probe is None:
                self.report.silent += len(self.unproven)
                self.unproven.clear()
            return
        due = self.ordered[0] if self.ordered else None
        earlier_silent = [i for i in self.unproven if (due is None or i.seq < due.seq) and i.seq > self.answered_seq]
        if earlier_silent:
            culprit = earlier_silent[0]
            self.unproven.remove(culprit)
            others = (
                f" (or one of the {len(earlier_silent) - 1} ignored probes after it)" if len(earlier_silent) > 1 else ""
            )
            self.violation(f"answered {text[:160]!r}{others}; expected {culprit.expect.describe()}", culprit)
        elif due is not None and due.probe is not None:
            self.answered_seq = due.seq
            self.ordered.popleft()
            problem, _ = judge_answer(text, due.expect)
            self.violation(f"{problem}: got {text[:160]!r}; expected {due.expect.describe()}", due)
        else:
            self.violation(f"unexpected frame {text[:160]!r}")

    def judge(self, text: str, item: _Outstanding, forwarded: bool) -> None:
        problem, kind = judge_answer(text, item.expect)
        if problem is not None:
            self.violation(f"{problem}: got {text[:160]!r}; expected {item.expect.describe()}", item)
            return
        if item.probe is None:
            return
        self.report.answered += 1
        if forwarded and not (kind in item.expect.codes and kind != "CALLRESULT"):
            self.report.csms_answers[kind] += 1
        else:
            self.report.gateway_errors[kind] += 1


def _id_in(data: bytes, message_id: str) -> bool:
    return message_id == UNREADABLE_ID or json.dumps(message_id).encode() in data


@dataclass
class _FuzzRun:
    host: str
    port: int
    path: str
    ssl_context: ssl.SSLContext | None
    max_message_size: int
    answer_timeout: float
    station_prefix: str
    report: FuzzReport = field(default_factory=FuzzReport)
