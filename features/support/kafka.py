"""Direct Kafka access for the scenarios: read what the gateway published, publish as a CSMS would."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

Record = dict[str, Any]


def read_until(
    servers: str, topic: str, key: str, done: Callable[[list[Record]], bool], timeout: float = 20.0
) -> list[Record]:
    """Every record of ``topic`` with ``key`` from the beginning, read until ``done`` holds."""
    return asyncio.run(_read_until(servers, topic, key, done, timeout))


async def _read_until(
    servers: str, topic: str, key: str, done: Callable[[list[Record]], bool], timeout: float
) -> list[Record]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    found: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(found):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {topic} for {key}; got {found}")
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                found += [json.loads(r.value) for r in records if r.key == key.encode()]
    finally:
        await consumer.stop()
    return found


def publish(servers: str, topic: str, key: str, value: dict[str, Any]) -> None:
    asyncio.run(_publish(servers, topic, key, value))


async def _publish(servers: str, topic: str, key: str, value: dict[str, Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers)
    await producer.start()
    try:
        await producer.send_and_wait(topic, json.dumps(value).encode(), key=key.encode())
    finally:
        await producer.stop()
