"""The status HTTP port: ``/healthz``, ``/readyz`` and ``/metrics``, separate from the station listeners.

A deliberately small HTTP/1.1 responder on asyncio (one request per connection), so the status port
needs nothing beyond ``prometheus_client`` and cannot be slowed by station traffic handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

READ_TIMEOUT = 5.0


class StatusServer:
    def __init__(self, host: str, port: int, registry: CollectorRegistry, ready: Callable[[], bool]) -> None:
        self.host, self.port, self.registry, self.ready = host, port, registry, ready
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> StatusServer:
        """Open the port (port 0 means no status port)."""
        if self.port:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)
            log.info("status port open", extra={"host": self.host, "port": self.port})
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            method, path, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            try:
                status, content_type, body = self._route(method, path.split("?", 1)[0])
            except Exception:
                log.exception("status request failed", extra={"path": path[:100]})
                status, content_type, body = "500 Internal Server Error", "text/plain", b"error\n"
            head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            head += "Connection: close\r\n\r\n"
            writer.write(head.encode() + (body if method != "HEAD" else b""))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _route(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"method not allowed\n"
        if path == "/healthz":
            return "200 OK", "text/plain", b"ok\n"
        if path == "/readyz":
            return (
                ("200 OK", "text/plain", b"ready\n")
                if self.ready()
                else ("503 Service Unavailable", "text/plain", b"not ready\n")
            )
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.registry)
        return "404 Not Found", "text/plain", b"not found\n"
