"""One simulated station: connect, BootNotification, then Heartbeat at the interval the CSMS returned."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import quote

import websockets
from ocpp import v16, v21, v201
from ocpp.charge_point import ChargePoint

from ocpp_gw.config import ChargeStationConfig

log = logging.getLogger("charge_station")

CHARGE_POINTS: dict[str, type[ChargePoint]] = {
    "ocpp1.6": v16.ChargePoint,
    "ocpp2.0.1": v201.ChargePoint,
    "ocpp2.1": v21.ChargePoint,
}


def boot_request(protocol: str, vendor: str, model: str) -> Any:
    """The version's BootNotification request dataclass."""
    if protocol == "ocpp1.6":
        return v16.call.BootNotification(charge_point_model=model, charge_point_vendor=vendor)
    module = v201 if protocol == "ocpp2.0.1" else v21
    return module.call.BootNotification(charging_station={"model": model, "vendor_name": vendor}, reason="PowerUp")


def heartbeat_request(protocol: str) -> Any:
    return {"ocpp1.6": v16, "ocpp2.0.1": v201, "ocpp2.1": v21}[protocol].call.Heartbeat()


def station_url(base: str, station_id: str) -> str:
    return f"{base.rstrip('/')}/{quote(station_id, safe='')}"


async def run_station(config: ChargeStationConfig, station_id: str, protocol: str, heartbeats: int) -> int:
    """Boot once, then heartbeat forever (or ``heartbeats`` times); returns an exit status."""
    url = station_url(config.gateway_url, station_id)
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol(protocol)]) as connection:
        if connection.subprotocol != protocol:
            log.error("gateway did not accept the subprotocol", extra={"station_id": station_id, "protocol": protocol})
            return 1
        station = CHARGE_POINTS[protocol](station_id, connection)
        listener = asyncio.create_task(station.start())
        try:
            boot = await station.call(boot_request(protocol, config.vendor, config.model))
            log.info(
                "boot answered", extra={"station_id": station_id, "status": boot.status, "interval": boot.interval}
            )
            if boot.status != "Accepted":
                return 1
            interval = max(1, boot.interval)
            sent = 0
            while heartbeats == 0 or sent < heartbeats:
                await asyncio.sleep(interval)
                result = await station.call(heartbeat_request(protocol))
                sent += 1
                log.info("heartbeat answered", extra={"station_id": station_id, "current_time": result.current_time})
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await listener
    return 0
