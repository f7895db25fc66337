"""Logging: a library that repeats itself does not flood the log."""

import logging

from ocpp_gw.logs import RepeatFilter


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
