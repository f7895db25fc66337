"""The handshake room: which TCP connections and HTTP upgrade requests become station connections.

Checks run cheapest first, so that bad requests cannot spend what good ones need:

1. at accept, an address over its open connections or unfinished handshakes is closed at once;
2. not ready or draining: 503;
3. a request that is not a station's (bad path, two ``Authorization`` headers): 400, slowed;
4. an address over its own handshake rate: 429;
5. the instance full: 503;
6. authentication (profiles 0-3, :func:`ocpp_gw.core.credentials.authorize`): 401/403/404, slowed;
7. the instance's handshake rate, spent only by authenticated requests: 503.

"Slowed": each refusal from an address that keeps failing is answered later (up to 3 s, and within
half the handshake timeout, so it is still answered), while its connection still counts against the
address's unfinished handshakes.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import cast
from urllib.parse import unquote, urlsplit

from websockets import Subprotocol
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from .config import GatewayConfig
from .core.admission import AddressLimits, TokenBucket
from .core.credentials import AuthPolicy, FailureThrottle, authorize, certificate_from_peercert
from .core.protocol import OcppVersion, select_subprotocol, valid_station_id
from .credential_store import CredentialStore
from .metrics import GatewayMetrics

log = logging.getLogger("ocpp_gw")

MALFORMED_PERCENT_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
"""A ``%`` not followed by two hex digits: not a URI (RFC 3986 §2.1), so the request gets 400."""


def station_id_from_path(path: str) -> str | None:
    """The percent-decoded last segment of the request path, if it is a valid station identity."""
    segment = urlsplit(path).path.rsplit("/", 1)[-1]
    if MALFORMED_PERCENT_ESCAPE.search(segment):
        return None
    try:
        station_id = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        return None
    return station_id if valid_station_id(station_id) else None


def remote_host(connection: ServerConnection) -> str:
    peer = connection.transport.get_extra_info("peername") if connection.transport else None
    return str(peer[0]) if peer else "?"


class Handshake:
    """Admission, authentication and subprotocol choice for every listener of one gateway."""

    def __init__(
        self,
        gw: GatewayConfig,
        credentials: CredentialStore,
        metrics: GatewayMetrics,
        accepting: Callable[[], bool],
        connected: Callable[[], int],
        now: Callable[[], float],
    ) -> None:
        self.gw, self.credentials, self.metrics = gw, credentials, metrics
        self.accepting, self.connected, self.now = accepting, connected, now
        self.versions = tuple(OcppVersion(name) for name in gw.subprotocols)
        self.policy = AuthPolicy(gw.allow_unknown_stations, gw.username_must_match, gw.operator_name)
        self.throttle = FailureThrottle()
        self.rate = TokenBucket(gw.handshake_rate, max(1.0, gw.handshake_rate), now())
        self.addresses = AddressLimits(
            gw.max_connections_per_address,
            gw.max_handshakes_per_address,
            gw.handshake_rate_per_address,
            max(1.0, 2 * gw.handshake_rate_per_address),
        )
        self.connection_class = self._counted_connection_class()

    def _counted_connection_class(self) -> type[ServerConnection]:
        """A ServerConnection that counts itself against its address from accept to close."""
        addresses, refused = self.addresses, self.metrics.refused

        class CountedConnection(ServerConnection):
            counted_address: str | None = None
            handshaking = False

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                peer = transport.get_extra_info("peername")
                address = str(peer[0]) if peer else "?"
                over = addresses.connection_opened(address)
                if over is not None:
                    refused.labels(over).inc()
                    cast(asyncio.Transport, transport).abort()
                    return
                self.counted_address, self.handshaking = address, True

            def connection_lost(self, exc: Exception | None) -> None:
                if self.counted_address is not None:
                    addresses.connection_closed(self.counted_address, self.handshaking)
                    self.counted_address = None
                super().connection_lost(exc)
                # Two reference cycles that only a full collection, walking every object of every
                # station, would free: websockets binds the select_subprotocol hook to the protocol
                # as a closure over this connection, and the protocol's parser, a generator, stays
                # suspended holding the protocol (its reader is at EOF by now, so nothing steps it
                # again). Without them, reference counting frees the connection at once.
                vars(self.protocol).pop("select_subprotocol", None)
                self.protocol.parser.close()

        return CountedConnection

    def opened(self, connection: ServerConnection) -> None:
        """The handshake of ``connection`` completed: it no longer counts as one in progress."""
        address = getattr(connection, "counted_address", None)
        if address is not None and getattr(connection, "handshaking", False):
            connection.handshaking = False  # type: ignore[attr-defined]
            self.addresses.handshake_ended(address)

    async def check_request(self, profile: int, connection: ServerConnection, request: Request) -> Response | None:
        """None lets the upgrade go on; otherwise the HTTP refusal."""
        if not self.accepting():
            return self._busy(connection, "not_ready", "5")
        address = remote_host(connection)
        station_id = station_id_from_path(request.path)
        if station_id is None:
            log.warning("refused: invalid station id in path", extra={"path": request.path[:200], "address": address})
            return await self._bad_request(
                connection, address, "bad_station_id", "The last path segment must be a station id.\n"
            )
        authorizations = request.headers.get_all("Authorization")
        if len(authorizations) > 1:
            return await self._bad_request(connection, address, "bad_request", "One Authorization header, please.\n")
        if not self.addresses.take_handshake(address, self.now()):
            self.metrics.refused.labels("address_rate").inc()
            response = connection.respond(HTTPStatus.TOO_MANY_REQUESTS, "Too many handshakes from this address.\n")
            response.headers["Retry-After"] = "1"
            return response
        if self.connected() >= self.gw.max_connections:
            return self._busy(connection, "max_connections", "5")
        peercert = connection.transport.get_extra_info("peercert") if profile == 3 else None
        refusal = authorize(
            profile,
            station_id,
            self.credentials.get(station_id),
            self.policy,
            authorizations[0] if authorizations else None,
            certificate_from_peercert(peercert),
            self.gw.cert_identity,
            binary_key=OcppVersion.V16.value in _offered(request),
        )
        if refusal is not None:
            await self._slow_down(address)
            self.metrics.refused.labels(f"auth_{refusal.status}").inc()
            log.warning(
                "refused: authentication",
                extra={
                    "station_id": station_id,
                    "remote_address": address,
                    "reason": refusal.reason,
                    "profile": profile,
                },
            )
            response = connection.respond(HTTPStatus(refusal.status), f"{HTTPStatus(refusal.status).phrase}\n")
            if refusal.status == 401:
                response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
            return response
        self.throttle.succeeded(address)
        if not self.rate.take(self.now()):
            return self._busy(connection, "handshake_rate", "1")
        return None

    def select_subprotocol(self, connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        version = select_subprotocol(list(offered), self.versions)
        return Subprotocol(version.value) if version else None

    def _busy(self, connection: ServerConnection, reason: str, retry_after: str) -> Response:
        self.metrics.refused.labels(reason).inc()
        response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Service unavailable, retry later.\n")
        response.headers["Retry-After"] = retry_after
        return response

    async def _bad_request(self, connection: ServerConnection, address: str, reason: str, body: str) -> Response:
        await self._slow_down(address)
        self.metrics.refused.labels(reason).inc()
        return connection.respond(HTTPStatus.BAD_REQUEST, body)

    def refusal_delay(self, address: str) -> float:
        """How long the next refusal to ``address`` waits: the throttle's delay, but within half the
        handshake timeout, so that the refusal is still answered before the connection is given up."""
        return min(self.throttle.delay(address, self.now()), self.gw.handshake_timeout / 2)

    async def _slow_down(self, address: str) -> None:
        await asyncio.sleep(self.refusal_delay(address))
        self.throttle.failed(address, self.now())


def _offered(request: Request) -> list[str]:
    return [name.strip() for value in request.headers.get_all("Sec-WebSocket-Protocol") for name in value.split(",")]
