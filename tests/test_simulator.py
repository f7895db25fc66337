"""Simulator pieces that need no network: reconnect backoff and station URLs."""

from __future__ import annotations

import random

from charge_station.simulator import backoff_delay, station_url


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempt in range(12):
        delays = [backoff_delay(attempt, 1.0, 60.0, rng) for _ in range(200)]
        ceiling = min(60.0, 2.0**attempt)
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8, "jitter should spread up to the ceiling"


def test_station_ids_are_percent_encoded_into_the_url() -> None:
    assert station_url("ws://h:1/ocpp/", "RDAM|123") == "ws://h:1/ocpp/RDAM%7C123"
