"""The topics the programs use: created on first start with production settings, and their partitions."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from .config import KafkaConfig
from .kafka_clients import MAX_RECORD_BYTES, make_admin

log = logging.getLogger(__name__)


async def ensure_topics(config: KafkaConfig, *topics: str, compacted: tuple[str, ...] = ()) -> None:
    """Create the topics that do not exist yet, with the configured partitions and replicas.

    Without a ``replica_factor``, a cluster of three or more brokers gets the production default:
    three replicas and ``min.insync.replicas`` 2, so with ``acks=all`` a record survives the loss of
    any one broker and a second loss stops writes rather than losing them.
    """
    admin = make_admin(config)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in topics if topic not in existing]
        if not missing:
            return
        brokers = len((await admin.describe_cluster())["brokers"])
        replicas = config.replica_factor or min(3, max(1, brokers))
        try:
            await admin.create_topics(
                [
                    NewTopic(t, config.num_partitions, replicas, topic_configs=topic_settings(replicas, t in compacted))
                    for t in missing
                ]
            )
            log.info(
                "created topics",
                extra={
                    "topics": missing,
                    "partitions": config.num_partitions,
                    "replicas": replicas,
                    "brokers": brokers,
                },
            )
        except TopicAlreadyExistsError:
            pass
        await _wait_for_leaders(admin, missing)
    finally:
        await admin.close()


TOMBSTONE_RETENTION_MS = 7 * 24 * 3600 * 1000
"""How long a compacted topic keeps a tombstone (a revocation, a route's end) after compaction: a
gateway that starts within a week still reads it. Kafka's default is one day."""


def topic_settings(replicas: int, compacted: bool) -> dict[str, str]:
    """The configuration of a topic the programs create."""
    settings = {"max.message.bytes": str(MAX_RECORD_BYTES)}
    if replicas >= 3:
        settings["min.insync.replicas"] = "2"
    if compacted:
        settings |= {"cleanup.policy": "compact", "delete.retention.ms": str(TOMBSTONE_RETENTION_MS)}
    return settings


TOPIC_APPEARS_SECONDS = 10.0
"""How long a topic may take to show in the metadata of the broker asked: brokers of a cluster learn of a
new topic one after another, so one may not know yet a topic another has just created."""


async def partitions_of(config: KafkaConfig, topic: str, timeout: float = TOPIC_APPEARS_SECONDS) -> list[int]:
    """The partition numbers of ``topic``; ``KafkaError`` if it does not show within ``timeout`` seconds."""
    admin = make_admin(config)
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            [described] = await admin.describe_topics([topic])
            if described["error_code"] == 0 and described["partitions"]:
                return sorted(p["partition"] for p in described["partitions"])
            if asyncio.get_running_loop().time() >= deadline:
                raise KafkaError(f"topic {topic} does not exist")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topics: list[str], timeout: float = 30.0) -> None:
    """Wait until new topics' partitions all have leaders, so consumers see them when they join.

    A consumer that joins before a fresh topic shows up in metadata gets an empty assignment and
    would not notice the topic until its next metadata refresh.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(topics)
        ready = [
            t
            for t in described
            if t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
        ]
        if len(ready) == len(topics):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise KafkaError(f"topics {topics} have no partition leaders after {timeout:g} s")
        await asyncio.sleep(0.1)
