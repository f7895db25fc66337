"""Logging for the three programs: JSON lines for machines, a compact line for terminals."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from pythonjsonlogger.json import JsonFormatter

from .config import LoggingConfig

_STANDARD_ATTRIBUTES = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` with the record's extra fields appended."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRIBUTES}
        if extras:
            line += " " + " ".join(f"{key}={_printable(str(value))}" for key, value in extras.items())
        return line


def _printable(text: str) -> str:
    """``text`` with CR, LF and other unprintable characters escaped: values often come from stations
    (message ids, close reasons), and one must not be able to write a line of its own."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


class RepeatFilter(logging.Filter):
    """Lets a library's identical message through once per ``window`` seconds: aiokafka retrying a
    dead broker every few milliseconds must not write thousands of identical lines a second."""

    def __init__(self, logger: str, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.prefix, self.window, self.clock = logger, window, clock
        self._last: dict[tuple[str, int, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefix):
            return True
        key = (record.name, record.levelno, record.getMessage())
        now = self.clock()
        if now - self._last.get(key, -1e18) < self.window:
            return False
        if len(self._last) > 1000:
            self._last = {k: t for k, t in self._last.items() if now - t < self.window}
        self._last[key] = now
        return True


TRANSIENT_KAFKA_ERRORS = (
    "NotLeaderForPartitionError",
    "LeaderNotAvailableError",
    "GroupCoordinatorNotAvailableError",
    "NotCoordinatorForGroupError",
    "CoordinatorLoadInProgressError",
    "RebalanceInProgressError",
    "UnknownTopicOrPartitionError",
    "NotEnoughReplicasError",
    "Marking the coordinator dead",
)
"""What aiokafka logs while a cluster starts or moves a leader or coordinator; it clears by itself."""


class TransientFilter(logging.Filter):
    """Shows aiokafka's transient errors (:data:`TRANSIENT_KAFKA_ERRORS`) as INFO, not as errors, unless
    the same one keeps coming for ``lasting`` seconds: then it is a problem and keeps its level."""

    def __init__(self, lasting: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.lasting, self.clock = lasting, clock
        self._stretch: dict[str, tuple[float, float]] = {}
        """Per error name: when its current stretch began and when it was last seen."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka") or record.levelno <= logging.INFO:
            return True
        message = record.getMessage()
        name = next((n for n in TRANSIENT_KAFKA_ERRORS if n in message), None)
        if name is None:
            return True
        now = self.clock()
        began, last = self._stretch.get(name, (now, now))
        if now - last > self.lasting:
            began = now
        self._stretch[name] = (began, now)
        if now - began >= self.lasting:
            return True
        record.levelno, record.levelname = logging.INFO, "INFO"
        return logging.getLogger().isEnabledFor(logging.INFO)


def setup_logging(config: LoggingConfig, program: str) -> None:
    """Log to stderr as JSON, or as text when ``format`` says so or is auto and stderr is a TTY."""
    handler = logging.StreamHandler(sys.stderr)
    use_text = config.format == "text" or (config.format == "auto" and sys.stderr.isatty())
    if use_text:
        handler.setFormatter(TextFormatter())
    else:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                static_fields={"program": program},
                timestamp=False,
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.level)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    handler.addFilter(TransientFilter())
    handler.addFilter(RepeatFilter("aiokafka"))
    logging.getLogger("websockets").setLevel(max(logging.WARNING, root.level))
