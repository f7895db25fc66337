"""Faults of a replicated cluster (three SASL_SSL nodes): the leader killed, a rolling restart, one node's link stalled.

With replication factor 3 and ``min.insync.replicas`` 2, losing any one node must cost no record and
no answer: partitions it led elect a new leader within seconds and the clients follow it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from ocpp_gw.config import KafkaConfig
from ocpp_gw.kafka_clients import make_admin

if TYPE_CHECKING:
    from .run import Run

IN_SYNC_TIMEOUT = 90.0
"""Seconds a restarted node may take to catch up (every replica in sync again)."""


async def partition_state(kafka: KafkaConfig) -> list[dict[str, Any]]:
    """Leader and in-sync replicas of every partition of the scenario's topics."""
    admin = make_admin(kafka)
    await admin.start()
    try:
        topics = [kafka.in_messages_topic, kafka.out_messages_topic, kafka.routes_topic]
        return [p for topic in await admin.describe_topics(topics) for p in topic["partitions"]]
    finally:
        await admin.close()


async def busiest_leader(kafka: KafkaConfig) -> int:
    """The node that leads the most partitions in use (the one whose loss hurts most)."""
    leaders = Counter(p["leader"] for p in await partition_state(kafka) if p["leader"] >= 0)
    return int(leaders.most_common(1)[0][0])


async def all_in_sync(kafka: KafkaConfig, replicas: int) -> float:
    """Wait until every partition has all its replicas in sync; returns the seconds it took."""
    started = time.monotonic()
    while True:
        try:
            if all(len(p["isr"]) >= replicas for p in await partition_state(kafka)):
                return time.monotonic() - started
        except Exception:
            pass
        if time.monotonic() - started > IN_SYNC_TIMEOUT:
            raise TimeoutError(f"replicas not in sync within {IN_SYNC_TIMEOUT:g} s")
        await asyncio.sleep(0.5)


async def leader_kill(run: Run) -> dict[str, Any]:
    """SIGKILL the node leading most partitions in use, under load; restart it after the outage."""
    harness, kafka = run.harness, run.caller.kafka
    victim = await busiest_leader(kafka)
    disconnects = run.fleet.stats.disconnects
    killed = time.monotonic()
    await asyncio.to_thread(harness.kafka, "kill", victim)
    await asyncio.sleep(harness.sizes.outage)
    await asyncio.to_thread(harness.kafka, "resume", victim)
    back = time.monotonic()
    caught_up = await all_in_sync(kafka, harness.nodes)
    return {
        "killed_node": victim,
        "node_down_seconds": round(back - killed, 1),
        "seconds_to_in_sync": round(caught_up, 1),
        "station_disconnects": run.fleet.stats.disconnects - disconnects,
    }


async def rolling_restart(run: Run) -> dict[str, Any]:
    """Stop and restart every node in turn, each once the previous one is back in sync (as operators do)."""
    harness, kafka = run.harness, run.caller.kafka
    started = time.monotonic()
    disconnects = run.fleet.stats.disconnects
    for node in range(1, harness.nodes + 1):
        await asyncio.to_thread(harness.kafka, "stop", node)
        await asyncio.to_thread(harness.kafka, "resume", node)
        await all_in_sync(kafka, harness.nodes)
    return {
        "restart_seconds": round(time.monotonic() - started, 1),
        "station_disconnects": run.fleet.stats.disconnects - disconnects,
    }


async def node_stall(run: Run) -> dict[str, Any]:
    """Stall the gateway's link to the busiest leader (the node stays in the cluster), then break and heal it."""
    harness, kafka = run.harness, run.caller.kafka
    victim = await busiest_leader(kafka)
    proxy = run.proxies[victim - 1]
    proxy.pause()
    await asyncio.sleep(harness.sizes.outage)
    proxy.drop()
    proxy.resume()
    recovered = await run.gateways_ready()
    return {"stalled_node": victim, "seconds_to_ready": round(recovered, 1)}
