"""``csms-server``: the reference CSMS worker."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ocpp_gw.cli import base_parser, install_stop_handlers, run_program
from ocpp_gw.config import Config

from .worker import CsmsWorker


async def _serve(config: Config, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    install_stop_handlers(stop)
    await CsmsWorker(config).run(stop)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("csms-server", "Reference CSMS: answers station calls arriving through Kafka.")
    return run_program("csms-server", parser.parse_args(argv), _serve)


if __name__ == "__main__":
    sys.exit(main())
