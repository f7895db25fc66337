"""Topics without a broker: a topic that one broker knows and another does not know yet."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaError

from ocpp_gw import kafka_topics
from ocpp_gw.config import KafkaConfig

UNKNOWN_TOPIC = 3


class Admin:
    """Answers ``describe_topics`` from a script, like brokers that learn of a new topic one after another."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers = answers
        self.asked = 0

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        self.asked += 1
        return [self.answers[min(self.asked, len(self.answers)) - 1]]


def test_partitions_of_a_topic_the_asked_broker_learns_of_a_moment_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen in `make test`: on the three-broker cluster, a CSMS created messages_out and 50 ms later was told by
    another broker that it did not exist, and stopped."""
    admin = Admin(
        [
            {"error_code": UNKNOWN_TOPIC, "topic": "messages_out", "partitions": []},
            {"error_code": 0, "topic": "messages_out", "partitions": [{"partition": 1}, {"partition": 0}]},
        ]
    )
    monkeypatch.setattr(kafka_topics, "make_admin", lambda config: admin)
    assert asyncio.run(kafka_topics.partitions_of(KafkaConfig(), "messages_out")) == [0, 1]
    assert admin.asked == 2


def test_a_topic_that_does_not_appear_is_an_error_after_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = Admin([{"error_code": UNKNOWN_TOPIC, "topic": "nowhere", "partitions": []}])
    monkeypatch.setattr(kafka_topics, "make_admin", lambda config: admin)
    with pytest.raises(KafkaError, match="topic nowhere does not exist"):
        asyncio.run(kafka_topics.partitions_of(KafkaConfig(), "nowhere", timeout=0.3))
    assert admin.asked >= 2
