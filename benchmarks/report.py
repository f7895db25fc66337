"""The bench's figures: medians with their range over the interleaved runs, the table, and the plots."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.run import Sizes

FIGURES = ("p50_ms", "p95_ms", "p99_ms", "max_ms", "rate", "seconds", "rss_per_station_kb", "storm_seconds", "back")
PROCESSES = ("gateway", "csms", "broker", "server", "echo", "load")

Spread = dict[str, float]
"""A figure over the runs: ``median``, ``low``, ``high`` and the number of runs ``n``."""


def spread(values: list[float]) -> Spread:
    return {"median": statistics.median(values), "low": min(values), "high": max(values), "n": len(values)}


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Spread]]:
    """For each kind of run, each figure's median and range over its repeats."""
    summary: dict[str, dict[str, Spread]] = {}
    for name, results in runs.items():
        figures: dict[str, list[float]] = {}
        for result in results:
            for key in FIGURES:
                if isinstance(result.get(key), int | float):
                    figures.setdefault(key, []).append(float(result[key]))
            for process, cost in result.get("cpu_ms", {}).items():
                figures.setdefault(f"cpu_ms_{process}", []).append(cost)
            if "errors" in result:
                figures.setdefault("errors", []).append(float(sum(result["errors"].values())))
        summary[name] = {key: spread(values) for key, values in figures.items()}
    return summary


def _cell(summary: dict[str, dict[str, Spread]], run: str, figure: str) -> str:
    value = summary.get(run, {}).get(figure)
    if value is None:
        return ""
    return f"{_fmt(value['median'])} [{_fmt(value['low'])}-{_fmt(value['high'])}]"


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def _ratio(summary: dict[str, dict[str, Spread]], run: str, base: str, figure: str) -> str:
    a, b = summary.get(run, {}).get(figure), summary.get(base, {}).get(figure)
    return f"{a['median'] / b['median']:.2f}" if a and b and b["median"] else ""


def table(summary: dict[str, dict[str, Spread]], sizes: Sizes) -> str:
    """Medians [low-high] of the runs: gateway, direct baseline, Kafka's floor, and the gateway/direct ratio."""
    rows = [("scenario", "figure", "gateway", "direct", "kafka floor", "gw/direct")]

    def add(scenario: str, figure: str, key: str, gw: str, direct: str = "", floor: str = "") -> None:
        rows.append(
            (scenario, figure, _cell(summary, gw, key), _cell(summary, direct, key), _cell(summary, floor, key),
             _ratio(summary, gw, direct, key) if direct else "")
        )  # fmt: skip

    if "ready" in summary:
        add("ready", "seconds to ready (strict on)", "seconds", "ready")
    for rate in (sizes.low_rate, sizes.high_rate):
        runs = (f"gateway_open_{rate:g}", f"direct_open_{rate:g}", f"floor_open_{rate:g}")
        if runs[0] not in summary:
            continue
        scenario = f"open {rate:g}/s"
        for key in ("p50_ms", "p95_ms", "p99_ms", "rate", "errors"):
            add(scenario, key, key, *runs)
        add(scenario, "CPU ms/rt gateway | server | echo", "cpu_ms_gateway", runs[0])
        rows[-1] = (*rows[-1][:3], _cell(summary, runs[1], "cpu_ms_server"), _cell(summary, runs[2], "cpu_ms_echo"), "")
        add(scenario, "CPU ms/rt CSMS", "cpu_ms_csms", runs[0])
        add(scenario, "CPU ms/rt broker", "cpu_ms_broker", runs[0], floor=runs[2])
    if "gateway_closed" in summary:
        add("closed loop", "round trips/s", "rate", "gateway_closed", "direct_closed")
        add("closed loop", "round trips/s (strict enforce)", "rate", "gateway_strict_closed", "direct_closed")
        add("closed loop", "CPU ms/rt gateway | server", "cpu_ms_gateway", "gateway_closed")
        rows[-1] = (*rows[-1][:3], _cell(summary, "direct_closed", "cpu_ms_server"), "", "")
        add("closed loop", "CPU ms/rt CSMS", "cpu_ms_csms", "gateway_closed")
        add("closed loop", "CPU ms/rt broker", "cpu_ms_broker", "gateway_closed")
        add("closed loop", "p50_ms", "p50_ms", "gateway_closed", "direct_closed")
    for compression in ("false", "true"):
        add("idle stations", f"KB RSS per station (compression {compression})", "rss_per_station_kb",
            f"idle_compression_{compression}")  # fmt: skip
    add("storm", "stations back and booted", "back", "storm")
    add("storm", "seconds until all back", "storm_seconds", "storm")
    add("storm", "errors", "errors", "storm")
    rows = [row for row in rows if any(row[2:5]) or row[0] == "scenario"]
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def cost_curve(summary: dict[str, dict[str, Spread]], sizes: Sizes) -> dict[str, list[tuple[float, float]]]:
    """CPU ms per round trip of each process against the rate achieved: the two open-loop rates and saturation."""
    curve: dict[str, list[tuple[float, float]]] = {}
    points = [f"gateway_open_{sizes.low_rate:g}", f"gateway_open_{sizes.high_rate:g}", "gateway_closed"]
    for run in points:
        figures = summary.get(run, {})
        for process in ("gateway", "csms", "broker"):
            if f"cpu_ms_{process}" in figures and "rate" in figures:
                curve.setdefault(process, []).append(
                    (figures["rate"]["median"], figures[f"cpu_ms_{process}"]["median"])
                )
    return curve


def plot(results: dict[str, Any], sizes: Sizes, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    summary, runs, written = results["summary"], results["runs"], []
    curve = cost_curve(summary, sizes)
    if curve:
        fig, ax = plt.subplots(figsize=(7, 4))
        for process, points in curve.items():
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=process)
        ax.set(xlabel="round trips per second", ylabel="CPU ms per round trip", title="Cost per message against rate")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks([x for x, _ in next(iter(curve.values()))])
        ax.legend()
        written.append(_save(fig, out / "cost.png"))
    high = f"{sizes.high_rate:g}"
    histograms = {
        name: runs[f"{name}_open_{high}"][0] for name in ("gateway", "direct", "floor") if f"{name}_open_{high}" in runs
    }
    if histograms:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, run in histograms.items():
            ax.hist(run["rtt_sample_ms"], bins=80, range=(0, 20), alpha=0.5, label=name)
        ax.set(xlabel="round trip (ms)", ylabel="calls (sample)", title=f"Heartbeat round trip at {high}/s (first run)")
        ax.legend()
        written.append(_save(fig, out / "latency.png"))
    idle = {name: run[0] for name, run in runs.items() if name.startswith("idle_")}
    if idle:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, run in idle.items():
            xs, ys = zip(*run["samples"], strict=True)
            ax.plot(xs, [y / 2**20 for y in ys], marker=".", label=name)
        ax.set(xlabel="connected stations", ylabel="gateway RSS (MiB)", title="Memory against idle stations")
        ax.legend()
        written.append(_save(fig, out / "memory.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
