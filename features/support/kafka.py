"""Direct Kafka access for the scenarios: read what the gateway published, publish as a CSMS would."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition

from ocpp_gw.config import KafkaConfig
from ocpp_gw.kafka_clients import make_consumer, make_producer
from ocpp_gw.kafka_topics import partitions_of
from ocpp_gw.routes import RouteBook, publish_to_station

Record = dict[str, Any]
Kafka = str | KafkaConfig
"""Where to reach Kafka: bootstrap servers of a plaintext broker, or the whole ``[kafka]`` settings."""


def kafka_config(kafka: Kafka, **topics: str) -> KafkaConfig:
    config = kafka if isinstance(kafka, KafkaConfig) else KafkaConfig(servers=kafka)
    names: dict[str, Any] = dict(topics)
    return dataclasses.replace(config, **names) if names else config


def read_until(
    servers: Kafka,
    topic: str,
    key: str,
    done: Callable[[list[Record]], bool],
    timeout: float = 20.0,
    headers: bool = False,
) -> list[Record]:
    """Every record of ``topic`` with ``key`` from the beginning, read until ``done`` holds; with
    ``headers``, each record's Kafka headers are under ``"_headers"`` (name to bytes)."""
    return asyncio.run(_read_until(servers, topic, key, done, timeout, headers))


async def _read_until(
    servers: Kafka, topic: str, key: str, done: Callable[[list[Record]], bool], timeout: float, headers: bool
) -> list[Record]:
    consumer = make_consumer(kafka_config(servers), topic, auto_offset_reset="earliest")
    await consumer.start()
    found: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(found):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {topic} for {key}; got {found}")
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for r in records:
                    if r.key == key.encode():
                        found.append(json.loads(r.value) | ({"_headers": dict(r.headers)} if headers else {}))
    finally:
        await consumer.stop()
    return found


def publish(servers: Kafka, topic: str, key: str, value: dict[str, Any]) -> None:
    asyncio.run(_publish(servers, topic, key, value))


async def _publish(servers: Kafka, topic: str, key: str, value: dict[str, Any]) -> None:
    producer = make_producer(kafka_config(servers))
    await producer.start()
    try:
        await producer.send_and_wait(topic, json.dumps(value).encode(), key=key.encode())
    finally:
        await producer.stop()


def call_via_routes(
    servers: Kafka,
    out_topic: str,
    routes_topic: str,
    station_id: str,
    frame: list[Any],
    expect_gateway: str | None = None,
    timeout: float = 20.0,
) -> str:
    """Publish ``frame`` on the station's current route, as a CSMS starts a call; returns the route's gateway.

    With ``expect_gateway``, first wait until the route table shows the station on that gateway.
    """
    return asyncio.run(_call_via_routes(servers, out_topic, routes_topic, station_id, frame, expect_gateway, timeout))


async def _call_via_routes(
    servers: Kafka,
    out_topic: str,
    routes_topic: str,
    station_id: str,
    frame: list[Any],
    expect_gateway: str | None,
    timeout: float,
) -> str:
    config = kafka_config(servers, out_messages_topic=out_topic, routes_topic=routes_topic)
    book = RouteBook(config)
    await book.start()
    producer = make_producer(kafka_config(servers))
    await producer.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            route = book.get(station_id)
            if route is not None and expect_gateway in (None, route.gateway_id):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"no route of {station_id} on {expect_gateway}: {route}")
            await asyncio.sleep(0.05)
        return (await publish_to_station(producer, config, book, station_id, frame)).gateway_id
    finally:
        await producer.stop()
        await book.stop()


def topic_size(servers: Kafka, topic: str) -> int:
    """How many records ``topic`` holds (the sum of its partitions' end offsets)."""
    return asyncio.run(_topic_size(servers, topic))


async def _topic_size(servers: Kafka, topic: str) -> int:
    consumer = make_consumer(kafka_config(servers))
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await partitions_of(kafka_config(servers), topic)]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


def publish_to_partition(servers: Kafka, topic: str, partition: int, key: str, value: dict[str, Any]) -> None:
    """Publish as a CSMS answering on a reply partition."""
    asyncio.run(_publish_to_partition(servers, topic, partition, key, value))


async def _publish_to_partition(servers: Kafka, topic: str, partition: int, key: str, value: dict[str, Any]) -> None:
    producer = make_producer(kafka_config(servers))
    await producer.start()
    try:
        await producer.send_and_wait(topic, json.dumps(value).encode(), key=key.encode(), partition=partition)
    finally:
        await producer.stop()


def publish_many_to_partition(
    servers: Kafka, topic: str, partition: int, key: str, values: list[dict[str, Any]]
) -> None:
    """Publish ``values`` in order with one producer (a CSMS sending a burst)."""
    asyncio.run(_publish_many_to_partition(servers, topic, partition, key, values))


async def _publish_many_to_partition(
    servers: Kafka, topic: str, partition: int, key: str, values: list[dict[str, Any]]
) -> None:
    producer = make_producer(kafka_config(servers))
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, json.dumps(value).encode(), key=key.encode(), partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
