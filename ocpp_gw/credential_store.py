"""Where station credentials live: a file (watched for changes) and a compacted Kafka topic.

The file has one station per line: ``<station id> <password hash or -> [profile]`` or
``<station id> revoked``; ``#`` starts a comment. The topic (``[ocpp_gateway] credentials_topic``)
has key = station id and value = ``{"password_hash": ..., "profile": ...}`` or ``{"revoked": true}``.
Revoking writes a marker rather than deleting, because a station no store knows may be let in
(``allow_unknown_stations``, profile 0) and a tombstone is compacted away in the end; a tombstone
still revokes while it lasts. A station revoked in either store is revoked; otherwise the topic's
record wins. A CSMS rotates a password by publishing a new record; every gateway follows the topic
and is told (``on_change``) of each station whose record may have changed, to close its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .config import ConfigError, KafkaConfig
from .core.credentials import StationCredentials
from .core.protocol import valid_station_id
from .routes import CompactedTable

log = logging.getLogger(__name__)

RELOAD_CHECK_INTERVAL = 1.0
"""Seconds between checks of the credentials file's identity, modification time and size."""

REVOKED = StationCredentials(None, revoked=True)
REVOKED_FIELD = "revoked"
"""The second field of a revoked station's line in the file."""


class FileCredentials:
    """The credentials file's entries, re-read when the file changes (checked at most every RELOAD_CHECK_INTERVAL)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.on_change: Callable[[str], None] | None = None
        """Told the id of each station whose entry a reload added, removed or changed."""
        self._entries: dict[str, StationCredentials] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._bad_stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        try:
            self._reload()
        except ValueError as error:
            raise ConfigError(f"[ocpp_gateway] credentials_file: {error}") from error

    def get(self, station_id: str) -> StationCredentials | None:
        if time.monotonic() - self._checked >= RELOAD_CHECK_INTERVAL:
            self.check()
        return self._entries.get(station_id)

    def check(self) -> None:
        """Reload the file if it changed; an unreadable file keeps the previous entries."""
        self._checked = time.monotonic()
        try:
            self._reload()
        except (ValueError, OSError) as error:
            log.error("credentials file not reloaded; keeping the previous entries", extra={"error": str(error)})

    def _reload(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            stamp = None
        else:
            stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp or (stamp is not None and stamp == self._bad_stamp):
            return
        try:
            entries = read_credentials_file(self.path) if stamp is not None else {}
        except ValueError:
            self._bad_stamp = stamp  # reported once, not at every check
            raise
        previous, self._entries, self._stamp = self._entries, entries, stamp
        changed = sorted(name for name in previous.keys() | entries.keys() if previous.get(name) != entries.get(name))
        for name in changed:
            if self.on_change is not None:
                try:
                    self.on_change(name)
                except Exception:
                    log.exception("credentials change listener failed", extra={"station_id": name})

    def write(self, station_id: str, record: StationCredentials | None) -> None:
        """Set, revoke (with a revoked record) or remove (with None) a station, replacing the file atomically."""
        if not valid_station_id(station_id):
            raise ValueError(f"invalid station id {station_id[:64]!r}")
        entries = read_credentials_file(self.path) if self.path.exists() else {}
        if record is None:
            entries.pop(station_id, None)
        else:
            entries[station_id] = record
        lines = ["# station id, then a password hash (- for none) and an optional security profile, or 'revoked'"]
        for name, entry in sorted(entries.items()):
            if entry.revoked:
                lines.append(f"{name} {REVOKED_FIELD}")
                continue
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
        if fields[1:] == [REVOKED_FIELD]:
            entries[fields[0]] = REVOKED
            continue
        if (
            len(fields) not in (2, 3)
            or fields[1] == REVOKED_FIELD
            or (len(fields) == 3 and fields[2] not in ("0", "1", "2", "3"))
        ):
            raise ValueError(
                f"{path}:{number}: expected '<station id> <hash or -> [profile]' or '<station id> revoked'"
            )
        password_hash = None if fields[1] == "-" else fields[1]
        entries[fields[0]] = StationCredentials(password_hash, int(fields[2]) if len(fields) == 3 else None)
    return entries


class CredentialStore:
    """The credentials of a station: revoked if either store revokes it, else the topic's record wins over the file.

    ``on_change(station_id)`` is called whenever that station's record may have changed: for each
    topic record or tombstone read, and for each station a file reload added, removed or changed.
    """

    def __init__(
        self,
        file: FileCredentials | None,
        kafka: KafkaConfig | None,
        topic: str,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.file = file
        self.on_change = on_change
        self.revoked: set[str] = set()
        """Stations whose latest topic record is a tombstone."""
        self.table = (
            CompactedTable(kafka, topic, StationCredentials.decode, self._on_record) if kafka and topic else None
        )
        self.watching: asyncio.Task[None] | None = None
        if file is not None:
            file.on_change = self._changed

    async def start(self, on_end: Callable[[asyncio.Task[None]], None] | None = None) -> None:
        """Read the topic to its end, then follow it and watch the file; ``on_end`` is told if either task ends."""
        if self.table is not None:
            await self.table.start(on_end)
        if self.file is not None:
            self.watching = asyncio.create_task(self.watch(), name="watch-credentials-file")
            if on_end is not None:
                self.watching.add_done_callback(on_end)

    async def stop(self) -> None:
        if self.watching is not None:
            self.watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watching
            self.watching = None
        if self.table is not None:
            await self.table.stop()

    async def watch(self) -> None:
        """Check the file every RELOAD_CHECK_INTERVAL seconds, so changes are announced even when nobody connects."""
        assert self.file is not None
        while True:
            await asyncio.sleep(RELOAD_CHECK_INTERVAL)
            self.file.check()

    def get(self, station_id: str) -> StationCredentials | None:
        from_file = self.file.get(station_id) if self.file is not None else None
        from_topic = self.table.get(station_id) if self.table is not None else None
        if station_id in self.revoked or any(
            record is not None and record.revoked for record in (from_file, from_topic)
        ):
            return REVOKED
        return from_topic if from_topic is not None else from_file

    def known(self, station_id: str) -> bool:
        """True when any store has a record of the station (credentials or a revocation)."""
        return self.get(station_id) is not None

    def _on_record(self, station_id: str, record: StationCredentials | None, headers: dict[str, bytes]) -> None:
        if record is None:
            self.revoked.add(station_id)
        else:
            self.revoked.discard(station_id)
        self._changed(station_id)

    def _changed(self, station_id: str) -> None:
        if self.on_change is not None:
            self.on_change(station_id)
