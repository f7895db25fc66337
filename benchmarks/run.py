"""``make bench``: the gateway measured end to end on this machine, next to a direct baseline.

Starts a local Kafka broker (unless ``OCPPGW_KAFKA__SERVERS`` names one), the reference CSMS, one
gateway and the baseline server (websockets + the ``ocpp`` package, no Kafka) as separate processes,
drives them with ``charge_station.load`` in another process, and writes a table, ``results.json`` and
PNG plots to ``--out``. ``--smoke`` runs every scenario tiny, in seconds, so the harness cannot rot.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.profile import Profiler
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
)

GATEWAY_PORT, GATEWAY_STATUS, CSMS_STATUS, DIRECT_PORT, KAFKA_PORT = 29000, 29009, 29019, 29500, 29092
SCENARIOS = ("latency", "throughput", "connections", "storm")
CONNECTIONS_SETTLED = 15
"""Seconds the connected count must stay the same before the ramp counts as done: longer than the load
generator's longest back-off (8 s), so stations still retrying a handshake are waited for."""
STOP_TIMEOUT = 30.0
"""Seconds a program may take to end after SIGTERM before it is killed."""


@dataclass(frozen=True)
class Sizes:
    latency_stations: int = 1000
    latency_rate: float = 1000.0
    latency_seconds: float = 60.0
    throughput_stations: int = 200
    throughput_seconds: float = 30.0
    idle_stations: int = 20000
    storm_stations: int = 10000


SMOKE = Sizes(20, 50.0, 2.0, 10, 2.0, 100, 50)


def metric(port: int, name: str) -> float | None:
    """A metric from the status port, or None when the busy process did not answer in time."""
    try:
        return sum(value for _, value in metric_samples(port, name, timeout=20))
    except OSError:
        return None


def load(mode: str, url: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "charge_station.load", mode, "--url", url, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


class Bench:
    def __init__(self, sizes: Sizes, out: Path, logs: Path, profile: bool = False) -> None:
        self.sizes, self.out, self.logs, self.profile = sizes, out, logs, profile
        self.env: dict[str, str] = {"OCPPGW_LOGGING__LEVEL": "WARNING", "OCPPGW_LOGGING__FORMAT": "json"}
        self.started_kafka = False
        self.gateway: Process | None = None
        self.csms: Process | None = None
        self.results: dict[str, Any] = {"machine": machine()}

    # Set-up.

    def start(self) -> None:
        servers = os.environ.get("OCPPGW_KAFKA__SERVERS")
        if not servers:
            self.started_kafka = ensure_local_kafka(KAFKA_PORT, quiet=True)
            servers = f"127.0.0.1:{KAFKA_PORT}"
        self.env["OCPPGW_KAFKA__SERVERS"] = servers
        self.env.update(topics_env("bench", str(int(time.time())), gateways="gw"))
        self.csms = Process("csms", "csms_server", csms_env(self.env, CSMS_STATUS), self.logs)
        self.csms.wait_ready(CSMS_STATUS)

    def start_gateway(self, **settings: str) -> Process:
        self.stop_gateway()
        env = gateway_env(
            self.env,
            GATEWAY_PORT,
            GATEWAY_STATUS,
            "bench-gw",
            **{
                "max_connections": "30000",
                "handshake_rate": "5000",
                **FLEET_FROM_ONE_ADDRESS,
                "station_message_rate": "100000",
                "station_message_burst": "100000",
                **settings,
            },
        )
        self.gateway = Process("gateway", "ocpp_gw", env, self.logs)
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

    # Scenarios.

    def latency(self) -> None:
        s = self.sizes
        args = (
            "--stations",
            str(s.latency_stations),
            "--rate",
            str(s.latency_rate),
            "--duration",
            str(s.latency_seconds),
        )
        gw = self.start_gateway(strict_station_calls="off", strict_csms_results="off")
        profilers = {}
        if self.profile and self.csms is not None:
            for name, process in (("gateway", gw), ("csms", self.csms)):
                profilers[name] = Profiler(process.popen.pid, s.latency_seconds, self.out / f"profile-{name}.json")
        gateway = load("open", f"ws://127.0.0.1:{GATEWAY_PORT}/ocpp", *args, "--prefix", "LAT_")
        if profilers:
            self.results["profile"] = {name: profiler.summary() for name, profiler in profilers.items()}
        direct = self.direct(lambda url: load("open", url, *args, "--prefix", "LATD_"))
        self.results["latency"] = {"gateway": gateway, "direct": direct}

    def throughput(self) -> None:
        s = self.sizes
        args = ("--stations", str(s.throughput_stations), "--duration", str(s.throughput_seconds))
        runs: dict[str, Any] = {}
        for strict in ("off", "enforce"):
            gateway = self.start_gateway(
                strict_station_calls=strict,
                strict_station_results=strict,
                strict_csms_calls=strict,
                strict_csms_results=strict,
            )
            cpu = gateway.cpu_seconds()
            result = load("closed", f"ws://127.0.0.1:{GATEWAY_PORT}/ocpp", *args, "--prefix", f"THR_{strict}_")
            result["gateway_cpu_per_1000"] = (gateway.cpu_seconds() - cpu) / max(1, result["calls"]) * 1000
            runs[f"gateway_strict_{strict}"] = result
        runs["direct"] = self.direct(lambda url: load("closed", url, *args, "--prefix", "THRD_"))
        self.results["throughput"] = runs

    def connections(self) -> None:
        runs = {}
        for compression in ("false", "true"):
            gateway = self.start_gateway(compression=compression)
            base = gateway.rss_bytes()
            samples = [(0, base)]
            holder = subprocess.Popen(
                [
                    sys.executable, "-m", "charge_station.load", "idle", "--url", f"ws://127.0.0.1:{GATEWAY_PORT}/ocpp",
                    "--stations", str(self.sizes.idle_stations), "--duration", "600", "--concurrency", "500",
                    "--attempts", "1000",
                    *(["--compression"] if compression == "true" else []),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )  # fmt: skip
            connected, unchanged = 0.0, 0
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and holder.poll() is None and unchanged < CONNECTIONS_SETTLED:
                time.sleep(1)
                now_connected = metric(GATEWAY_STATUS, "ocpp_gw_connected_stations") or connected
                unchanged = unchanged + 1 if now_connected == connected and connected > 0 else 0
                connected = now_connected
                samples.append((int(connected), gateway.rss_bytes()))
            time.sleep(2)
            final = gateway.rss_bytes()
            samples.append((int(connected), final))
            holder.terminate()
            holder.wait()
            per_connection = (final - base) / max(1.0, connected)
            runs[f"compression_{compression}"] = {
                "connected": connected,
                "rss_base_mb": base / 2**20,
                "rss_mb": final / 2**20,
                "rss_per_connection_kb": per_connection / 1024,
                "samples": samples,
            }
        self.results["connections"] = runs

    def storm(self) -> None:
        self.start_gateway()
        args = ("--stations", str(self.sizes.storm_stations), "--concurrency", "1000", "--prefix", "STORM_")
        self.results["storm"] = load("storm", f"ws://127.0.0.1:{GATEWAY_PORT}/ocpp", *args)

    def direct(self, run: Any) -> dict[str, Any]:
        server = Process("direct", "benchmarks.direct_server", {}, self.logs, ("--port", str(DIRECT_PORT)))
        try:
            server.wait_for_log("direct server ready", timeout=30)
            cpu = server.cpu_seconds()
            result: dict[str, Any] = run(f"ws://127.0.0.1:{DIRECT_PORT}/ocpp")
            result["server_cpu_per_1000"] = (server.cpu_seconds() - cpu) / max(1, result["calls"]) * 1000
            return result
        finally:
            server.stop(STOP_TIMEOUT)


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
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory, "python": sys.version.split()[0]}


def raise_file_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (65536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(wanted, hard)))
            return
        except (ValueError, OSError):
            continue


def table(results: dict[str, Any]) -> str:
    rows = [("scenario", "figure", "gateway", "direct", "ratio")]

    def add(scenario: str, figure: str, gw: float | None, direct: float | None = None) -> None:
        ratio = f"{gw / direct:.2f}" if gw is not None and direct else ""
        rows.append((scenario, figure, _fmt(gw), _fmt(direct), ratio))

    if "latency" in results:
        gw, direct = results["latency"]["gateway"], results["latency"]["direct"]
        for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
            add("latency", key, gw[key], direct[key])
        add("latency", "rate achieved /s", gw["rate"], direct["rate"])
        add("latency", "errors", sum(gw["errors"].values()), sum(direct["errors"].values()))
    if "throughput" in results:
        t = results["throughput"]
        add("throughput", "round trips/s (strict off)", t["gateway_strict_off"]["rate"], t["direct"]["rate"])
        add("throughput", "round trips/s (strict enforce)", t["gateway_strict_enforce"]["rate"], t["direct"]["rate"])
        add(
            "throughput",
            "CPU s per 1000 (strict off)",
            t["gateway_strict_off"]["gateway_cpu_per_1000"],
            t["direct"]["server_cpu_per_1000"],
        )
        cost = 1 - t["gateway_strict_enforce"]["rate"] / t["gateway_strict_off"]["rate"]
        rows.append(("throughput", "strict enforce cost", f"{cost:.1%}", "", ""))
    if "connections" in results:
        for name, run in results["connections"].items():
            add("connections", f"connected ({name})", run["connected"])
            add("connections", f"KB RSS per connection ({name})", run["rss_per_connection_kb"])
    if "storm" in results:
        s = results["storm"]
        add("storm", "stations back", s.get("back"))
        add("storm", "seconds until all back", s.get("storm_seconds"))
        add("storm", "errors", sum(s.get("errors", {}).values()))
    widths = [max(len(str(row[i])) for row in rows) for i in range(5)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def plot(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if "latency" in results:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, run in results["latency"].items():
            ax.hist(run["rtt_sample_ms"], bins=60, alpha=0.6, label=name)
        ax.set(xlabel="round trip (ms)", ylabel="calls (sample)", title="Heartbeat round trip, open loop")
        ax.legend()
        written.append(_save(fig, out / "latency.png"))
    if "throughput" in results:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, run in results["throughput"].items():
            ax.plot(run["per_second"][:-1], label=name)
        ax.set(xlabel="second", ylabel="round trips per second", title="Closed-loop throughput over time")
        ax.legend()
        written.append(_save(fig, out / "throughput.png"))
    if "connections" in results:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, run in results["connections"].items():
            xs, ys = zip(*run["samples"], strict=True)
            ax.plot(xs, [y / 2**20 for y in ys], marker=".", label=name)
        ax.set(xlabel="connected stations", ylabel="gateway RSS (MiB)", title="Memory against connections")
        ax.legend()
        written.append(_save(fig, out / "memory.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--smoke", action="store_true", help="every scenario tiny: checks the harness in seconds")
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    parser.add_argument("--profile", action="store_true", help="py-spy on the gateway and CSMS during latency")
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
    try:
        bench.start()
        for scenario in (progress := tqdm(chosen, unit="scenario", file=sys.stderr)):
            progress.set_description(scenario)
            try:
                getattr(bench, scenario)()
            except (subprocess.CalledProcessError, RuntimeError, OSError) as error:
                bench.results.setdefault("failed", {})[scenario] = repr(error)
                print(f"{scenario} failed: {error!r}", file=sys.stderr)
    finally:
        bench.stop()
    bench.results["sizes"] = sizes.__dict__
    (out / "results.json").write_text(json.dumps(bench.results, indent=2))
    print(table(bench.results))
    for path in plot(bench.results, out):
        print(f"wrote {path}")
    print(f"wrote {out / 'results.json'} (process logs in {logs})")
    return 1 if bench.results.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
