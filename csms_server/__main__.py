"""``csms-server``: the reference CSMS worker, and ``csms-server call`` to start a call to a station."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from ocpp_gw.cli import base_parser, install_stop_handlers, run_program
from ocpp_gw.config import Config
from ocpp_gw.kafka_clients import check_access

from .call import call_station
from .worker import CsmsWorker


async def _serve(config: Config, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    install_stop_handlers(stop)
    await check_access(config.kafka)
    await CsmsWorker(config).run(stop)
    return 0


async def _console(config: Config, args: argparse.Namespace) -> int:
    from .console.web import Console  # the web server's packages load only for the console

    stop = asyncio.Event()
    install_stop_handlers(stop)
    await Console(config).run(stop)
    return 0


async def _call(config: Config, args: argparse.Namespace) -> int:
    return await call_station(config, args.station_id, args.action, args.payload)


def _payload(text: str) -> dict[str, object]:
    try:
        payload = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"payload is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise argparse.ArgumentTypeError("payload must be a JSON object")
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("csms-server", "Reference CSMS: answers station calls arriving through Kafka.")
    commands = parser.add_subparsers(dest="command")
    call = commands.add_parser("call", help="send a CALL to a station and print its answer")
    call.add_argument("station_id")
    call.add_argument("action", help="OCPP action, e.g. Reset, GetVariables, TriggerMessage")
    call.add_argument("payload", nargs="?", default={}, type=_payload, help="JSON object (default {})")
    call.add_argument("--config", default=argparse.SUPPRESS, help="INI configuration file")
    console = commands.add_parser("console", help="serve the live web console on [console] host and port")
    console.add_argument("--config", default=argparse.SUPPRESS, help="INI configuration file")
    args = parser.parse_args(argv)
    programs = {"call": _call, "console": _console}
    return run_program("csms-server", args, programs.get(args.command, _serve))


if __name__ == "__main__":
    sys.exit(main())
