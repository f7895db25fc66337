"""``charge-station``: a simulated OCPP charge station."""

from __future__ import annotations

import argparse
import sys

from ocpp_gw.cli import base_parser, run_program
from ocpp_gw.config import Config

from .simulator import CHARGE_POINTS, run_station


async def _run(config: Config, args: argparse.Namespace) -> int:
    station = config.charge_station
    return await run_station(
        station,
        args.id or station.station_id,
        args.protocol or station.protocol,
        station.heartbeats if args.heartbeats is None else args.heartbeats,
    )


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("charge-station", "Simulated charge station: boots, then sends heartbeats.")
    parser.add_argument("--id", help="station id (default: [charge_station] station_id)")
    parser.add_argument("--protocol", choices=sorted(CHARGE_POINTS), help="OCPP subprotocol")
    parser.add_argument("--heartbeats", type=int, help="stop after this many heartbeats (0: never)")
    return run_program("charge-station", parser.parse_args(argv), _run)


if __name__ == "__main__":
    sys.exit(main())
