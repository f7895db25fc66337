"""The consumer watch, with an in-memory consumer: a stuck one is replaced, a moving one is left alone."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from ocpp_gw import consumer_watch
from ocpp_gw.config import KafkaConfig
from ocpp_gw.consumer_watch import ConsumerWatch

TP = TopicPartition("messages_out", 0)


class FakeConsumer:
    def __init__(self, moving: bool) -> None:
        self.moving, self.offset = moving, 5

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def position(self, tp: TopicPartition) -> int:
        if self.moving:
            self.offset += 1
        return self.offset


class Watch(ConsumerWatch):
    """The bus answers with end offsets beyond the consumer (records wait), or not at all."""

    bus_up = True

    async def _ends(self, owned: list[TopicPartition]) -> dict[TopicPartition, int] | None:
        return {tp: 1000 for tp in owned} if self.bus_up else None


def watch(consumer: FakeConsumer, bus_up: bool = True) -> tuple[Watch, list[FakeConsumer]]:
    replaced: list[FakeConsumer] = []
    current = [consumer]

    async def replace() -> None:
        replaced.append(current[0])
        current[0] = FakeConsumer(moving=True)

    result = Watch("test", KafkaConfig(stall_seconds=0.2), lambda: current[0], replace)
    result.bus_up = bus_up
    return result, replaced


def run_for(seconds: float, subject: Watch) -> None:
    async def run() -> None:
        subject.start()
        await asyncio.sleep(seconds)
        await subject.stop()

    asyncio.run(run())


@pytest.fixture(autouse=True)
def fast_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_watch, "CHECK_INTERVAL", 0.02)
    monkeypatch.setattr(consumer_watch, "LAG_TOLERANCE", 0.1)


def test_a_consumer_that_stops_while_records_wait_is_replaced_once_and_the_new_one_kept() -> None:
    stuck = FakeConsumer(moving=False)
    subject, replaced = watch(stuck)
    run_for(0.6, subject)
    assert replaced == [stuck] and subject.replacements == 1


def test_a_consumer_that_moves_is_left_alone() -> None:
    subject, replaced = watch(FakeConsumer(moving=True))
    run_for(0.6, subject)
    assert replaced == [] and subject.passing


def test_nothing_is_replaced_while_the_bus_does_not_answer_and_readiness_says_so() -> None:
    subject, replaced = watch(FakeConsumer(moving=False), bus_up=False)
    assert not asyncio.run(passing_after(0.6, subject)) and replaced == []


def test_a_consumer_behind_without_moving_stops_passing_before_it_is_replaced() -> None:
    subject, replaced = watch(FakeConsumer(moving=False))
    subject.config = KafkaConfig(stall_seconds=5)
    subject.rule.stall_after = 5
    assert not asyncio.run(passing_after(0.4, subject)) and replaced == []


async def passing_after(seconds: float, subject: Watch) -> bool:
    subject.start()
    await asyncio.sleep(seconds)
    passing = subject.passing
    await subject.stop()
    return passing
