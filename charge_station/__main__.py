"""``charge-station``: a simulated OCPP charge station."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from ocpp_gw.cli import base_parser, install_stop_handlers, run_program
from ocpp_gw.config import Config

from .simulator import CHARGE_POINTS, run_station


async def _run(config: Config, args: argparse.Namespace) -> int:
    station = config.charge_station
    stop = asyncio.Event()
    install_stop_handlers(stop)
    running = asyncio.create_task(
        run_station(
            station,
            args.id or station.station_id,
            args.protocol or station.protocol,
            station.heartbeats if args.heartbeats is None else args.heartbeats,
        )
    )
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait((running, stopping), return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        stopping.cancel()
        return running.result()
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("charge-station", "Simulated charge station: boots, then sends heartbeats.")
    parser.add_argument("--id", help="station id (default: [charge_station] station_id)")
    parser.add_argument("--protocol", choices=sorted(CHARGE_POINTS), help="OCPP subprotocol")
    parser.add_argument("--heartbeats", type=int, help="stop after this many heartbeats (0: never)")
    return run_program("charge-station", parser.parse_args(argv), _run)


if __name__ == "__main__":
    sys.exit(main())
