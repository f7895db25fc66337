"""1. Fuzzing frames, the driver: draw the recipes for a seed, share them among lanes, sum the reports.

The probes are the same for the same seed and connection count; each lane (:mod:`.lane`) is one
station connection of a given OCPP version.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .client import split_url
from .lane import _FuzzRun, _Lane
from .oracle import DEFAULT_MAX_MESSAGE_SIZE, VERSIONS
from .probes import lane_probes, lane_recipes
from .recipes import Recipe


async def fuzz_frames(
    url: str,
    frames: int,
    seed: int,
    *,
    connections: int = 6,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    answer_timeout: float = 35.0,
    deflate: bool = True,
    station_prefix: str = "FUZZ_",
) -> dict[str, Any]:
    """Send ``frames`` fuzzed probes to the gateway at ``url`` and judge every reaction.

    ``connections`` stations (``<station_prefix><n>``, versions in turn, every second one
    offering permessage-deflate when ``deflate``) share the probes; the probes are the same for
    the same seed and connection count. ``answer_timeout`` bounds every wait (keep it above the
    gateway's ``csms_response_timeout``); ``max_message_size`` must be the gateway's.
    """
    host, port, path, ssl_context = split_url(url)
    lanes = max(1, min(connections, frames or 1))
    shares = [frames // lanes + (1 if n < frames % lanes else 0) for n in range(lanes)]
    versions = [VERSIONS[n % len(VERSIONS)] for n in range(lanes)]

    def generate() -> list[list[Recipe]]:
        return [lane_recipes(shares[n], seed, n) for n in range(lanes)]

    recipes = await asyncio.to_thread(generate)  # hypothesis is CPU work: keep the event loop free
    run = _FuzzRun(host, port, path, ssl_context, max_message_size, answer_timeout, station_prefix)
    started = time.monotonic()
    workers = [_Lane(run, n, versions[n], deflate and n % 2 == 1) for n in range(lanes)]
    await asyncio.gather(
        *(
            lane.run_probes(lane_probes(versions[n], recipes[n], lane=n, max_message_size=max_message_size))
            for n, lane in enumerate(workers)
        )
    )
    seconds = time.monotonic() - started
    report = run.report
    return {
        "frames": report.frames,
        "answered": report.answered,
        "gateway_errors": dict(report.gateway_errors),
        "csms_answers": dict(report.csms_answers),
        "silent": report.silent,
        "closes": dict(report.closes),
        "violations": report.violations.first,
        "violation_count": report.violations.count,
        "seconds": round(seconds, 2),
        "frames_per_second": round(report.frames / seconds, 1) if seconds else 0.0,
        "wires": dict(report.wires),
        "reconnects": report.reconnects,
        "barriers": report.barriers,
        "connections": lanes,
    }
