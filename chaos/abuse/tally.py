"""Counting violations: every driver reports its findings as a count plus the first few described."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Tally:
    """Violations as counted findings: all counted, the first ``keep`` described."""

    keep: int = 20
    count: int = 0
    first: list[str] = field(default_factory=list)

    def add(self, description: str) -> None:
        self.count += 1
        if len(self.first) < self.keep:
            self.first.append(description[:600])


def preview(data: bytes, size: int = 100) -> str:
    shown = data[:size].decode("utf-8", "backslashreplace")
    return shown + (f"... ({len(data)} bytes)" if len(data) > size else "")
