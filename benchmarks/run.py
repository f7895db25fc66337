"""``make bench``: the gateway measured end to end on this machine, next to a direct baseline and Kafka's floor.

Starts a local Kafka broker (unless ``OCPPGW_KAFKA__SERVERS`` names one), the reference CSMS and the
gateway as separate processes, drives them with ``charge_station.load`` in another process, and writes
a table, ``results.json`` and PNG plots to ``--out``. Every figure is the median of ``--repeats``
runs, interleaved: each repeat runs the gateway, the direct baseline (websockets + the ``ocpp``
package, no Kafka) and Kafka's floor (``benchmarks.kafka_floor``: the two hops alone) one after
the other, so a machine that gets busier slows all three alike. ``--smoke`` runs everything tiny,
in seconds, so the harness cannot rot.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.profile import Profiler
from benchmarks.report import plot, summarise, table
from testing.harness import (
    FLEET_FROM_ONE_ADDRESS,
    ROOT,
    Process,
    cpu_seconds,
    csms_env,
    ensure_local_kafka,
    gateway_env,
    kafka_data_dir,
    kafka_sh,
    metric_samples,
    ready,
    topics_env,
    wait_until,
)

GATEWAY_PORT, GATEWAY_STATUS, CSMS_STATUS, DIRECT_PORT, KAFKA_PORT = 29000, 29009, 29019, 29500, 29092
SCENARIOS = ("ready", "latency", "connections", "storm")
CONNECTIONS_SETTLED = 5
"""Seconds the connected count must stay at the number of stations before memory is read."""
STOP_TIMEOUT = 30.0
"""Seconds a program may take to end after SIGTERM before it is killed."""
GATEWAY_SETTINGS = {
    "max_connections": "30000",
    "handshake_rate": "5000",
    **FLEET_FROM_ONE_ADDRESS,
    "station_message_rate": "100000",
    "station_message_burst": "100000",
}
STRICT_KEYS = ("strict_station_calls", "strict_station_results", "strict_csms_calls", "strict_csms_results")


@dataclass(frozen=True)
class Sizes:
    repeats: int = 3
    latency_stations: int = 1000
    low_rate: float = 200.0
    high_rate: float = 1000.0
    latency_seconds: float = 30.0
    throughput_stations: int = 200
    throughput_seconds: float = 20.0
    idle_stations: int = 10000
    storm_stations: int = 10000


SMOKE = Sizes(1, 20, 20.0, 50.0, 2.0, 10, 2.0, 100, 50)


def run_load(module: str, args: list[str], watched: dict[str, int]) -> dict[str, Any]:
    """Run a load program; the CPU each watched process used in its measured window, per round trip."""
    with tempfile.TemporaryFile("w+") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", module, *args], stdout=out, stderr=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert popen.stderr is not None
        marks: dict[str, dict[str, float]] = {}
        errors = []
        for line in popen.stderr:
            if line.startswith('{"measuring"'):
                phase = json.loads(line)["measuring"]
                marks[phase] = {name: cpu_seconds(pid) for name, pid in {**watched, "load": popen.pid}.items()}
            else:
                errors.append(line)
        if popen.wait() != 0:
            raise RuntimeError(f"{module} failed: {''.join(errors[-20:])}")
        out.seek(0)
        result: dict[str, Any] = json.loads(out.read().strip().splitlines()[-1])
    calls = max(1, result.get("calls", 0))
    if "start" in marks and "end" in marks:
        result["cpu_ms"] = {name: (marks["end"][name] - marks["start"][name]) / calls * 1000 for name in marks["end"]}
    return result


class Bench:
    def __init__(self, sizes: Sizes, out: Path, logs: Path, profile: bool = False) -> None:
        self.sizes, self.out, self.logs, self.profile = sizes, out, logs, profile
        self.env: dict[str, str] = {"OCPPGW_LOGGING__LEVEL": "WARNING", "OCPPGW_LOGGING__FORMAT": "json"}
        self.started_kafka = False
        self.broker_pid: int | None = None
        self.gateway: Process | None = None
        self.csms: Process | None = None
        self.runs: dict[str, list[dict[str, Any]]] = {}
        self.results: dict[str, Any] = {"machine": machine(), "runs": self.runs}

    def record(self, name: str, result: dict[str, Any]) -> None:
        self.runs.setdefault(name, []).append(result)

    # Set-up.

    def start(self) -> None:
        servers = os.environ.get("OCPPGW_KAFKA__SERVERS")
        if not servers:
            self.started_kafka = ensure_local_kafka(KAFKA_PORT, quiet=True)
            servers = f"127.0.0.1:{KAFKA_PORT}"
            self.broker_pid = int((kafka_data_dir(KAFKA_PORT) / "kafka.pid").read_text())
        self.env["OCPPGW_KAFKA__SERVERS"] = servers
        self.env.update(topics_env("bench", str(int(time.time())), gateways="gw"))
        self.csms = Process("csms", "csms_server", csms_env(self.env, CSMS_STATUS), self.logs, append=True)
        self.csms.wait_ready(CSMS_STATUS)

    def gateway_env(self, strict: str) -> dict[str, str]:
        settings = {**GATEWAY_SETTINGS, **dict.fromkeys(STRICT_KEYS, strict)}
        return gateway_env(self.env, GATEWAY_PORT, GATEWAY_STATUS, "bench-gw", **settings)

    def start_gateway(self, strict: str = "off", **settings: str) -> Process:
        self.stop_gateway()
        env = {**self.gateway_env(strict), **{f"OCPPGW_OCPP_GATEWAY__{k.upper()}": v for k, v in settings.items()}}
        self.gateway = Process("gateway", "ocpp_gw", env, self.logs, append=True)
        self.gateway.wait_ready(GATEWAY_STATUS)
        return self.gateway

    def stop_gateway(self) -> None:
        if self.gateway is not None:
            self.gateway.stop(STOP_TIMEOUT)
            self.gateway = None

    def stop(self) -> None:
        self.stop_gateway()
        if self.csms is not None:
            self.csms.stop(STOP_TIMEOUT)
        if self.started_kafka:
            kafka_sh({"KAFKA_PORT": str(KAFKA_PORT)}, "stop", check=False)

    def watched(self, **processes: Process) -> dict[str, int]:
        pids = {name: process.popen.pid for name, process in processes.items()}
        return {**pids, "broker": self.broker_pid} if self.broker_pid else pids

    # Scenarios.

    def ready(self) -> None:
        """Seconds from launching the gateway (strict mode on, Kafka up) to its first 200 on ``/readyz``."""
        for _ in range(self.sizes.repeats):
            self.stop_gateway()
            started = time.monotonic()
            self.gateway = Process("gateway", "ocpp_gw", self.gateway_env("enforce"), self.logs, append=True)
            wait_until(lambda: self._alive_and_ready(), 60, "the gateway to be ready", interval=0.01)
            self.record("ready", {"seconds": time.monotonic() - started})
        self.stop_gateway()

    def _alive_and_ready(self) -> bool:
        assert self.gateway is not None
        self.gateway.check_alive()
        return ready(GATEWAY_STATUS)

    def latency(self) -> None:
        """Open loop at two rates and closed loop, interleaved: gateway, gateway strict, direct, Kafka's floor."""
        s = self.sizes
        for repeat in range(s.repeats):
            gateway = self.start_gateway("off")
            assert self.csms is not None
            watched = self.watched(gateway=gateway, csms=self.csms)
            for rate in (s.low_rate, s.high_rate):
                profilers = self._profilers(gateway) if repeat == 0 and rate == s.high_rate else {}
                self.record(f"gateway_open_{rate:g}", self.open_loop(GATEWAY_PORT, rate, watched))
                if profilers:
                    self.results["profile"] = {name: p.summary() for name, p in profilers.items()}
            self.record("gateway_closed", self.closed_loop(GATEWAY_PORT, watched))
            gateway = self.start_gateway("enforce")
            watched = self.watched(gateway=gateway, csms=self.csms)
            self.record("gateway_strict_closed", self.closed_loop(GATEWAY_PORT, watched))
            self.stop_gateway()
            with self.direct() as server:
                for rate in (s.low_rate, s.high_rate):
                    self.record(
                        f"direct_open_{rate:g}", self.open_loop(DIRECT_PORT, rate, {"server": server.popen.pid})
                    )
                self.record("direct_closed", self.closed_loop(DIRECT_PORT, {"server": server.popen.pid}))
            with self.floor_echo() as echo:
                for rate in (s.low_rate, s.high_rate):
                    self.record(f"floor_open_{rate:g}", self.floor(rate, echo))

    def _profilers(self, gateway: Process) -> dict[str, Profiler]:
        if not self.profile or self.csms is None:
            return {}
        seconds = self.sizes.latency_seconds
        return {
            name: Profiler(process.popen.pid, seconds, self.out / f"profile-{name}.json")
            for name, process in (("gateway", gateway), ("csms", self.csms))
        }

    def open_loop(self, port: int, rate: float, watched: dict[str, int]) -> dict[str, Any]:
        s = self.sizes
        args = ["open", "--url", f"ws://127.0.0.1:{port}/ocpp", "--stations", str(s.latency_stations)]
        args += ["--rate", str(rate), "--duration", str(s.latency_seconds), "--prefix", f"LAT{port}_"]
        return run_load("charge_station.load", args, watched)

    def closed_loop(self, port: int, watched: dict[str, int]) -> dict[str, Any]:
        s = self.sizes
        args = ["closed", "--url", f"ws://127.0.0.1:{port}/ocpp", "--stations", str(s.throughput_stations)]
        args += ["--duration", str(s.throughput_seconds), "--prefix", f"THR{port}_"]
        return run_load("charge_station.load", args, watched)

    def floor(self, rate: float, echo: Process) -> dict[str, Any]:
        s = self.sizes
        ping = ["ping", "--servers", self.env["OCPPGW_KAFKA__SERVERS"], "--topics", self.floor_topics]
        ping += ["--stations", str(s.latency_stations), "--rate", str(rate), "--duration", str(s.latency_seconds)]
        return run_load("benchmarks.kafka_floor", ping, {"echo": echo.popen.pid, **self.watched()})

    @property
    def floor_topics(self) -> str:
        suffix = self.env["OCPPGW_KAFKA__IN_MESSAGES_TOPIC"].rsplit("_", 1)[-1]
        return f"bench_floor_a_{suffix},bench_floor_b_{suffix}"

    def direct(self) -> _Running:
        server = Process("direct", "benchmarks.direct_server", {}, self.logs, ("--port", str(DIRECT_PORT)), append=True)
        return _Running(server, "direct server ready")

    def floor_echo(self) -> _Running:
        args = ("echo", "--servers", self.env["OCPPGW_KAFKA__SERVERS"], "--topics", self.floor_topics)
        return _Running(Process("floor-echo", "benchmarks.kafka_floor", {}, self.logs, args, append=True), "echo ready")

    def connections(self) -> None:
        """Gateway memory per idle station, with and without permessage-deflate, interleaved."""
        for _ in range(self.sizes.repeats):
            for compression in ("false", "true"):
                self.record(f"idle_compression_{compression}", self.idle(compression))

    def idle(self, compression: str) -> dict[str, Any]:
        gateway = self.start_gateway("off", compression=compression)
        stations = self.sizes.idle_stations
        time.sleep(1)  # the gateway's first second allocates (metrics, clients); not the stations' cost
        base = gateway.rss_bytes()
        holder = subprocess.Popen(
            [
                sys.executable, "-m", "charge_station.load", "idle", "--url", f"ws://127.0.0.1:{GATEWAY_PORT}/ocpp",
                "--stations", str(stations), "--duration", "600", "--concurrency", "500", "--attempts", "1000",
                *(["--compression"] if compression == "true" else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )  # fmt: skip
        samples = [(0, base)]
        try:
            settled: list[float] = []

            def all_connected() -> bool:
                connected = connected_stations()
                samples.append((int(connected), gateway.rss_bytes()))
                settled.append(connected)
                return len(settled) > CONNECTIONS_SETTLED and set(settled[-CONNECTIONS_SETTLED:]) == {stations}

            wait_until(all_connected, 300, f"{stations} idle stations connected", interval=1.0)
            final = gateway.rss_bytes()
        finally:
            holder.terminate()
            holder.wait()
        return {
            "connected": stations,
            "rss_base_mb": base / 2**20,
            "rss_mb": final / 2**20,
            "rss_per_station_kb": (final - base) / stations / 1024,
            "samples": samples,
        }

    def storm(self) -> None:
        """Every station dropped at once, then all back and booted."""
        gateway = self.start_gateway("off")
        assert self.csms is not None
        watched = self.watched(gateway=gateway, csms=self.csms)
        for _ in range(self.sizes.repeats):
            args = [
                "storm",
                "--url",
                f"ws://127.0.0.1:{GATEWAY_PORT}/ocpp",
                "--stations",
                str(self.sizes.storm_stations),
            ]
            args += ["--concurrency", "1000", "--prefix", "STORM_"]
            self.record("storm", run_load("charge_station.load", args, watched))
        self.stop_gateway()


def connected_stations() -> float:
    try:
        return sum(value for _, value in metric_samples(GATEWAY_STATUS, "ocpp_gw_connected_stations", timeout=20))
    except OSError:
        return 0.0


class _Running:
    """A helper process started for a few runs: ready once it logs ``ready_line``; stopped on exit."""

    def __init__(self, process: Process, ready_line: str) -> None:
        self.process, self.ready_line = process, ready_line

    def __enter__(self) -> Process:
        self.process.wait_for_log(self.ready_line, timeout=60)
        return self.process

    def __exit__(self, *_: object) -> None:
        self.process.stop(STOP_TIMEOUT)


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 2**20
    load = os.getloadavg()[0]
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory, "python": sys.version.split()[0], "load": load}


def raise_file_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (65536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(wanted, hard)))
            return
        except (ValueError, OSError):
            continue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--smoke", action="store_true", help="every scenario tiny: checks the harness in seconds")
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    parser.add_argument("--profile", action="store_true", help="py-spy on the gateway and CSMS at the high rate")
    for field in Sizes.__dataclass_fields__:
        parser.add_argument(f"--{field.replace('_', '-')}", type=float, help=f"default {getattr(Sizes(), field)}")
    args = parser.parse_args(argv)
    base = SMOKE if args.smoke else Sizes()
    overrides = {
        f: type(getattr(base, f))(getattr(args, f)) for f in Sizes.__dataclass_fields__ if getattr(args, f) is not None
    }
    sizes = Sizes(**{**base.__dict__, **overrides})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="ocpp-gw-bench-"))
    raise_file_limit()
    bench = Bench(sizes, out, logs, args.profile)
    chosen = [s for s in args.scenarios.split(",") if s]
    scenarios: dict[str, Callable[[], None]] = {name: getattr(bench, name) for name in SCENARIOS}
    try:
        bench.start()
        for scenario in (progress := tqdm(chosen, unit="scenario", file=sys.stderr)):
            progress.set_description(scenario)
            try:
                scenarios[scenario]()
            except (subprocess.CalledProcessError, RuntimeError, OSError, AssertionError) as error:
                bench.results.setdefault("failed", {})[scenario] = repr(error)
                print(f"{scenario} failed: {error!r}", file=sys.stderr)
    finally:
        bench.stop()
    bench.results["sizes"] = sizes.__dict__
    bench.results["summary"] = summarise(bench.runs)
    (out / "results.json").write_text(json.dumps(bench.results, indent=2))
    print(table(bench.results["summary"], sizes))
    for path in plot(bench.results, sizes, out):
        print(f"wrote {path}")
    print(f"wrote {out / 'results.json'} (process logs in {logs})")
    return 1 if bench.results.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
