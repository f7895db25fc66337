"""``charge-station``: one or many simulated OCPP charge stations."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from ocpp_gw.cli import base_parser, install_stop_handlers, run_program
from ocpp_gw.config import Config

from .simulator import PROTOCOLS, run_stations


async def _run(config: Config, args: argparse.Namespace) -> int:
    station = config.charge_station
    if args.stations:
        ids = [station.id_pattern.format(n=n) for n in range(1, args.stations + 1)]
    else:
        ids = [args.id or station.station_id]
    heartbeats = station.heartbeats if args.heartbeats is None else args.heartbeats
    stop = asyncio.Event()
    install_stop_handlers(stop)
    running = asyncio.create_task(
        run_stations(station, ids, args.protocol or station.protocol, heartbeats, args.charge)
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
    parser = base_parser("charge-station", "Simulated charge station(s): boot, heartbeat, answer the CSMS.")
    parser.add_argument("--id", help="station id (default: [charge_station] station_id)")
    parser.add_argument("--protocol", choices=PROTOCOLS, help="OCPP subprotocol")
    parser.add_argument("--heartbeats", type=int, help="exit after this many heartbeats (0: never)")
    parser.add_argument("--stations", type=int, default=0, help="run N stations named by [charge_station] id_pattern")
    parser.add_argument("--charge", action="store_true", help="run one charging session after the first boot")
    return run_program("charge-station", parser.parse_args(argv), _run)


if __name__ == "__main__":
    sys.exit(main())
