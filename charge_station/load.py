"""``python -m charge_station.load``: thousands of lightweight stations in one process, for benchmarks.

Stations speak raw OCPP-J 2.0.1 over websockets (no per-message schema work, so the generator is not
the bottleneck). Modes:

- ``open``: a fixed total rate of Heartbeats spread evenly over the stations;
- ``closed``: every station sends its next Heartbeat as soon as the last one is answered;
- ``idle``: connect stations in steps and hold them (the harness samples the server's memory);
- ``storm``: connect and boot, drop every connection at once, reconnect and boot again;
- ``hold``: connect and boot, then answer every CSMS CALL with an empty CALLRESULT until
  ``--duration`` ends or SIGTERM (the scale-out run reaches every station through Kafka).

Every call's round-trip time and every error is recorded; the result is one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import signal
import sys
import time
from array import array
from collections import Counter
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from ocpp_gw.cli import event_loop_factory

BOOT = {"chargingStation": {"vendorName": "LoadGen", "model": "L1"}, "reason": "PowerUp"}
CALL_TIMEOUT = 30.0


def measuring(phase: str) -> None:
    """Mark the measured window's start and end on stderr, for a harness that samples CPU around it."""
    print(orjson.dumps({"measuring": phase}).decode(), file=sys.stderr, flush=True)


class Recorder:
    """Round-trip times, completions per second and errors by kind."""

    def __init__(self) -> None:
        self.rtts = array("d")
        self.errors: Counter[str] = Counter()
        self.per_second: Counter[int] = Counter()
        self.started = time.monotonic()

    def done(self, rtt: float) -> None:
        self.rtts.append(rtt)
        self.per_second[int(time.monotonic() - self.started)] += 1

    def failed(self, kind: str) -> None:
        self.errors[kind] += 1

    def summary(self, seconds: float) -> dict[str, Any]:
        ordered = sorted(self.rtts)

        def pct(q: float) -> float | None:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else None

        return {
            "calls": len(ordered),
            "seconds": seconds,
            "rate": len(ordered) / seconds if seconds else 0.0,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "max_ms": ordered[-1] * 1000 if ordered else None,
            "errors": dict(self.errors),
            "per_second": [self.per_second.get(s, 0) for s in range(int(seconds) + 1)],
            "rtt_sample_ms": [r * 1000 for r in ordered[:: max(1, len(ordered) // 5000)]],
        }


class LoadStation:
    def __init__(self, url: str, station_id: str, recorder: Recorder, compression: bool) -> None:
        self.url, self.station_id, self.recorder, self.compression = url, station_id, recorder, compression
        self.connection: ClientConnection | None = None
        self.sequence = 0

    async def connect(self, attempts: int = 20) -> bool:
        for attempt in range(attempts):
            try:
                self.connection = await websockets.connect(
                    f"{self.url}/{self.station_id}",
                    subprotocols=[websockets.Subprotocol("ocpp2.0.1")],
                    compression="deflate" if self.compression else None,
                    open_timeout=30,
                    ping_interval=None,
                    max_queue=4,
                    proxy=None,  # looking for one reads the whole environment at every connect
                )
                return True
            except websockets.exceptions.InvalidStatus as refused:
                self.recorder.failed(f"http_{refused.response.status_code}")
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as error:
                self.recorder.failed(type(error).__name__)
            await asyncio.sleep(random.uniform(0.2, 1.0) * min(8, 2**attempt))
        return False

    async def call(self, action: str, payload: dict[str, Any]) -> bool:
        assert self.connection is not None
        self.sequence += 1
        message_id = f"{self.station_id}-{self.sequence}"
        started = time.monotonic()
        try:
            await self.connection.send(orjson.dumps([2, message_id, action, payload]).decode())
            answer = orjson.loads(await asyncio.wait_for(self.connection.recv(), CALL_TIMEOUT))
        except TimeoutError:
            self.recorder.failed("timeout")
            return False
        except websockets.exceptions.ConnectionClosed:
            self.recorder.failed("closed")
            return False
        if answer[0] != 3 or answer[1] != message_id:
            self.recorder.failed(f"answer_type_{answer[0]}")
            return False
        self.recorder.done(time.monotonic() - started)
        return True

    async def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()


async def connect_all(stations: list[LoadStation], concurrency: int, boot: bool, attempts: int = 20) -> int:
    """Connect (and boot) every station, ``concurrency`` handshakes at a time; returns how many made it."""
    gate = asyncio.Semaphore(concurrency)

    async def one(station: LoadStation) -> bool:
        async with gate:
            if not await station.connect(attempts):
                return False
        return await station.call("BootNotification", BOOT) if boot else True

    return sum(await asyncio.gather(*(one(s) for s in stations)))


async def open_loop(stations: list[LoadStation], rate: float, duration: float) -> None:
    interval = len(stations) / rate
    end = time.monotonic() + duration

    async def run(station: LoadStation, offset: float) -> None:
        next_at = time.monotonic() + offset
        while next_at < end:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if not await station.call("Heartbeat", {}):
                return
            next_at += interval

    await asyncio.gather(*(run(s, i * interval / len(stations)) for i, s in enumerate(stations)))


async def closed_loop(stations: list[LoadStation], duration: float) -> None:
    end = time.monotonic() + duration

    async def run(station: LoadStation) -> None:
        while time.monotonic() < end:
            if not await station.call("Heartbeat", {}):
                return

    await asyncio.gather(*(run(s) for s in stations))


async def hold(stations: list[LoadStation], duration: float) -> int:
    """Answer every CSMS CALL until ``duration`` ends or SIGTERM; the number of calls answered."""
    answered = 0
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def answer(station: LoadStation) -> None:
        nonlocal answered
        assert station.connection is not None
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            async for message in station.connection:
                frame = orjson.loads(message)
                if frame[0] == 2:
                    await station.connection.send(orjson.dumps([3, frame[1], {}]).decode())
                    answered += 1

    answering = [asyncio.create_task(answer(s)) for s in stations if s.connection is not None]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), duration)
    for task in answering:
        task.cancel()
    return answered


def collect_between_phases() -> None:
    """Free the last phase's reference cycles (closed connections) now, while nothing is measured.

    The generator runs with the cyclic garbage collector off: it shares the machine's cores with
    what it measures, and with Python's default thresholds its full collections over thousands of
    connections took half of its CPU during a reconnect storm, CPU the gateway then did not get.
    """
    gc.collect()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    gc.disable()
    recorder = Recorder()
    stations = [LoadStation(args.url, f"{args.prefix}{i}", recorder, args.compression) for i in range(args.stations)]
    result: dict[str, Any] = {"mode": args.mode, "stations": args.stations}
    started = time.monotonic()
    connected = await connect_all(stations, args.concurrency, boot=args.mode != "idle", attempts=args.attempts)
    result["connected"] = connected
    result["connect_seconds"] = time.monotonic() - started
    result["connect_errors"] = dict(recorder.errors)
    collect_between_phases()
    try:
        if args.mode in ("open", "closed"):
            recorder.rtts, recorder.per_second, recorder.started = array("d"), Counter(), time.monotonic()
            recorder.errors.clear()  # the connect phase's are in connect_errors
            measuring("start")
            began = time.monotonic()
            if args.mode == "open":
                await open_loop(stations, args.rate, args.duration)
            else:
                await closed_loop(stations, args.duration)
            measuring("end")
            result.update(recorder.summary(time.monotonic() - began))
        elif args.mode in ("idle", "hold"):
            print(orjson.dumps({"holding": connected}).decode(), file=sys.stderr, flush=True)
            if args.mode == "idle":
                await asyncio.sleep(args.duration)
            else:
                result["answered"] = await hold(stations, args.duration)
        elif args.mode == "storm":
            await asyncio.gather(*(s.close() for s in stations))
            collect_between_phases()
            recorder.errors.clear()
            measuring("start")
            began = time.monotonic()
            back = await connect_all(stations, args.concurrency, boot=True)
            result.update(back=back, storm_seconds=time.monotonic() - began, errors=dict(recorder.errors))
            measuring("end")
            result["calls"] = back
    finally:
        await asyncio.gather(*(s.close() for s in stations))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="charge-station-load", description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("open", "closed", "idle", "storm", "hold"))
    parser.add_argument("--url", default="ws://127.0.0.1:9000/ocpp")
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100.0, help="open loop: Heartbeats per second in total")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=200, help="handshakes in progress at once")
    parser.add_argument("--prefix", default="LOAD_")
    parser.add_argument("--compression", action="store_true")
    parser.add_argument("--attempts", type=int, default=20, help="handshakes a station tries before giving up")
    parser.add_argument("--event-loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=event_loop_factory(args.event_loop)) as runner:
        result = runner.run(main_async(args))
    print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
