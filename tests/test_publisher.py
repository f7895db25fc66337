"""The ordered publisher: a record the broken producer did not write is published once more, never twice."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber

from ocpp_gw.kafka_bus import OrderedPublisher, Outgoing


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


def publish(errors: list[BaseException]) -> tuple[list[bytes | None], list[str]]:
    failed: list[str] = []

    async def run() -> list[bytes | None]:
        producer = ScriptedProducer(errors)
        publisher = OrderedPublisher(producer)  # type: ignore[arg-type]
        publisher.start()
        publisher.publish(Outgoing("t", b"k", b"v", [], on_failure=lambda: failed.append("v")))
        await publisher.close()
        return producer.sent

    return asyncio.run(run()), failed


def test_a_record_refused_for_an_out_of_order_sequence_is_sent_once_more() -> None:
    sent, failed = publish([OutOfOrderSequenceNumber()])
    assert sent == [b"v", b"v"] and failed == []


def test_it_is_retried_only_once() -> None:
    sent, failed = publish([OutOfOrderSequenceNumber(), OutOfOrderSequenceNumber()])
    assert sent == [b"v", b"v"] and failed == ["v"]


def test_a_timed_out_record_is_not_sent_again_it_may_be_in_kafka() -> None:
    sent, failed = publish([KafkaTimeoutError()])
    assert sent == [b"v"] and failed == ["v"]
