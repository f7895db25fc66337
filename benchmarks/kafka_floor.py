"""Kafka's own floor on this machine: the gateway's two hops with nothing else in the way.

``ping`` produces a Heartbeat-sized record (the gateway's headers, a ``messages_in``-sized value)
at a fixed rate, keyed over ``--stations`` keys, and reads the echo; ``echo`` reads each record and
produces it back on the same partition of the second topic, as the reference CSMS does. Both use
the programs' own clients (:func:`ocpp_gw.kafka_clients.make_producer` and ``make_consumer``: acks
all, idempotent, no linger), so the difference between this and the gateway's figures is what the
gateway and the CSMS add. ``ping`` prints the load generator's summary as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from charge_station.load import Recorder, measuring
from ocpp_gw.cli import event_loop_factory
from ocpp_gw.config import KafkaConfig
from ocpp_gw.kafka_clients import make_consumer, make_producer
from ocpp_gw.kafka_topics import ensure_topics, partitions_of

HEADERS = [
    ("station_id", b"FLOOR_0000"),
    ("protocol", b"ocpp2.0.1"),
    ("gateway_id", b"bench-gw"),
    ("kind", b"frame"),
    ("envelope_version", b"1"),
    ("reply_partition", b"3"),
    ("correlation_id", b"FLOOR_0000/FLOOR_0000-1"),
]
VALUE_BYTES = 330
"""About the size of a Heartbeat's ``messages_in`` value."""


async def assigned_consumer(config: KafkaConfig, topic: str) -> AIOKafkaConsumer:
    """A consumer of every partition of ``topic``, its positions fixed at the end."""
    consumer = make_consumer(config, auto_offset_reset="latest", enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in await partitions_of(config, topic)]
    consumer.assign(partitions)
    for tp in partitions:
        await consumer.position(tp)  # fixed now: nothing produced after "ready" falls before it
    return consumer


async def echo(config: KafkaConfig, source: str, target: str) -> None:
    consumer = await assigned_consumer(config, source)
    producer = make_producer(config)
    await producer.start()
    print("echo ready", flush=True)
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    await producer.send(
                        target, value=record.value, key=record.key, partition=tp.partition, headers=list(record.headers)
                    )
    finally:
        await producer.stop()
        await consumer.stop()


async def ping(
    config: KafkaConfig, source: str, target: str, stations: int, rate: float, duration: float
) -> dict[str, Any]:
    consumer = await assigned_consumer(config, target)
    producer = make_producer(config)
    await producer.start()
    recorder = Recorder()
    sent: dict[bytes, float] = {}
    body = b"x" * VALUE_BYTES

    async def read() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    started = sent.pop(record.value[:16], None)
                    if started is not None:
                        recorder.done(time.monotonic() - started)

    reading = asyncio.create_task(read())
    interval, sequence = 1 / rate, 0
    measuring("start")
    began = next_at = time.monotonic()
    end = began + duration
    while next_at < end:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        sequence += 1
        tag = f"{sequence:016d}".encode()
        sent[tag] = time.monotonic()
        key = f"FLOOR_{sequence % stations:04d}".encode()
        await producer.send(source, value=tag + body, key=key, headers=HEADERS)
        next_at += interval
    deadline = time.monotonic() + 10
    while sent and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    measuring("end")
    recorder.errors.update({"lost": len(sent)} if sent else {})
    reading.cancel()
    await producer.stop()
    await consumer.stop()
    return {"mode": "floor", "stations": stations, **recorder.summary(duration)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kafka-floor", description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("ping", "echo"))
    parser.add_argument("--servers", default="127.0.0.1:9092")
    parser.add_argument("--topics", default="floor_a,floor_b", help="the two topics, created when missing")
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    config = KafkaConfig(servers=args.servers)
    first, second = args.topics.split(",")

    async def run() -> dict[str, Any] | None:
        await ensure_topics(config, first, second)
        if args.role == "echo":
            await echo(config, first, second)
            return None
        return await ping(config, first, second, args.stations, args.rate, args.duration)

    with asyncio.Runner(loop_factory=event_loop_factory("uvloop")) as runner:
        result = runner.run(run())
    if result is not None:
        print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
