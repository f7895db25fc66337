"""``make chaos``: faults and hostile input against real processes, each reported with counted invariants.

Every fault scenario starts a fresh set of topics, the reference CSMS and one or two gateways on
a broker of its own, runs a fleet of stations (all three OCPP versions) and a CSMS caller, injects
the fault under that load, lets the system recover, stops new calls and waits for the last answers.
The report counts, for each side, the calls, how they were answered, and the ones that were not
(which must be 0). ``--short`` runs the same scenarios small and brief for ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from ocpp_gw.cli import event_loop_factory
from ocpp_gw.config import load_config
from ocpp_gw.core.envelope import EnvelopeError, decode_in_record
from ocpp_gw.core.frames import Call
from ocpp_gw.kafka_clients import make_consumer
from ocpp_gw.kafka_topics import partitions_of
from testing.harness import (
    FLEET_FROM_ONE_ADDRESS,
    ROOT,
    Process,
    await_until,
    csms_env,
    gateway_env,
    kafka_client_env,
    kafka_sh,
    ready,
    topics_env,
)

from . import abuse, cluster
from .caller import CsmsCaller
from .fleet import Fleet
from .proxy import StallingProxy

KAFKA_PORT, PROXIED_PORT, PROXY_PORT = 31092, 31094, 31095
CLUSTER_PORT, CLUSTER_PROXIED_PORT, CLUSTER_PROXY_PORT = 31192, 31200, 31210
"""The secured three-node cluster: client ports 31192-31194, controllers 31195-31197, proxied 31200-31202."""
CLUSTER_NODES = 3
RECOVERY_LIMIT = 15.0
"""Station calls must be answered by the CSMS again within this many seconds of the broker answering."""
GATEWAY_PORT, GATEWAY_STATUS, CSMS_STATUS = 31000, 31010, 31020
RESPONSE_TIMEOUT = 5.0
"""The gateway's timeouts for both directions in these runs (seconds)."""
SESSION_TIMEOUT_MARGIN = 15.0
"""A dead gateway's partitions move after its Kafka session times out (10 s); CSMS calls may wait for it."""
STOP_TIMEOUT = 30.0
"""Seconds a program may take to end after SIGTERM before it is killed."""


@dataclass(frozen=True)
class Sizes:
    stations: int = 300
    interval: float = 1.0
    csms_rate: float = 20.0
    warmup: float = 10.0
    outage: float = 10.0
    after: float = 20.0
    fuzz_frames: int = 1_000_000
    flood_calls: int = 2000


SHORT = Sizes(stations=60, interval=0.5, csms_rate=10.0, warmup=3.0, outage=10.0, after=6.0, fuzz_frames=2000)


class Harness:
    """The processes of one scenario and the broker they share."""

    def __init__(self, sizes: Sizes, logs: Path, cluster: bool = False) -> None:
        self.sizes, self.logs, self.cluster = sizes, logs, cluster
        port, proxied, proxy = (
            (CLUSTER_PORT, CLUSTER_PROXIED_PORT, CLUSTER_PROXY_PORT)
            if cluster
            else (KAFKA_PORT, PROXIED_PORT, PROXY_PORT)
        )
        self.nodes = CLUSTER_NODES if cluster else 1
        self.ports = [(port + n, proxied + n, proxy + n) for n in range(self.nodes)]
        """Per node: client port, proxied port, proxy port."""
        self.kafka_env = {
            "KAFKA_PORT": str(port),
            "KAFKA_PROXIED_PORT": str(proxied),
            "KAFKA_PROXY_PORT": str(proxy),
            **({"KAFKA_BROKERS": str(CLUSTER_NODES), "KAFKA_SECURITY": "sasl_ssl"} if cluster else {}),
        }
        self.client_env: dict[str, str] = {"OCPPGW_KAFKA__SERVERS": f"127.0.0.1:{port}"}
        self.gateways: list[Process] = []
        self.csms: list[Process] = []
        self.env: dict[str, str] = {}

    def kafka(self, command: str, node: int | None = None) -> None:
        """Run a kafka.sh command, on one node or all; after ``start``, read the client settings it wrote."""
        kafka_sh(self.kafka_env, command, *([str(node)] if node is not None else []), quiet=True)
        if command == "start":
            self.client_env = kafka_client_env(self.ports[0][0])

    def fresh_topics(self, name: str, via_proxy: bool) -> None:
        suffix = f"{name}_{int(time.time() * 1000)}"
        self.env = {
            "OCPPGW_LOGGING__LEVEL": "WARNING",
            "OCPPGW_LOGGING__FORMAT": "json",
            **self.client_env,
            **topics_env("chaos", suffix, gateways="gw"),
        }
        self.gateway_servers = (
            ",".join(f"127.0.0.1:{proxy}" for _, _, proxy in self.ports)
            if via_proxy
            else self.client_env["OCPPGW_KAFKA__SERVERS"]
        )

    def start_csms(self) -> Process:
        n = len(self.csms)
        name = f"csms-{n}-{self.env['OCPPGW_KAFKA__IN_MESSAGES_TOPIC']}"
        csms = Process(name, "csms_server", csms_env(self.env, CSMS_STATUS + n), self.logs)
        self.csms.append(csms)
        csms.wait_ready(CSMS_STATUS + n)
        return csms

    def start_gateway(self, **settings: str) -> Process:
        n = len(self.gateways)
        env = gateway_env(
            {**self.env, "OCPPGW_KAFKA__SERVERS": self.gateway_servers},
            GATEWAY_PORT + n,
            GATEWAY_STATUS + n,
            f"chaos-gw-{n}",
            **{
                "csms_response_timeout": str(RESPONSE_TIMEOUT),
                "station_response_timeout": str(RESPONSE_TIMEOUT),
                "handshake_rate": "5000",
                **FLEET_FROM_ONE_ADDRESS,
                "station_message_rate": "1000",
                "station_message_burst": "1000",
                **settings,
            },
        )
        name = f"gateway-{n}-{self.env['OCPPGW_KAFKA__IN_MESSAGES_TOPIC']}"
        gateway = Process(name, "ocpp_gw", env, self.logs)
        self.gateways.append(gateway)
        gateway.wait_ready(GATEWAY_STATUS + n)
        return gateway

    def urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{GATEWAY_PORT + n}/ocpp" for n in range(len(self.gateways))]

    def crashed(self) -> list[str]:
        """Programs that ended without being told to (a crash)."""
        return [p.name for p in (*self.gateways, *self.csms) if p.exit_code is not None and not p.killed]

    def stop_all(self) -> None:
        for process in (*self.gateways, *self.csms):
            process.stop(STOP_TIMEOUT)
        self.gateways, self.csms = [], []


async def pause(seconds: float) -> None:
    """Keep the load running for ``seconds`` (a scenario phase, not a wait for a condition)."""
    await asyncio.sleep(seconds)


Fault = Callable[["Run"], Awaitable[dict[str, Any]]]


class Run:
    """One fault scenario in progress: the harness, the fleet and the CSMS caller."""

    def __init__(self, harness: Harness, fleet: Fleet, caller: CsmsCaller, proxies: list[StallingProxy]) -> None:
        self.harness, self.fleet, self.caller, self.proxies = harness, fleet, caller, proxies
        self.proxy = proxies[0]
        self.bus_back: float | None = None
        """When the broker answered again after a broker fault (fleet clock): recovery is measured from it."""

    async def all_connected(self, timeout: float = 60) -> float:
        want = len(self.fleet.stations)
        return await await_until(lambda: len(self.fleet.connected()) == want, timeout, f"all {want} stations connected")

    async def gateways_ready(self, timeout: float = 120) -> float:
        ports = [GATEWAY_STATUS + n for n, g in enumerate(self.harness.gateways) if g.exit_code is None]
        return await await_until(
            lambda: all(ready(port) for port in ports), timeout, "gateways ready again", blocking=True
        )


async def broker_outage(run: Run, command: str) -> dict[str, Any]:
    disconnects = run.fleet.stats.disconnects
    down = time.monotonic()
    await asyncio.to_thread(run.harness.kafka, command)
    await pause(run.harness.sizes.outage)
    await asyncio.to_thread(run.harness.kafka, "resume")
    run.bus_back = run.fleet.clock()
    recovered = await run.gateways_ready()
    return {
        "station_disconnects": run.fleet.stats.disconnects - disconnects,
        "seconds_to_ready": round(recovered, 1),
        "bus_down_seconds": round(time.monotonic() - down, 1),
    }


async def broker_stop(run: Run) -> dict[str, Any]:
    return await broker_outage(run, "stop")


async def broker_kill(run: Run) -> dict[str, Any]:
    return await broker_outage(run, "kill")


async def gateway_kill(run: Run) -> dict[str, Any]:
    victim, url = run.harness.gateways[0], run.harness.urls()[0]
    moving = len(run.fleet.connected(url))
    victim.kill()
    started = time.monotonic()
    await await_until(lambda: not run.fleet.connected(url), 30, "the killed gateway's stations noticed")
    await run.all_connected()
    return {
        "stations_moved": moving,
        "seconds_until_all_reconnected": round(time.monotonic() - started, 1),
        "reconnects": run.fleet.stats.disconnects,
    }


async def csms_restart(run: Run) -> dict[str, Any]:
    run.harness.csms[0].kill()
    await pause(run.harness.sizes.outage / 2)
    await asyncio.to_thread(run.harness.start_csms)
    await pause(run.harness.sizes.outage / 2)
    await asyncio.to_thread(run.harness.start_csms)
    return {"csms_workers_at_end": sum(1 for c in run.harness.csms if c.exit_code is None)}


async def link_stall(run: Run) -> dict[str, Any]:
    proxy = run.proxy
    gateway = run.harness.gateways[0]
    before = gateway.rss_bytes()
    peak = before
    proxy.pause()
    deadline = time.monotonic() + run.harness.sizes.outage
    while time.monotonic() < deadline:
        peak = max(peak, gateway.rss_bytes())
        await asyncio.sleep(0.5)
    proxy.drop()
    proxy.resume()
    recovered = await run.gateways_ready()
    return {
        "rss_growth_mb": round((peak - before) / 2**20, 1),
        "seconds_to_ready": round(recovered, 1),
        "station_disconnects": run.fleet.stats.disconnects,
    }


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: Fault
    gateways: int = 1
    via_proxy: bool = False
    check_duplicates: bool = True
    cluster: bool = False


FAULTS = (
    Scenario("broker-stop", broker_stop),
    Scenario("broker-kill", broker_kill),
    Scenario("gateway-kill", gateway_kill, gateways=2, check_duplicates=False),
    Scenario("csms-restart", csms_restart),
    Scenario("link-stall", link_stall, via_proxy=True),
    Scenario("cluster-leader-kill", cluster.leader_kill, cluster=True),
    Scenario("cluster-rolling-restart", cluster.rolling_restart, cluster=True),
    Scenario("cluster-node-stall", cluster.node_stall, via_proxy=True, cluster=True),
)


async def run_fault(harness: Harness, scenario: Scenario) -> dict[str, Any]:
    """Load, fault, recovery, drain; then the ledgers of both sides and the scenario's own figures."""
    sizes = harness.sizes
    harness.fresh_topics(scenario.name, scenario.via_proxy)
    async with contextlib.AsyncExitStack() as stack:
        proxies = [
            await stack.enter_async_context(StallingProxy(proxy, proxied)) for _, proxied, proxy in harness.ports
        ]
        await asyncio.to_thread(harness.start_csms)
        for _ in range(scenario.gateways):
            await asyncio.to_thread(harness.start_gateway)
        config = load_config(ROOT / "config.cfg", harness.env)
        fleet = Fleet(harness.urls(), sizes.stations, sizes.interval, RESPONSE_TIMEOUT + 3)
        fleet.start()
        caller = CsmsCaller(config.kafka, sizes.csms_rate, fleet.connected)
        run = Run(harness, fleet, caller, proxies)
        try:
            await run.all_connected()
            await caller.start()
            await pause(sizes.warmup)
            details = await scenario.fault(run)
            await pause(sizes.after)
            recovery = None if run.bus_back is None else fleet.ledger.first_peer_answer_after(run.bus_back)
            await caller.stop_sending()
            await fleet.stop()
            # A CSMS call Kafka took just before the broker went down waits out the outage as well.
            csms_deadline = RESPONSE_TIMEOUT + SESSION_TIMEOUT_MARGIN + details.get("bus_down_seconds", 0.0)
            await poll_quietly(lambda: caller.ledger.outstanding() == 0, csms_deadline)
            crashed = harness.crashed()
        finally:
            await caller.close()
            await asyncio.to_thread(harness.stop_all)
    stations = fleet.ledger.report(RESPONSE_TIMEOUT + 3)
    details["seconds_of_gateway_answers"] = round(fleet.ledger.gateway_answer_span(), 1)
    csms = caller.ledger.report(csms_deadline)
    result: dict[str, Any] = {
        "stations": asdict(stations),
        "csms": asdict(csms),
        "csms_calls_not_sent": dict(caller.not_sent),
        "crashed": crashed,
        **details,
    }
    if scenario.check_duplicates:
        result["published_twice"] = await published_twice(config.kafka, resent=resent_ids(fleet))
    recovered = True
    if run.bus_back is not None:
        seconds = None if recovery is None else round(recovery - run.bus_back, 1)
        result["seconds_to_csms_answers"] = seconds
        recovered = seconds is not None and seconds <= RECOVERY_LIMIT
    result["holds"] = (
        stations.holds and csms.holds and not crashed and not result.get("published_twice", 0) and recovered
    )
    return result


def resent_ids(fleet: Fleet) -> set[str]:
    return {message_id for message_id, record in fleet.ledger.calls.items() if record.resends}


async def published_twice(kafka: Any, resent: set[str]) -> int:
    """Station CALLs found more than once on ``messages_in`` (the CSMS would act on them twice)."""
    topic = kafka.in_messages_topic
    consumer = make_consumer(kafka)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen: Counter[tuple[bytes | None, str]] = Counter()
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    try:
                        found = decode_in_record(record.key, record.value, record.headers)
                    except EnvelopeError:
                        continue
                    call = found.frame
                    if (
                        isinstance(call, Call)
                        and not call.send
                        and found.origin == "station"
                        and call.message_id not in resent
                    ):
                        seen[(record.key, call.message_id)] += 1
        return sum(count - 1 for count in seen.values())
    finally:
        await consumer.stop()


async def poll_quietly(condition: Callable[[], bool], timeout: float) -> None:
    """Like :func:`~testing.harness.await_until`, but a timeout is a finding the report shows, not an error."""
    with contextlib.suppress(TimeoutError):
        await await_until(condition, timeout, "")


# Hostile input: one gateway, bystander stations whose ledger must stay clean.


async def run_abuse(harness: Harness) -> dict[str, Any]:
    sizes = harness.sizes
    harness.fresh_topics("abuse", via_proxy=False)
    handshake_timeout = 3.0
    await asyncio.to_thread(harness.start_csms)
    gateway = await asyncio.to_thread(
        harness.start_gateway,
        handshake_timeout=str(handshake_timeout),
        max_connections="600",
    )
    fleet = Fleet(harness.urls(), 30, 0.5, RESPONSE_TIMEOUT + 3, prefix="BYSTANDER_")
    fleet.start()
    results: dict[str, Any] = {}
    try:
        await await_until(lambda: len(fleet.connected()) == 30, 60, "bystanders connected")
        rss_before = gateway.rss_bytes()
        url, host, port = harness.urls()[0], "127.0.0.1", GATEWAY_PORT
        results["fuzz"] = await abuse.fuzz_frames(url, sizes.fuzz_frames, seed=20261121)
        results["handshakes"] = await abuse.handshake_abuse(host, port, handshake_timeout=handshake_timeout)
        results["call_flood"] = await abuse.call_flood(url, sizes.flood_calls)
        rss_after = gateway.rss_bytes()
        await fleet.stop()
        crashed = harness.crashed()
        healthy = await asyncio.to_thread(ready, GATEWAY_STATUS)
    finally:
        await asyncio.to_thread(harness.stop_all)
    bystanders = fleet.ledger.report(RESPONSE_TIMEOUT + 3)
    results.update(
        {
            "bystanders": asdict(bystanders),
            "bystander_disconnects": fleet.stats.disconnects,
            "gateway_rss_growth_mb": round((rss_after - rss_before) / 2**20, 1),
            "crashed": crashed,
            "gateway_ready_after": healthy,
        }
    )
    results["holds"] = (
        bystanders.holds
        and bystanders.answered_by_gateway == 0
        and not fleet.stats.disconnects
        and not crashed
        and healthy
        and all(not results[part]["violation_count"] for part in ("fuzz", "handshakes", "call_flood"))
    )
    return results


def table(results: dict[str, Any]) -> str:
    head = ("scenario", "side", "calls", "by peer", "by gateway", "unanswered", "twice", "longest s", "holds")
    rows: list[tuple[str, ...]] = [head]
    for name, result in results.items():
        for side in ("stations", "csms", "bystanders"):
            report = result.get(side)
            if report:
                counts = ("calls", "answered_by_peer", "answered_by_gateway", "unanswered", "answered_twice")
                rows.append(
                    (
                        name,
                        side,
                        *(str(report[key]) for key in counts),
                        f"{report['longest_seconds']:.2f}",
                        "yes" if result.get("holds") else "NO",
                    )
                )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    sizes = SHORT if args.short else Sizes()
    if args.fuzz_frames:
        sizes = Sizes(**{**asdict(sizes), "fuzz_frames": args.fuzz_frames})
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in args.scenarios.split(",") if s]
    results: dict[str, Any] = {}
    for on_cluster in (False, True):
        scenarios = [s for s in FAULTS if s.name in chosen and s.cluster == on_cluster]
        abuse_here = "abuse" in chosen and not on_cluster
        if not scenarios and not abuse_here:
            continue
        harness = Harness(sizes, logs, cluster=on_cluster)
        await asyncio.to_thread(harness.kafka, "start")
        try:
            for scenario in scenarios:
                print(f"chaos: {scenario.name} ...", file=sys.stderr, flush=True)
                results[scenario.name] = await run_fault(harness, scenario)
            if abuse_here:
                print("chaos: abuse ...", file=sys.stderr, flush=True)
                results["abuse"] = await run_abuse(harness)
        finally:
            await asyncio.to_thread(harness.stop_all)
            await asyncio.to_thread(harness.kafka, "stop")
    return results


def main(argv: list[str] | None = None) -> int:
    names = [s.name for s in FAULTS] + ["abuse"]
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(names), help=f"comma-separated, of {', '.join(names)}")
    parser.add_argument("--short", action="store_true", help="small and brief, for make test")
    parser.add_argument(
        "--fuzz-frames", type=int, default=0, help="frames the fuzzer sends (default 1,000,000; short 2,000)"
    )
    parser.add_argument("--out", default=str(ROOT / "chaos-results.json"))
    parser.add_argument("--logs", default=str(ROOT / ".chaos-logs"))
    args = parser.parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the outages are on purpose
    with asyncio.Runner(loop_factory=event_loop_factory("uvloop")) as runner:
        results = runner.run(main_async(args))
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(table(results))
    failed = [name for name, result in results.items() if not result.get("holds")]
    print(f"wrote {args.out} (process logs in {args.logs})")
    if failed:
        print(f"chaos: invariant broken in {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
