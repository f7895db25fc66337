"""Simulated charge stations on the ``ocpp`` package's ChargePoint, for demos, tests and load.

A station connects, boots, reports its connector Available and heartbeats at the interval the CSMS
returned. It answers the CSMS's commands with valid responses and believable behaviour: a Reset
reconnects and boots again, a remote start runs a transaction with periodic MeterValues until a
remote stop or the configured charging time ends. It reconnects with exponential backoff and
jitter when the connection drops, and sends HTTP Basic credentials when a password is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from urllib.parse import quote

import websockets
from websockets.headers import build_authorization_basic

from ocpp_gw.config import ChargeStationConfig

from .stations import STATION_CLASSES, StationState, start_transaction, stop_transaction

log = logging.getLogger("charge_station")

PROTOCOLS = ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")
RESET_RECONNECT_DELAY = 1.0


def station_url(base: str, station_id: str) -> str:
    return f"{base.rstrip('/')}/{quote(station_id, safe='')}"


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: a random delay up to min(cap, base * 2**attempt)."""
    return rng.uniform(0, min(cap, base * 2**attempt))


def _headers(state: StationState) -> dict[str, str]:
    if not state.config.password:
        return {}
    return {"Authorization": build_authorization_basic(state.station_id, state.config.password)}


async def run_connection(state: StationState, heartbeats: int, charge_after_boot: bool) -> bool:
    """One connection's life; True when it ended because of a Reset (reconnect at once)."""
    url = station_url(state.config.gateway_url, state.station_id)
    async with websockets.connect(
        url,
        subprotocols=[websockets.Subprotocol(state.protocol)],
        additional_headers=_headers(state),
        open_timeout=10,
    ) as connection:
        if connection.subprotocol != state.protocol:
            raise ConnectionError(f"gateway did not accept {state.protocol}")
        station = STATION_CLASSES[state.protocol](connection, state)
        listener = asyncio.create_task(station.start())
        state.reset_requested.clear()
        try:
            status = await station.boot()
            state.boots += 1
            log.info("boot answered", extra={"station_id": state.station_id, "status": status})
            if status != "Accepted":
                return False
            await station.status("Available")
            if charge_after_boot and state.boots == 1:
                start_transaction(state, lambda: station.charge("DEMO-TAG", state.config.charge_seconds))
            sent = 0
            while heartbeats == 0 or sent < heartbeats:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.reset_requested.wait(), state.heartbeat_interval)
                if state.reset_requested.is_set():
                    log.info("resetting: reconnecting", extra={"station_id": state.station_id})
                    stop_transaction(state)
                    await asyncio.sleep(RESET_RECONNECT_DELAY)
                    return True
                current_time = await station.heartbeat()
                sent += 1
                log.info("heartbeat answered", extra={"station_id": state.station_id, "current_time": current_time})
            raise _Done
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await listener


class _Done(Exception):
    """The station sent the heartbeats it was asked for."""


async def run_station(
    config: ChargeStationConfig, station_id: str, protocol: str, heartbeats: int = 0, charge: bool = False
) -> int:
    """Keep one station connected until stopped; returns 0 when it finished its heartbeats."""
    state = StationState(station_id, protocol, config)
    rng = random.Random()
    attempt = 0
    while True:
        try:
            if await run_connection(state, heartbeats, charge):
                attempt = 0
                continue
            return 1
        except _Done:
            return 0
        except (OSError, websockets.exceptions.WebSocketException, ConnectionError, TimeoutError) as error:
            delay = backoff_delay(attempt, config.reconnect_base, config.reconnect_max, rng)
            attempt += 1
            log.warning(
                "connection lost; reconnecting",
                extra={"station_id": station_id, "error": repr(error), "delay_s": round(delay, 2), "attempt": attempt},
            )
            await asyncio.sleep(delay)


async def run_stations(
    config: ChargeStationConfig, ids: list[str], protocol: str, heartbeats: int = 0, charge: bool = False
) -> int:
    """Run many stations in this process; the worst exit status wins."""
    results = await asyncio.gather(*(run_station(config, i, protocol, heartbeats, charge) for i in ids))
    return max(results, default=0)
