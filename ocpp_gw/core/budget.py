"""What a station's frames may cost: its message rate, how far it may go over it, and its log lines.

Every frame a station sends counts against its rate except its answer to the CSMS call in flight
(the session decides which, :meth:`ocpp_gw.core.session.StationSession.station_text`). Frames over
the rate are refused; a station that sends another burst's worth over it (refilled at the same
rate) is closed. A station's frames also buy at most a burst of log lines and then one a second;
the notices beyond are counted but quiet, and the next logged one says how many were left out.
"""

from __future__ import annotations

from dataclasses import replace

from .actions import Action, CloseStation, Notice
from .admission import TokenBucket

LOG_LINES_PER_SECOND = 1.0
LOG_LINES_BURST = 10


class StationBudget:
    """The rate, strike and log-line buckets of one station connection."""

    __slots__ = ("_log_lines", "_quiet", "_rate", "_strikes")

    def __init__(self, rate: float | None, burst: int) -> None:
        self._rate = TokenBucket(rate, burst, 0.0) if rate is not None else None
        self._strikes = TokenBucket(rate, burst, 0.0) if rate is not None else None
        self._log_lines = TokenBucket(LOG_LINES_PER_SECOND, LOG_LINES_BURST, 0.0)
        self._quiet = 0

    def take(self, now: float) -> bool:
        """Spend one frame of the rate; False when the frame is over it."""
        return self._rate is None or self._rate.take(now)

    def strike(self, now: float) -> bool:
        """Count a frame over the rate; False once the station has gone a burst's worth over it."""
        return self._strikes is None or self._strikes.take(now)

    def limit_log_lines(self, actions: list[Action], now: float) -> list[Action]:
        """Mark notices quiet once the station has used its log lines; a close is always logged."""
        closing = any(isinstance(a, CloseStation) for a in actions)
        for index, action in enumerate(actions):
            if not isinstance(action, Notice):
                continue
            if closing or self._log_lines.take(now):
                actions[index] = replace(action, suppressed=self._quiet)
                self._quiet = 0
            else:
                actions[index] = replace(action, quiet=True)
                self._quiet += 1
        return actions
