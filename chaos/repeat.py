"""``python -m chaos.repeat``: the fault suite again and again on one machine, optionally with one core kept busy.

A suite that holds once is not enough: it must hold every time, also on a busy machine. Each run is
``chaos.run`` in a process of its own; the summary says how many runs held and, for those that did
not, which scenarios broke and how.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def spin() -> None:
    """Keep one core busy (the other load on a shared machine)."""
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.repeat", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--busy", action="store_true", help="keep one core busy with another process meanwhile")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "chaos-repeat"))
    parser.add_argument("suite_args", nargs=argparse.REMAINDER, help="arguments for chaos.run, after --")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suite_args = [a for a in args.suite_args if a != "--"]
    busy = multiprocessing.Process(target=spin, daemon=True) if args.busy else None
    if busy is not None:
        busy.start()
    held = 0
    summary = []
    try:
        for run in range(1, args.runs + 1):
            result = out / f"run-{run}.json"
            started = time.monotonic()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "chaos.run",
                    *suite_args,
                    "--out",
                    str(result),
                    "--logs",
                    str(out / f"logs-{run}"),
                ],
                check=False,
            )
            seconds = round(time.monotonic() - started)
            results = json.loads(result.read_text()) if result.exists() else {}
            broken = [name for name, r in results.items() if not r.get("holds")]
            ok = done.returncode == 0 and results and not broken
            held += bool(ok)
            summary.append({"run": run, "held": bool(ok), "seconds": seconds, "broken": broken})
            print(
                f"chaos.repeat: run {run}: {'held' if ok else 'BROKE ' + ','.join(broken)} in {seconds} s", flush=True
            )
    finally:
        if busy is not None:
            busy.terminate()
    (out / "summary.json").write_text(json.dumps({"runs": args.runs, "held": held, "each": summary}, indent=2))
    print(f"chaos.repeat: {held} of {args.runs} runs held (results in {out})")
    return 0 if held == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
