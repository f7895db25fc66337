"""The ordered publisher: answers and events are kept until Kafka takes them, station CALLs are refused
at once, nothing is written twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, NotLeaderForPartitionError
from aiokafka.errors import OutOfOrderSequenceNumber as OutOfOrder

from ocpp_gw.publisher import OrderedPublisher, Outgoing


class ScriptedProducer:
    """Fails the first sends with the scripted errors, then acknowledges everything."""

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = errors
        self.sent: list[bytes | None] = []

    async def usable(self) -> None:
        return None

    async def send(self, topic: str, value: bytes | None = None, **_: Any) -> asyncio.Future[Any]:
        self.sent.append(value)
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.errors:
            delivery.set_exception(self.errors.pop(0))
        else:
            delivery.set_result(None)
        return delivery

    async def flush(self) -> None:
        return None


Step = Callable[[OrderedPublisher, list[str]], None]


def publish(errors: list[BaseException], *steps: Step, **limits: int) -> tuple[list[bytes | None], list[str]]:
    """Run ``steps`` (each publishes), then close; returns what was sent and which records were refused."""
    failed: list[str] = []

    async def run() -> list[bytes | None]:
        producer = ScriptedProducer(errors)
        publisher = OrderedPublisher(producer, **limits)  # type: ignore[arg-type]
        publisher.start()
        for step in steps:
            step(publisher, failed)
            await asyncio.sleep(0.01)
        await publisher.close()
        assert publisher.waiting_records == 0 and publisher.waiting_bytes == 0
        return producer.sent

    return asyncio.run(run()), failed


def record(value: str, durable: bool = True, key: bytes = b"k", **extra: Any) -> Step:
    def step(publisher: OrderedPublisher, failed: list[str]) -> None:
        publisher.publish(
            Outgoing("t", key, value.encode(), [], on_failure=lambda: failed.append(value), durable=durable, **extra)
        )

    return step


def test_an_answer_kafka_did_not_take_while_the_broker_was_down_is_kept_and_sent_again() -> None:
    # broker-stop in the fault suite: the station's answer timed out in the producer, then its fallback
    # CALLERROR did too, and the CSMS never got an answer. An answer is kept until Kafka takes it.
    sent, failed = publish([KafkaTimeoutError(), NotLeaderForPartitionError(), KafkaTimeoutError()], record("answer"))
    assert sent == [b"answer"] * 4 and failed == []


def test_a_station_call_kafka_did_not_take_is_refused_at_once_the_station_sends_it_again() -> None:
    sent, failed = publish([KafkaTimeoutError()], record("call", durable=False))
    assert sent == [b"call"] and failed == ["call"]


def test_a_station_call_refused_by_a_broken_producer_gets_one_more_attempt_on_its_replacement() -> None:
    assert publish([OutOfOrder()], record("call", durable=False)) == ([b"call", b"call"], [])
    assert publish([OutOfOrder(), OutOfOrder()], record("call", durable=False)) == ([b"call", b"call"], ["call"])


def test_a_record_kafka_can_never_take_runs_its_fallback() -> None:
    sent, failed = publish([MessageSizeTooLargeError()], record("huge"))
    assert sent == [b"huge"] and failed == ["huge"]


def test_later_records_of_a_kept_key_wait_behind_it_other_keys_go_on() -> None:
    sent, failed = publish([KafkaTimeoutError()], record("a1"), record("a2"), record("b1", key=b"other"), record("a3"))
    assert failed == [] and sent == [b"a1", b"b1", b"a1", b"a2", b"a3"]


def test_a_kept_record_that_is_no_longer_current_is_dropped() -> None:
    sent, failed = publish([KafkaTimeoutError()], record("old route", current=lambda: False))
    assert sent == [b"old route"] and failed == []


def test_no_more_than_the_bound_waits_beyond_it_records_are_refused() -> None:
    def both(publisher: OrderedPublisher, failed: list[str]) -> None:
        record("first")(publisher, failed)
        record("second", key=b"2")(publisher, failed)

    sent, failed = publish([], both, max_records=1)
    assert sent == [b"first"] and failed == ["second"]


def test_the_publisher_is_unhealthy_while_records_are_kept() -> None:
    async def run() -> tuple[bool, bool]:
        publisher = OrderedPublisher(ScriptedProducer([KafkaTimeoutError()]))  # type: ignore[arg-type]
        publisher.start()
        publisher.publish(Outgoing("t", b"k", b"v", []))
        await asyncio.sleep(0.05)
        kept = publisher.healthy, publisher.kept_records
        await publisher.close()
        return kept == (False, 1), publisher.kept_records == 0

    assert asyncio.run(run()) == (True, True)
