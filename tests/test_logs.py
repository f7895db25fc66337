"""Logging: a library that repeats itself does not flood the log."""

import logging

from ocpp_gw.logs import RepeatFilter, TransientFilter


def test_a_library_repeating_itself_is_logged_once_per_window() -> None:
    now = [0.0]
    repeat = RepeatFilter("aiokafka", window=10.0, clock=lambda: now[0])

    def passes(name: str, message: str) -> bool:
        return repeat.filter(logging.LogRecord(name, logging.ERROR, "", 0, message, (), None))

    assert passes("aiokafka.client", "Unable to connect")
    assert not passes("aiokafka.client", "Unable to connect")
    assert passes("aiokafka.client", "another message")
    assert passes("ocpp_gw", "station call timeout") and passes("ocpp_gw", "station call timeout")
    now[0] = 10.5
    assert passes("aiokafka.client", "Unable to connect")


def _kafka_error(message: str) -> logging.LogRecord:
    return logging.LogRecord("aiokafka.consumer.group_coordinator", logging.ERROR, "", 0, message, (), None)


def test_transient_kafka_errors_are_shown_as_info_until_they_last() -> None:
    now = [0.0]
    transient = TransientFilter(lasting=30.0, clock=lambda: now[0])
    logging.getLogger().setLevel(logging.INFO)
    first = _kafka_error("Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError")
    assert transient.filter(first) and first.levelname == "INFO"
    now[0] = 29.0
    again = _kafka_error("Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError")
    assert transient.filter(again) and again.levelname == "INFO"
    now[0] = 31.0
    lasting = _kafka_error("Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError")
    assert transient.filter(lasting) and lasting.levelname == "ERROR"
    now[0] = 100.0
    later = _kafka_error("Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError")
    assert transient.filter(later) and later.levelname == "INFO"


def test_other_kafka_errors_keep_their_level_and_transient_ones_are_hidden_at_warning_level() -> None:
    transient = TransientFilter(clock=lambda: 0.0)
    other = _kafka_error('Unable connect to "127.0.0.1:9092": [Errno 111] Connection refused')
    assert transient.filter(other) and other.levelname == "ERROR"
    logging.getLogger().setLevel(logging.WARNING)
    try:
        assert not transient.filter(_kafka_error("Got error produce response: NotLeaderForPartitionError"))
    finally:
        logging.getLogger().setLevel(logging.INFO)
