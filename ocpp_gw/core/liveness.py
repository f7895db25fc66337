"""When a Kafka consumer has stopped making progress: the rule, without I/O or a clock of its own.

A consumer can stop for good without failing: after a broker was killed, aiokafka's group
coordinator may mark the coordinator dead and never fetch again (found by the fault suite). The
consumer then owns partitions with records waiting, its positions do not move, and nothing says
so. :class:`ProgressWatch` is told, at each check, the positions the consumer owns and the end
offsets the bus reports (None when the bus did not answer); it says when the consumer has owned
records waiting, without moving, for ``stall_after`` seconds of a bus that answers.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field


@dataclass
class ProgressWatch:
    stall_after: float
    since: float | None = None
    """When the current stretch without progress, with records waiting and the bus answering, began."""
    positions: dict[Hashable, int] = field(default_factory=dict)
    bus_answers: bool = True
    """Whether the bus answered at the last check."""

    def check(self, now: float, positions: Mapping[Hashable, int], ends: Mapping[Hashable, int] | None) -> bool:
        """True when the consumer counts as stalled (its owner should replace it, then :meth:`reset`)."""
        moved = dict(positions) != self.positions
        self.positions = dict(positions)
        self.bus_answers = ends is not None
        waiting = ends is not None and any(ends.get(p, 0) > offset for p, offset in positions.items())
        if moved or not waiting:
            self.since = None
            return False
        if self.since is None:
            self.since = now
        return now - self.since >= self.stall_after

    @property
    def lagging(self) -> bool:
        """Records wait and the consumer has not moved since the last check."""
        return self.since is not None

    def lagging_for(self, now: float) -> float:
        """Seconds the consumer has been behind without moving (0 when it is not)."""
        return 0.0 if self.since is None else now - self.since

    def reset(self) -> None:
        self.since = None
        self.positions = {}
