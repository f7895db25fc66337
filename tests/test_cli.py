"""The programs' shared entry: configuration errors, Kafka refusals and failures become one line and an exit status."""

from __future__ import annotations

import argparse
import asyncio
import gc
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaError

from ocpp_gw import __main__ as gateway_main
from ocpp_gw import cli
from ocpp_gw.config import Config, ConfigError
from ocpp_gw.kafka_clients import KafkaAccessError

ROOT = Path(__file__).resolve().parent.parent


def args(config: str = str(ROOT / "config.cfg")) -> argparse.Namespace:
    return argparse.Namespace(config=config)


def program(
    error: BaseException | None, result: int | None = None
) -> Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int | None]]:
    async def main(config: Config, namespace: argparse.Namespace) -> int | None:
        if error is not None:
            raise error
        return result

    return main


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (None, 0),
        (ConfigError("[kafka] servers: empty"), 2),
        (KafkaAccessError("Kafka refused the credentials"), 1),
        (KafkaConnectionError("no broker"), 1),
        (KafkaError("broken"), 1),
        (OSError("address in use"), 1),
        (KeyboardInterrupt(), 130),
    ],
)
def test_each_failure_has_its_exit_status(
    error: BaseException | None, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.run_program("ocpp-gw", args(), program(error)) == status
    if isinstance(error, ConfigError | KafkaAccessError):
        assert capsys.readouterr().err.count("\n") == 1


def test_a_program_returns_its_own_status() -> None:
    assert cli.run_program("ocpp-gw", args(), program(None, 3)) == 3


def test_a_config_that_does_not_load_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.cfg"
    broken.write_text("[ocpp_gateway]\nlistening_port = many\n")
    assert gateway_main.main(["--config", str(broken)]) == 2
    assert "config error" in capsys.readouterr().err


def test_what_exists_at_start_is_frozen_and_full_collections_are_rarer() -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's defaults
    try:
        cli.keep_out_of_collections()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (700, 10, cli.FULL_COLLECTION_AFTER)
        assert cli.FULL_COLLECTION_AFTER >= 100
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_the_event_loop_is_chosen_by_name() -> None:
    assert cli.event_loop_factory("uvloop") is not None
    assert cli.event_loop_factory("asyncio") is None


def test_a_shutdown_step_that_hangs_is_given_up() -> None:
    async def main() -> None:
        cli.SHUTDOWN_TIMEOUT, saved = 0.05, cli.SHUTDOWN_TIMEOUT
        try:
            await cli.bounded(asyncio.Event().wait(), "wait forever")
        finally:
            cli.SHUTDOWN_TIMEOUT = saved

    asyncio.run(main())
