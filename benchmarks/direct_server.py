"""The baseline: what a team writes without a gateway, a websockets server with the ``ocpp`` package's
ChargePoint answering BootNotification and Heartbeat itself, with no Kafka in between."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call_result
from websockets.asyncio.server import ServerConnection, serve

from ocpp_gw.cli import event_loop_factory
from ocpp_gw.sdk import utc_now


class DirectCsms(ChargePoint):  # type: ignore[misc]
    @on("BootNotification")  # type: ignore[untyped-decorator]
    def on_boot(self, **_: Any) -> Any:
        return call_result.BootNotification(current_time=utc_now(), interval=300, status="Accepted")

    @on("Heartbeat")  # type: ignore[untyped-decorator]
    def on_heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=utc_now())


async def handle(connection: ServerConnection) -> None:
    path = connection.request.path if connection.request else "/unknown"
    station = DirectCsms(path.rsplit("/", 1)[-1], connection)
    station.logger.disabled = True
    with contextlib.suppress(websockets.exceptions.ConnectionClosed):
        await station.start()


async def main_async(port: int) -> None:
    async with serve(handle, "127.0.0.1", port, subprotocols=[websockets.Subprotocol("ocpp2.0.1")], compression=None):
        print("direct server ready", flush=True)
        await asyncio.Future()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9500)
    parser.add_argument("--event-loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=event_loop_factory(args.event_loop)) as runner:
        runner.run(main_async(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
