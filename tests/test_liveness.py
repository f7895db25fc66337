"""The stall rule: owned records waiting, no progress, the bus answering, for stall_after seconds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ocpp_gw.core.liveness import ProgressWatch


def test_a_consumer_that_does_not_move_while_records_wait_is_stalled_after_the_delay() -> None:
    watch = ProgressWatch(stall_after=10)
    assert not watch.check(0, {0: 5}, {0: 9})
    assert not watch.check(1, {0: 5}, {0: 9}) and watch.lagging
    assert not watch.check(10.9, {0: 5}, {0: 9}) and watch.lagging_for(10.9) == 9.9
    assert watch.check(11, {0: 5}, {0: 9})


def test_progress_or_nothing_waiting_starts_the_count_again() -> None:
    watch = ProgressWatch(stall_after=10)
    watch.check(0, {0: 5}, {0: 9})
    watch.check(1, {0: 5}, {0: 9})
    assert not watch.check(8, {0: 6}, {0: 9}) and not watch.lagging
    assert not watch.check(9, {0: 6}, {0: 9})
    assert not watch.check(18, {0: 6}, {0: 9})
    assert watch.check(19, {0: 6}, {0: 9})
    watch.reset()
    assert not watch.check(30, {0: 9}, {0: 9}) and not watch.check(100, {0: 9}, {0: 9})


def test_time_while_the_bus_does_not_answer_does_not_count() -> None:
    watch = ProgressWatch(stall_after=10)
    watch.check(0, {0: 5}, {0: 9})
    watch.check(1, {0: 5}, {0: 9})
    assert not watch.check(30, {0: 5}, None) and not watch.bus_answers
    assert not watch.check(31, {0: 5}, {0: 9}) and watch.bus_answers
    assert not watch.check(40, {0: 5}, {0: 9})
    assert watch.check(41, {0: 5}, {0: 9})


def test_no_owned_partitions_is_never_a_stall() -> None:
    watch = ProgressWatch(stall_after=1)
    assert not any(watch.check(t, {}, {0: 100}) for t in range(10))


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 100)), min_size=1, max_size=40))
def test_a_consumer_that_moves_at_every_check_is_never_stalled(steps: list[tuple[int, int]]) -> None:
    watch = ProgressWatch(stall_after=0.5)
    for tick, (partition, _) in enumerate(steps):
        assert not watch.check(float(tick), {partition: tick}, {partition: 1000})
