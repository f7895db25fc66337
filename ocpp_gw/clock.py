"""The wall clock as OCPP and the envelope write it: one helper for every program (the core takes time as
an argument)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    """The time now as OCPP writes it: UTC, ISO 8601 with milliseconds and ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
