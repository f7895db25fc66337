"""Where station credentials live: a file (reloaded when it changes) and a compacted Kafka topic.

The file has one station per line: ``<station id> <password hash or -> [profile]``; ``#`` starts a
comment. The topic (``[ocpp_gateway] credentials_topic``) has key = station id and value =
``{"password_hash": ..., "profile": ...}``; a tombstone revokes the station even if the file
lists it. A CSMS rotates a password by publishing a new record; every gateway follows the topic.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .config import ConfigError, KafkaConfig
from .core.credentials import StationCredentials
from .routes import CompactedTable

log = logging.getLogger(__name__)

RELOAD_CHECK_INTERVAL = 1.0
"""Seconds between checks of the credentials file's modification time."""


class FileCredentials:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._entries: dict[str, StationCredentials] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        try:
            self._reload()
        except ValueError as error:
            raise ConfigError(f"[ocpp_gateway] credentials_file: {error}") from error

    def get(self, station_id: str) -> StationCredentials | None:
        now = time.monotonic()
        if now - self._checked >= RELOAD_CHECK_INTERVAL:
            self._checked = now
            try:
                self._reload()
            except (ValueError, OSError) as error:
                log.error("credentials file not reloaded; keeping the previous entries", extra={"error": str(error)})
        return self._entries.get(station_id)

    def _reload(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._entries, self._stamp = {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._entries = read_credentials_file(self.path)
            self._stamp = stamp

    def write(self, station_id: str, record: StationCredentials | None) -> None:
        """Set or (with None) remove a station, replacing the file atomically."""
        entries = read_credentials_file(self.path) if self.path.exists() else {}
        if record is None:
            entries.pop(station_id, None)
        else:
            entries[station_id] = record
        lines = ["# station id, password hash (- for none), optional security profile"]
        for name, entry in sorted(entries.items()):
            profile = "" if entry.profile is None else f" {entry.profile}"
            lines.append(f"{name} {entry.password_hash or '-'}{profile}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".credentials-")
        with os.fdopen(handle, "w") as out:
            out.write("\n".join(lines) + "\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)


def read_credentials_file(path: Path) -> dict[str, StationCredentials]:
    entries = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) not in (2, 3) or (len(fields) == 3 and fields[2] not in ("0", "1", "2", "3")):
            raise ValueError(f"{path}:{number}: expected '<station id> <hash or -> [profile]'")
        password_hash = None if fields[1] == "-" else fields[1]
        entries[fields[0]] = StationCredentials(password_hash, int(fields[2]) if len(fields) == 3 else None)
    return entries


REVOKED = StationCredentials(None, revoked=True)


class CredentialStore:
    """The credentials of a station: the Kafka topic's latest record wins over the file."""

    def __init__(self, file: FileCredentials | None, kafka: KafkaConfig | None, topic: str) -> None:
        self.file = file
        self.revoked: set[str] = set()
        self.table = (
            CompactedTable(kafka, topic, StationCredentials.decode, self._on_record) if kafka and topic else None
        )

    async def start(self, on_end: Callable[[asyncio.Task[None]], None] | None = None) -> None:
        if self.table is not None:
            await self.table.start(on_end)

    async def stop(self) -> None:
        if self.table is not None:
            await self.table.stop()

    def get(self, station_id: str) -> StationCredentials | None:
        if self.table is not None:
            record = self.table.get(station_id)
            if record is not None:
                return record
            if station_id in self.revoked:
                return REVOKED
        return self.file.get(station_id) if self.file is not None else None

    def _on_record(self, station_id: str, record: StationCredentials | None, headers: dict[str, bytes]) -> None:
        if record is None:
            self.revoked.add(station_id)
        else:
            self.revoked.discard(station_id)
