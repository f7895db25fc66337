"""TLS for profile 2 and 3 listeners: TLS 1.2 or later, certificates reloadable without dropping connections.

Reloading loads the files again into the same ``SSLContext`` objects, so new handshakes use the new
certificate while established connections carry on (on SIGHUP, or when a file's mtime changes).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

log = logging.getLogger(__name__)

WATCH_INTERVAL = 5.0


class TlsContexts:
    def __init__(self, cert_file: str, key_file: str, ca_file: str) -> None:
        self.cert_file, self.key_file, self.ca_file = cert_file, key_file, ca_file
        self._contexts: dict[int, ssl.SSLContext] = {}
        self._stamps = self._file_stamps()

    def for_profile(self, profile: int) -> ssl.SSLContext | None:
        """The server context of a listener: None for profiles 0 and 1 (plain ws)."""
        if profile < 2:
            return None
        if profile not in self._contexts:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if profile == 3:
                context.verify_mode = ssl.CERT_REQUIRED
            self._load(profile, context)
            self._contexts[profile] = context
        return self._contexts[profile]

    def _load(self, profile: int, context: ssl.SSLContext) -> None:
        context.load_cert_chain(self.cert_file, self.key_file)
        if profile == 3:
            context.load_verify_locations(self.ca_file)

    def reload(self) -> None:
        """Load the certificate files again; a failure keeps the current ones."""
        try:
            for profile, context in self._contexts.items():
                self._load(profile, context)
        except (OSError, ssl.SSLError) as error:
            log.error("TLS files not reloaded; keeping the current ones", extra={"error": str(error)})
            return
        self._stamps = self._file_stamps()
        log.info("TLS certificates reloaded", extra={"cert_file": self.cert_file})

    async def watch(self) -> None:
        """Reload whenever one of the files changes."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            if self._file_stamps() != self._stamps:
                self.reload()

    def _file_stamps(self) -> list[int | None]:
        stamps: list[int | None] = []
        for name in (self.cert_file, self.key_file, self.ca_file):
            try:
                stamps.append(Path(name).stat().st_mtime_ns if name else None)
            except OSError:
                stamps.append(None)
        return stamps
