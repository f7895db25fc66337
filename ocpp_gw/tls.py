"""TLS for profile 2 and 3 listeners: TLS 1.2 or later, certificates reloadable without dropping connections.

OCPP 2.0.1 part 2 A00.FR.318/.421: the CSMS supports at least TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_RSA_WITH_AES_128_GCM_SHA256 and TLS_RSA_WITH_AES_256_GCM_SHA384,
which takes an ECDSA and an RSA certificate: both go into each context (OpenSSL keeps one per key type). Python's
default TLS 1.2 list leaves out the RSA key exchange suites and keeps CBC ones, so TLS 1.2 gets an explicit list
of AEAD suites, forward-secret ones first (A00.FR.320/.423); TLS 1.3 keeps OpenSSL's suites. No TLS compression
(A00.FR.321/.424), nothing below TLS 1.2 (A00.FR.313/.416).

Reloading loads the files again into the same ``SSLContext`` objects, so new handshakes use the new
certificates while established connections carry on (on SIGHUP, or when a file's mtime changes). The files are
first tried in a scratch context, so a broken or mismatched file leaves the current certificates in place.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

from .config import tls_pairs

log = logging.getLogger(__name__)

WATCH_INTERVAL = 5.0

TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
    )
)


class TlsContexts:
    """The server contexts of the TLS listeners; ``cert_file`` and ``key_file`` list one or two paths each."""

    def __init__(self, cert_file: str, key_file: str, ca_file: str) -> None:
        self.cert_file, self.key_file, self.ca_file = cert_file, key_file, ca_file
        self.pairs = tls_pairs(cert_file, key_file)
        self._contexts: dict[int, ssl.SSLContext] = {}
        self._stamps = self._file_stamps()

    def for_profile(self, profile: int) -> ssl.SSLContext | None:
        """The server context of a listener: None for profiles 0 and 1 (plain ws)."""
        if profile < 2:
            return None
        if profile not in self._contexts:
            context = self._new_context(profile)
            self._load(profile, context)
            self._contexts[profile] = context
        return self._contexts[profile]

    @staticmethod
    def _new_context(profile: int) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(TLS12_CIPHERS)
        context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
        if profile == 3:
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def _load(self, profile: int, context: ssl.SSLContext) -> None:
        for cert_file, key_file in self.pairs:
            context.load_cert_chain(cert_file, key_file)
        if profile == 3:
            context.load_verify_locations(self.ca_file)

    def reload(self) -> None:
        """Load the certificate files again; a failure keeps the current ones."""
        stamps = self._file_stamps()
        try:
            for profile in self._contexts:
                self._load(profile, self._new_context(profile))
            for profile, context in self._contexts.items():
                self._load(profile, context)
        except (OSError, ssl.SSLError) as error:
            log.error("TLS files not reloaded; keeping the current ones", extra={"error": str(error)})
            return
        self._stamps = stamps
        log.info("TLS certificates reloaded", extra={"cert_file": self.cert_file})

    async def watch(self) -> None:
        """Reload whenever one of the files changes."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            if self._file_stamps() != self._stamps:
                self.reload()

    def _file_stamps(self) -> list[int | None]:
        stamps: list[int | None] = []
        for name in (*(path for pair in self.pairs for path in pair), self.ca_file):
            try:
                stamps.append(Path(name).stat().st_mtime_ns if name else None)
            except OSError:
                stamps.append(None)
        return stamps
