"""Command-line plumbing shared by the three programs: --config, logging, clean one-line errors."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import uvloop
from aiokafka.errors import KafkaConnectionError, KafkaError
from websockets.exceptions import InvalidHandshake

from .config import Config, ConfigError, load_config
from .kafka_clients import KafkaAccessError
from .logs import setup_logging


def base_parser(program: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=program, description=description)
    parser.add_argument("--config", default="./config.cfg", help="INI configuration file (default: ./config.cfg)")
    return parser


def run_program(
    program: str,
    args: argparse.Namespace,
    main: Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int | None]],
) -> int:
    """Load the configuration, set up logging and run ``main``; errors become one line and exit 1 or 2."""
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"{program}: config error: {error}", file=sys.stderr)
        return 2
    setup_logging(config.logging, program)
    keep_out_of_collections()
    try:
        with asyncio.Runner(loop_factory=event_loop_factory(config.runtime.event_loop)) as runner:
            return runner.run(main(config, args)) or 0
    except ConfigError as error:
        print(f"{program}: config error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except KafkaAccessError as error:
        print(f"{program}: {error}", file=sys.stderr)
        return 1
    except KafkaConnectionError as error:
        logging.getLogger(program).error(
            "cannot reach Kafka", extra={"servers": config.kafka.servers, "error": str(error)}
        )
        return 1
    except (KafkaError, OSError, InvalidHandshake) as error:
        logging.getLogger(program).error("fatal: %s", error)
        return 1


FULL_COLLECTION_AFTER = 100
"""Collections of the middle generation between two full collections (Python's default is 10)."""


def keep_out_of_collections() -> None:
    """Move every object alive now (modules, schemas, configuration, clients) out of the cyclic garbage
    collector's sight, and make full collections ten times rarer.

    What exists at start lives as long as the program, and each full collection would otherwise walk
    all of it while every station waits: in the CSMS, one took 20 ms at 1,000 calls/s. A full
    collection also walks every connection alive; while 10,000 stations connected, were dropped and
    reconnected, Python's default thresholds ran 27 of them in the gateway, 7 CPU-seconds. The gateway
    now breaks the cycles of a closed connection itself (:mod:`ocpp_gw.handshake`); cycles it does not
    know of (a failed TLS handshake's, say) are still collected: when the heap has grown by a quarter
    (Python's own rule) and at most every ``FULL_COLLECTION_AFTER`` collections of the middle
    generation. The young generations keep Python's thresholds, whose pauses are short.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop named in ``[runtime] event_loop``: uvloop's (less latency and CPU per message) or asyncio's."""
    return uvloop.new_event_loop if name == "uvloop" else None


def install_stop_handlers(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM end the process cleanly; a second one ends it at once."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            logging.getLogger("ocpp_gw").warning("second stop signal: exiting at once")
            os._exit(1)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)


SHUTDOWN_TIMEOUT = 15.0
"""Seconds a program may spend flushing and leaving Kafka once asked to stop."""


async def bounded(step: Awaitable[Any], what: str) -> None:
    """Run a shutdown ``step``, giving up after :data:`SHUTDOWN_TIMEOUT` so a stop always ends."""
    try:
        await asyncio.wait_for(step, SHUTDOWN_TIMEOUT)
    except (TimeoutError, KafkaError) as error:
        logging.getLogger("ocpp_gw").error("shutdown step did not finish", extra={"step": what, "error": repr(error)})
