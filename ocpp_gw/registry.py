"""The registry room: which stations are connected to this gateway, and what their routes say.

It admits a new link (replacing or rejecting one the station already has here), forgets ended ones
and publishes their routes, and acts on what others decide about a station: a newer route on
another gateway (the stale link here closes), a change of credentials (the link closes), a change of
partitions (every route is published again, or every link closes when none is left).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Iterator

from .core.routing import Route, RouteVerdict
from .csms_bus import CsmsBus
from .metrics import GatewayMetrics
from .station_link import StationLink

log = logging.getLogger("ocpp_gw")

REPLACE_TIMEOUT = 15.0
"""Seconds a new connection waits for the one it replaces to be wound up."""


class DuplicatePolicy(enum.Enum):
    """What a second connection with the same station id does to the first (``duplicate_connection``)."""

    REPLACE = "replace"
    REJECT = "reject"


class Registry:
    """The links of this gateway, by station id."""

    def __init__(self, bus: CsmsBus, metrics: GatewayMetrics, duplicates: DuplicatePolicy) -> None:
        self.bus, self.metrics, self.duplicates = bus, metrics, duplicates
        self.links: dict[str, StationLink] = {}

    def __len__(self) -> int:
        return len(self.links)

    def __iter__(self) -> Iterator[StationLink]:
        return iter(list(self.links.values()))

    def get(self, station_id: str) -> StationLink | None:
        return self.links.get(station_id)

    def refuses(self, station_id: str) -> bool:
        """True when the station is connected here and a second connection is rejected."""
        return self.duplicates is DuplicatePolicy.REJECT and station_id in self.links

    async def admit(self, link: StationLink) -> None:
        """Make ``link`` the station's connection here, and wind up the one it replaces."""
        previous = self.links.get(link.station_id)
        self.links[link.station_id] = link
        if previous is not None:
            log.warning("replacing the existing connection of the station", extra={"station_id": link.station_id})
            previous.close(1000, "replaced by a newer connection")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(previous.finished), REPLACE_TIMEOUT)

    def connected(self, link: StationLink, remote: str) -> None:
        """Tell the CSMS, and every gateway, that the station is here now."""
        self.bus.lifecycle(link.origin, "connected", remote_address=remote)
        self.publish_route(link)

    def ended(self, link: StationLink) -> None:
        """Forget a link whose connection ended; tell the CSMS and, unless a newer one took over, the routes."""
        if self.links.get(link.station_id) is link:
            del self.links[link.station_id]
        if not link.finished.done():
            link.finished.set_result(None)
        code, reason = link.close_status
        self.bus.lifecycle(link.origin, "disconnected", close_code=code, close_reason=reason)
        if not link.route.superseded:
            station_id = link.station_id
            # A newer connection of the station here has published its own route since.
            self.bus.route_tombstone(station_id, link.route, lambda: station_id not in self.links)

    def publish_route(self, link: StationLink) -> None:
        self.bus.route(link.origin, link.route, link.connected_at, lambda: self._route_current(link))

    def _route_current(self, link: StationLink) -> bool:
        """A route kept for another attempt is still wanted while its link is the station's here."""
        return self.links.get(link.station_id) is link and not link.route.superseded

    def on_route_record(self, station_id: str, route: Route | None, headers: dict[str, bytes]) -> None:
        link = self.links.get(station_id)
        if link is None:
            return
        tombstone_of = headers.get("connection_id", b"").decode(errors="replace") if route is None else None
        verdict = link.route.on_route_record(route, tombstone_of)
        if verdict is RouteVerdict.CLOSE_STALE:
            self.metrics.events.labels("stale_connection_closed").inc()
            log.warning(
                "station connected to another gateway; closing the stale connection here",
                extra={"station_id": station_id, "other_gateway": route.gateway_id if route else None},
            )
            link.close(1000, "replaced by a newer connection on another gateway")
        elif verdict is RouteVerdict.REPUBLISH:
            self.metrics.events.labels("route_republished").inc()
            self.publish_route(link)

    def credentials_changed(self, station_id: str) -> None:
        """A station's credentials were revoked or changed: its link here ends now, and it must connect
        again with what the stores say now."""
        link = self.links.get(station_id)
        if link is None or link.closing is not None:
            return
        self.metrics.events.labels("credentials_changed_closed").inc()
        log.warning("station credentials changed; closing its connection", extra={"station_id": station_id})
        link.close(1008, "credentials changed")

    def partitions_changed(self, partitions: list[int]) -> None:
        """Routes name the reply partition: publish them again, or close every link when none is left."""
        for link in self:
            if partitions:
                self.publish_route(link)
            else:
                link.close(1012, "gateway lost its partitions; reconnect")

    def close_all(self, code: int, reason: str) -> None:
        for link in self:
            link.close(code, reason)
