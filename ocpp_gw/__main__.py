"""``ocpp-gw``: the OCPP-J WebSocket to Kafka gateway, and ``ocpp-gw credentials`` to manage stations."""

from __future__ import annotations

import argparse
import asyncio
import sys

from . import credentials_cli
from .cli import base_parser, install_stop_handlers, run_program
from .config import Config
from .gateway import Gateway
from .kafka_clients import check_access


async def _serve(config: Config, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    install_stop_handlers(stop)
    await check_access(config.kafka)
    gateway = Gateway(config)
    await gateway.run(stop)
    return 1 if gateway.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("ocpp-gw", "Bridge OCPP-J charge station WebSockets to Kafka.")
    credentials_cli.add_arguments(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return run_program("ocpp-gw", args, credentials_cli.run if args.command == "credentials" else _serve)


if __name__ == "__main__":
    sys.exit(main())
