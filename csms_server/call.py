"""``csms-server call``: start a call to one station through Kafka and wait for its answer.

The CALL goes on the partition of the station's current route (``station_routes``); the answer
comes back on ``messages_in`` like any other station frame, with the request attached.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ocpp_gw.config import Config
from ocpp_gw.core.frames import load_json
from ocpp_gw.core.protocol import MessageType
from ocpp_gw.kafka_clients import check_access, make_consumer, make_producer
from ocpp_gw.kafka_topics import partitions_of
from ocpp_gw.routes import RouteBook, StationOffline, publish_to_station

EXIT_CALLERROR = 1
EXIT_TIMEOUT = 2
EXIT_OFFLINE = 3


async def call_station(config: Config, station_id: str, action: str, payload: dict[str, Any]) -> int:
    """Publish the CALL, print the answer's payload (or the CALLERROR) as JSON; the exit status says which."""
    kafka = config.kafka
    await check_access(kafka)
    routes = RouteBook(kafka)
    consumer = make_consumer(kafka, enable_auto_commit=False)
    producer = make_producer(kafka)
    await routes.start()
    await consumer.start()
    await producer.start()
    try:
        partitions = [
            TopicPartition(kafka.in_messages_topic, p) for p in await partitions_of(kafka, kafka.in_messages_topic)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        message_id = str(uuid.uuid4())
        try:
            route = await publish_to_station(
                producer, kafka, routes, station_id, [MessageType.CALL, message_id, action, payload]
            )
        except StationOffline:
            print(f"csms-server call: station {station_id} is not connected to any gateway", file=sys.stderr)
            return EXIT_OFFLINE
        answer = await asyncio.wait_for(_answer(consumer, station_id, message_id), config.csms.call_timeout)
    except TimeoutError:
        print(f"csms-server call: no answer from {station_id} within {config.csms.call_timeout:g} s", file=sys.stderr)
        return EXIT_TIMEOUT
    finally:
        await producer.stop()
        await consumer.stop()
        await routes.stop()
    frame = answer["frame"]
    if frame[0] == MessageType.CALLRESULT:
        print(json.dumps(frame[2]))
        return 0
    error = {"errorCode": frame[2], "errorDescription": frame[3], "errorDetails": frame[4], "origin": answer["origin"]}
    print(json.dumps(error))
    print(f"csms-server call: {action} via {route.gateway_id} answered with CALLERROR {frame[2]}", file=sys.stderr)
    return EXIT_CALLERROR


async def _answer(consumer: AIOKafkaConsumer, station_id: str, message_id: str) -> dict[str, Any]:
    key = station_id.encode()
    while True:
        batches = await consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                if record.key != key or record.value is None:
                    continue
                document = load_json(record.value)
                if (
                    isinstance(document, dict)
                    and document.get("message_id") == message_id
                    and document.get("message_type") in (MessageType.CALLRESULT, MessageType.CALLERROR)
                ):
                    return document
