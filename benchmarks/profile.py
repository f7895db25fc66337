"""Sampling profiles of the benchmark's processes with py-spy, summarised as the functions that take the time.

``make bench ARGS=--profile`` records the gateway and the CSMS during the latency scenario; the raw
profiles are speedscope files (open them at speedscope.app) and the summary goes to ``results.json``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PY_SPY = Path(sys.executable).with_name("py-spy")


class Profiler:
    """py-spy attached to one process for a fixed time."""

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        self.out = out
        binary = str(PY_SPY) if PY_SPY.exists() else shutil.which("py-spy") or "py-spy"
        self.popen = subprocess.Popen(
            [binary, "record", "--nonblocking", "-r", "200", "-p", str(pid), "-d", str(int(seconds)),
             "-f", "speedscope", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    def summary(self, top: int = 12) -> dict[str, Any]:
        """Wait for the profile, then the share of samples each function takes (itself, and with its callees)."""
        _, stderr = self.popen.communicate(timeout=120)
        if self.popen.returncode != 0 or not self.out.exists():
            return {"error": stderr.strip()[-300:]}
        return summarise(json.loads(self.out.read_text()), top)


def summarise(speedscope: dict[str, Any], top: int) -> dict[str, Any]:
    frames = speedscope["shared"]["frames"]
    names = [f"{f['name']} ({Path(f.get('file', '?')).name}:{f.get('line', '?')})" for f in frames]
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    weight = 0.0
    for profile in speedscope["profiles"]:
        for stack, w in zip(profile["samples"], profile["weights"], strict=True):
            weight += w
            if stack:
                own[names[stack[-1]]] += w
            for name in {names[i] for i in stack}:
                total[name] += w

    def share(counts: Counter[str]) -> dict[str, float]:
        return {name: round(value / weight, 3) for name, value in counts.most_common(top)} if weight else {}

    return {"samples_seconds": round(weight, 2), "self": share(own), "inclusive": share(total)}
