"""``make bench-scaleout``: 50,000 idle stations over three gateway processes, every one reached by a CSMS call.

One machine plays a scaled-out site: a local broker, the reference CSMS, three gateways in one
consumer group (each under the 20,000-descriptor limit) and three load processes, one per gateway
as a load balancer would spread them, each holding a third of the stations. Once all are connected
and booted, a :class:`ocpp_gw.sdk.CsmsClient` sends every station a CALL through ``messages_out``;
the gateway that reads the record passes it on to the gateway holding the station when that is
another one. Writes ``scaleout.json`` (connect time, memory per station, calls answered) to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.run import STRICT_KEYS, raise_file_limit
from ocpp_gw.config import KafkaConfig, load_config
from ocpp_gw.sdk import CsmsClient
from testing.harness import (
    FLEET_FROM_ONE_ADDRESS,
    ROOT,
    Process,
    csms_env,
    ensure_local_kafka,
    gateway_env,
    kafka_sh,
    metric_samples,
    topics_env,
    wait_until,
)

KAFKA_PORT, CSMS_STATUS = 29092, 29119
GATEWAYS = 3
CALL_CONCURRENCY = 500


def gateway_ports(index: int) -> tuple[int, int]:
    return 29100 + index, 29110 + index


def connected(index: int) -> int:
    try:
        return int(sum(v for _, v in metric_samples(gateway_ports(index)[1], "ocpp_gw_connected_stations", timeout=20)))
    except OSError:
        return 0


def boots_answered(index: int) -> int:
    """CSMS answers gateway ``index`` passed on to its stations (before the reach test: their boots)."""
    samples = metric_samples(gateway_ports(index)[1], "ocpp_gw_frames_total", timeout=20)
    wanted = {"direction": "csms_to_station", "message_type": "CALLRESULT"}
    return int(sum(value for labels, value in samples if wanted.items() <= labels.items()))


async def reach_all(kafka: KafkaConfig, stations: list[str]) -> dict[str, Any]:
    """Send every station one CALL through Kafka; how many were answered, and how fast."""
    gate = asyncio.Semaphore(CALL_CONCURRENCY)
    failures: dict[str, int] = {}

    async with CsmsClient(kafka) as client:

        async def call(station_id: str) -> bool:
            async with gate:
                try:
                    await client.send_call(station_id, "DataTransfer", {"vendorId": "scaleout"}, timeout=120)
                    return True
                except Exception as error:
                    failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
                    return False

        started = time.monotonic()
        answered = sum([await task for task in asyncio.as_completed([call(s) for s in stations])])
        seconds = time.monotonic() - started
    return {"calls": len(stations), "answered": answered, "seconds": seconds, "failures": failures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-scaleout", description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=50_000)
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="ocpp-gw-scaleout-"))
    raise_file_limit()
    started_kafka = False
    servers = os.environ.get("OCPPGW_KAFKA__SERVERS")
    if not servers:
        started_kafka = ensure_local_kafka(KAFKA_PORT, quiet=True)
        servers = f"127.0.0.1:{KAFKA_PORT}"
    env = {"OCPPGW_LOGGING__LEVEL": "WARNING", "OCPPGW_LOGGING__FORMAT": "json", "OCPPGW_KAFKA__SERVERS": servers}
    env.update(topics_env("scale", str(int(time.time())), gateways="gw"))
    processes: list[Process] = []
    holders: list[subprocess.Popen[str]] = []
    result: dict[str, Any] = {"stations": args.stations, "gateways": GATEWAYS}
    try:
        csms = Process("csms", "csms_server", csms_env(env, CSMS_STATUS), logs)
        processes.append(csms)
        csms.wait_ready(CSMS_STATUS)
        settings = {**FLEET_FROM_ONE_ADDRESS, "max_connections": "19000", "handshake_rate": "5000"}
        settings.update(dict.fromkeys(STRICT_KEYS, "off"))
        gateways = []
        for index in range(GATEWAYS):
            port, status = gateway_ports(index)
            gateway = Process(
                f"gateway-{index}", "ocpp_gw", gateway_env(env, port, status, f"scale-gw-{index}", **settings), logs
            )
            processes.append(gateway)
            gateways.append(gateway)
        for index, gateway in enumerate(gateways):
            gateway.wait_ready(gateway_ports(index)[1])
        base = [g.rss_bytes() for g in gateways]
        shares = [args.stations // GATEWAYS + (1 if i < args.stations % GATEWAYS else 0) for i in range(GATEWAYS)]
        began = time.monotonic()
        for index, share in enumerate(shares):
            command = [
                sys.executable, "-m", "charge_station.load", "hold",
                "--url", f"ws://127.0.0.1:{gateway_ports(index)[0]}/ocpp", "--prefix", f"SCALE{index}_",
                "--stations", str(share), "--concurrency", "300", "--attempts", "1000", "--duration", "3600",
            ]  # fmt: skip
            pipe = subprocess.PIPE
            holders.append(subprocess.Popen(command, stdout=pipe, stderr=subprocess.DEVNULL, text=True, cwd=ROOT))
        counts: list[int] = []

        def all_connected() -> bool:
            for holder in holders:
                if holder.poll() is not None:
                    raise RuntimeError(f"a load process ended with {holder.returncode}")
            counts[:] = [connected(i) for i in range(GATEWAYS)]
            return sum(counts) >= int(args.stations)

        wait_until(all_connected, 900, f"{args.stations} stations connected", interval=2.0)
        result["connect_seconds"] = time.monotonic() - began
        result["connected_per_gateway"] = counts
        wait_until(lambda: sum(boots_answered(i) for i in range(GATEWAYS)) >= args.stations, 120, "every boot answered")
        rss = [g.rss_bytes() for g in gateways]
        result["rss_mb_per_gateway"] = [r / 2**20 for r in rss]
        result["rss_per_station_kb"] = (sum(rss) - sum(base)) / args.stations / 1024
        result["descriptors_per_gateway"] = [len(os.listdir(f"/proc/{g.popen.pid}/fd")) for g in gateways]
        stations = [f"SCALE{index}_{n}" for index, share in enumerate(shares) for n in range(share)]
        os.environ.update(env)
        result["reach"] = asyncio.run(reach_all(load_config(str(ROOT / "config.cfg")).kafka, stations))
        answered = 0
        for holder in holders:
            holder.send_signal(signal.SIGTERM)
            stdout, _ = holder.communicate(timeout=120)
            answered += json.loads(stdout.strip().splitlines()[-1]).get("answered", 0)
        result["answered_by_stations"] = answered
        holders.clear()
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
        for process in reversed(processes):
            process.stop(30)
        if started_kafka:
            kafka_sh({"KAFKA_PORT": str(KAFKA_PORT)}, "stop", check=False)
    (out / "scaleout.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"wrote {out / 'scaleout.json'} (process logs in {logs})")
    reach = result["reach"]
    return 0 if reach["answered"] == reach["calls"] == args.stations else 1


if __name__ == "__main__":
    sys.exit(main())
