"""Routing decisions for many gateway instances: reply partitions, the route table, stale sockets.

Each gateway owns some partitions of ``messages_out`` (its share in the consumer group). It names
one of them as the reply partition of every record it publishes for a station, and it publishes
the station's route (gateway, partition, protocol, connection) to the compacted ``station_routes``
topic. A CSMS answers on the reply partition and starts its own calls on the route's partition,
so each ``messages_out`` record is read by the one gateway that holds the station.

All records of one station land on one partition of ``station_routes`` (the key is the station
id), so that partition's order decides which connection is the newest. A gateway that reads
another connection's route after its own knows its socket is stale and closes it; one that reads
a tombstone after its own route (an older connection elsewhere went away) publishes its route
again. Everything here is pure; ``ocpp_gw.routes`` and the gateway do the I/O.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

ROUTE_VERSION = 1
MAX_HOPS = 2
"""How often a ``messages_out`` record may be passed on between gateways before it is refused."""


def reply_partition(station_id: str, owned: Sequence[int]) -> int | None:
    """The owned partition that answers for ``station_id``: stable while the assignment is."""
    if not owned:
        return None
    ordered = sorted(owned)
    return ordered[zlib.crc32(station_id.encode()) % len(ordered)]


@dataclass(frozen=True, slots=True)
class Route:
    """Where a station is connected: the value of its ``station_routes`` record."""

    station_id: str
    gateway_id: str
    partition: int
    protocol: str
    connection_id: str
    connected_at: str

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "v": ROUTE_VERSION,
                "station_id": self.station_id,
                "gateway_id": self.gateway_id,
                "partition": self.partition,
                "protocol": self.protocol,
                "connection_id": self.connection_id,
                "connected_at": self.connected_at,
            }
        )

    @classmethod
    def decode(cls, value: bytes) -> Route:
        """Parse a route record's value; ``ValueError`` if it is not one."""
        try:
            document: Any = orjson.loads(value)
            route = cls(
                str(document["station_id"]),
                str(document["gateway_id"]),
                int(document["partition"]),
                str(document["protocol"]),
                str(document["connection_id"]),
                str(document["connected_at"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"not a route record: {error}") from error
        if route.partition < 0:
            raise ValueError(f"not a route record: partition {route.partition}")
        return route


class RouteVerdict(enum.Enum):
    """What a gateway that holds a station does after reading a route record for it."""

    NOTHING = "nothing"
    CLOSE_STALE = "close_stale"
    """A newer connection of the station exists elsewhere: close ours, answer its calls."""
    REPUBLISH = "republish"
    """The table lost our route (an older connection's tombstone came after it): write it again."""


@dataclass
class HeldStation:
    """What a gateway knows about the route of a station it holds."""

    connection_id: str
    own_route_seen: bool = False
    superseded: bool = False

    def on_route_record(self, route: Route | None, tombstone_connection: str | None) -> RouteVerdict:
        """Judge a record of this station read from ``station_routes``, in log order."""
        if route is not None and route.connection_id == self.connection_id:
            self.own_route_seen = True
            return RouteVerdict.NOTHING
        if route is None and tombstone_connection == self.connection_id:
            return RouteVerdict.NOTHING
        if not self.own_route_seen or self.superseded:
            return RouteVerdict.NOTHING
        if route is not None:
            self.superseded = True
            return RouteVerdict.CLOSE_STALE
        return RouteVerdict.REPUBLISH


class Delivery(enum.Enum):
    DELIVER = "deliver"
    FORWARD = "forward"
    UNROUTABLE = "unroutable"


def route_out_record(
    held_here: bool, route: Route | None, gateway_id: str, arrived_on: int, hops: int
) -> tuple[Delivery, int | None]:
    """Where a ``messages_out`` record for a station goes from this gateway.

    Delivered when the station is connected here; passed on to the partition of the station's
    current route when that is another gateway's (a rebalance or reconnect moved it); otherwise
    unroutable (a CALL is then answered with a CALLERROR, anything else dropped and counted).
    """
    if held_here:
        return Delivery.DELIVER, None
    if route is not None and route.gateway_id != gateway_id and route.partition != arrived_on and hops < MAX_HOPS:
        return Delivery.FORWARD, route.partition
    return Delivery.UNROUTABLE, None
