"""The simulated stations themselves: what each OCPP version's station answers and sends.

:class:`Station16` (1.6) and :class:`Station2` (2.0.1 and 2.1) are the ``ocpp`` package's ChargePoints
with handlers for the CSMS's commands; :class:`StationState` is what a station remembers across its
connections (boots, meter, the transaction, a requested reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from ocpp import v16, v21, v201
from ocpp.charge_point import ChargePoint
from ocpp.routing import after, on

from ocpp_gw.config import ChargeStationConfig
from ocpp_gw.sdk import utc_now

log = logging.getLogger("charge_station")


F = TypeVar("F", bound=Callable[..., Any])


def handler(action: str) -> Callable[[F], F]:
    """The ``ocpp`` package's ``on`` decorator, typed."""
    return cast(Callable[[F], F], on(action))


def afterwards(action: str) -> Callable[[F], F]:
    """The ``ocpp`` package's ``after`` decorator, typed: runs once the answer to ``action`` is sent."""
    return cast(Callable[[F], F], after(action))


@dataclass
class StationState:
    """What a station remembers across its connections."""

    station_id: str
    protocol: str
    config: ChargeStationConfig
    heartbeat_interval: int = 60
    meter_wh: int = 0
    reset_requested: asyncio.Event = field(default_factory=asyncio.Event)
    stop_transaction: asyncio.Event = field(default_factory=asyncio.Event)
    transaction: asyncio.Task[None] | None = None
    boots: int = 0
    settings: dict[str, str] = field(default_factory=dict)


class Station16(v16.ChargePoint):  # type: ignore[misc]
    """OCPP 1.6 behaviour."""

    def __init__(self, connection: Any, state: StationState) -> None:
        super().__init__(state.station_id, connection)
        self.state = state

    async def boot(self) -> str:
        config = self.state.config
        result = await self.call(
            v16.call.BootNotification(charge_point_model=config.model, charge_point_vendor=config.vendor)
        )
        self.state.heartbeat_interval = result.interval
        return str(result.status)

    async def heartbeat(self) -> str:
        return str((await self.call(v16.call.Heartbeat())).current_time)

    async def status(self, status: str) -> None:
        await self.call(v16.call.StatusNotification(connector_id=1, error_code="NoError", status=status))

    async def charge(self, id_tag: str, seconds: float) -> None:
        """A whole charging session: authorize, start, meter values, stop."""
        state = self.state
        await self.status("Preparing")
        auth = await self.call(v16.call.Authorize(id_tag=id_tag))
        if auth.id_tag_info["status"] != "Accepted":
            await self.status("Available")
            return
        started = await self.call(
            v16.call.StartTransaction(connector_id=1, id_tag=id_tag, meter_start=state.meter_wh, timestamp=utc_now())
        )
        transaction_id = started.transaction_id
        await self.status("Charging")
        async for wh in _metering(state, seconds):
            await self.call(
                v16.call.MeterValues(
                    connector_id=1,
                    transaction_id=transaction_id,
                    meter_value=[{"timestamp": utc_now(), "sampled_value": [_energy_sample_16(wh)]}],
                )
            )
        await self.call(
            v16.call.StopTransaction(
                meter_stop=state.meter_wh, timestamp=utc_now(), transaction_id=transaction_id, reason="Remote"
            )
        )
        await self.status("Available")

    @handler("Reset")
    def on_reset(self, type: str, **_: Any) -> Any:
        self.state.reset_requested.set()
        return v16.call_result.Reset(status="Accepted")

    @handler("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        known = {"HeartbeatInterval": str(self.state.heartbeat_interval), **self.state.settings}
        wanted = key or list(known)
        return v16.call_result.GetConfiguration(
            configuration_key=[{"key": k, "readonly": False, "value": known[k]} for k in wanted if k in known],
            unknown_key=[k for k in wanted if k not in known] or None,
        )

    @handler("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        self.state.settings[key] = value
        return v16.call_result.ChangeConfiguration(status="Accepted")

    @handler("RemoteStartTransaction")
    def on_remote_start(self, id_tag: str, **_: Any) -> Any:
        started = start_transaction(self.state, lambda: self.charge(id_tag, self.state.config.charge_seconds))
        return v16.call_result.RemoteStartTransaction(status="Accepted" if started else "Rejected")

    @handler("RemoteStopTransaction")
    def on_remote_stop(self, transaction_id: int, **_: Any) -> Any:
        return v16.call_result.RemoteStopTransaction(status="Accepted" if stop_transaction(self.state) else "Rejected")

    @handler("TriggerMessage")
    def on_trigger_message(self, requested_message: str, **_: Any) -> Any:
        known = _triggered(self, requested_message) is not None
        return v16.call_result.TriggerMessage(status="Accepted" if known else "NotImplemented")

    @afterwards("TriggerMessage")
    async def after_trigger_message(self, requested_message: str, **_: Any) -> None:
        await _send_triggered(self, requested_message)

    @handler("ChangeAvailability")
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> Any:
        return v16.call_result.ChangeAvailability(status="Accepted")

    @handler("UnlockConnector")
    def on_unlock_connector(self, connector_id: int, **_: Any) -> Any:
        return v16.call_result.UnlockConnector(status="Unlocked")

    @handler("ClearCache")
    def on_clear_cache(self, **_: Any) -> Any:
        return v16.call_result.ClearCache(status="Accepted")

    @handler("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
        return v16.call_result.DataTransfer(status="UnknownVendorId")


class Station2(ChargePoint):  # type: ignore[misc]
    """OCPP 2.0.1 and 2.1 behaviour (the messages used here are the same in both)."""

    module: Any = v201

    def __init__(self, connection: Any, state: StationState) -> None:
        super().__init__(state.station_id, connection)
        self.state = state
        self.seq_no = 0

    async def boot(self) -> str:
        config = self.state.config
        reason = "RemoteReset" if self.state.boots else "PowerUp"
        result = await self.call(
            self.module.call.BootNotification(
                charging_station={"model": config.model, "vendor_name": config.vendor}, reason=reason
            )
        )
        self.state.heartbeat_interval = result.interval
        return str(result.status)

    async def heartbeat(self) -> str:
        return str((await self.call(self.module.call.Heartbeat())).current_time)

    async def status(self, status: str) -> None:
        await self.call(
            self.module.call.StatusNotification(timestamp=utc_now(), connector_status=status, evse_id=1, connector_id=1)
        )

    async def _event(self, event_type: str, trigger: str, transaction_id: str, **extra: Any) -> Any:
        self.seq_no += 1
        return await self.call(
            self.module.call.TransactionEvent(
                event_type=event_type,
                timestamp=utc_now(),
                trigger_reason=trigger,
                seq_no=self.seq_no,
                transaction_info={"transaction_id": transaction_id, **extra.pop("info", {})},
                **extra,
            )
        )

    async def charge(self, id_token: str, seconds: float) -> None:
        """A whole charging session: authorize, TransactionEvent Started / Updated / Ended."""
        state = self.state
        token = {"id_token": id_token, "type": "ISO14443"}
        auth = await self.call(self.module.call.Authorize(id_token=token))
        if auth.id_token_info["status"] != "Accepted":
            return
        transaction_id = uuid.uuid4().hex[:20]
        await self.status("Occupied")
        await self._event(
            "Started",
            "RemoteStart",
            transaction_id,
            id_token=token,
            evse={"id": 1, "connector_id": 1},
            info={"charging_state": "Charging"},
        )
        async for wh in _metering(state, seconds):
            await self._event(
                "Updated",
                "MeterValuePeriodic",
                transaction_id,
                meter_value=[{"timestamp": utc_now(), "sampled_value": [_energy_sample(wh)]}],
            )
        await self._event(
            "Ended",
            "RemoteStop",
            transaction_id,
            meter_value=[{"timestamp": utc_now(), "sampled_value": [_energy_sample(state.meter_wh)]}],
            info={"stopped_reason": "Remote"},
        )
        await self.status("Available")

    @handler("Reset")
    def on_reset(self, type: str, **_: Any) -> Any:
        self.state.reset_requested.set()
        return self.module.call_result.Reset(status="Accepted")

    @handler("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        known = {("OCPPCommCtrlr", "HeartbeatInterval"): str(self.state.heartbeat_interval)}
        known.update({tuple(k.split(".", 1)): v for k, v in self.state.settings.items() if "." in k})  # type: ignore[misc]
        results = []
        for item in get_variable_data:
            name = (item["component"]["name"], item["variable"]["name"])
            result = {"component": item["component"], "variable": item["variable"]}
            if name in known:
                result.update(attribute_status="Accepted", attribute_value=known[name])
            else:
                result.update(attribute_status="UnknownVariable")
            results.append(result)
        return self.module.call_result.GetVariables(get_variable_result=results)

    @handler("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in set_variable_data:
            key = f"{item['component']['name']}.{item['variable']['name']}"
            self.state.settings[key] = item["attribute_value"]
            results.append(
                {"attribute_status": "Accepted", "component": item["component"], "variable": item["variable"]}
            )
        return self.module.call_result.SetVariables(set_variable_result=results)

    @handler("RequestStartTransaction")
    def on_request_start(self, id_token: dict[str, Any], remote_start_id: int, **_: Any) -> Any:
        token = id_token["id_token"]
        started = start_transaction(self.state, lambda: self.charge(token, self.state.config.charge_seconds))
        return self.module.call_result.RequestStartTransaction(status="Accepted" if started else "Rejected")

    @handler("RequestStopTransaction")
    def on_request_stop(self, transaction_id: str, **_: Any) -> Any:
        stopped = stop_transaction(self.state)
        return self.module.call_result.RequestStopTransaction(status="Accepted" if stopped else "Rejected")

    @handler("TriggerMessage")
    def on_trigger_message(self, requested_message: str, **_: Any) -> Any:
        known = _triggered(self, requested_message) is not None
        return self.module.call_result.TriggerMessage(status="Accepted" if known else "NotImplemented")

    @afterwards("TriggerMessage")
    async def after_trigger_message(self, requested_message: str, **_: Any) -> None:
        await _send_triggered(self, requested_message)

    @handler("ChangeAvailability")
    def on_change_availability(self, operational_status: str, **_: Any) -> Any:
        return self.module.call_result.ChangeAvailability(status="Accepted")

    @handler("UnlockConnector")
    def on_unlock_connector(self, evse_id: int, connector_id: int, **_: Any) -> Any:
        return self.module.call_result.UnlockConnector(status="Unlocked")

    @handler("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
        return self.module.call_result.DataTransfer(status="UnknownVendorId")


class Station201(Station2, v201.ChargePoint):  # type: ignore[misc]
    module = v201


class Station21(Station2, v21.ChargePoint):  # type: ignore[misc]
    module = v21


STATION_CLASSES: dict[str, type[Station16] | type[Station2]] = {
    "ocpp1.6": Station16,
    "ocpp2.0.1": Station201,
    "ocpp2.1": Station21,
}


def _energy_sample_16(wh: int) -> dict[str, Any]:
    return {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}


def _energy_sample(wh: int) -> dict[str, Any]:
    return {"value": wh, "measurand": "Energy.Active.Import.Register", "unit_of_measure": {"unit": "Wh"}}


async def _metering(state: StationState, seconds: float) -> Any:
    """Yield the meter reading every ``meter_interval`` seconds until the time is up or a stop is asked."""
    interval = state.config.meter_interval
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    state.stop_transaction.clear()
    while loop.time() < end and not state.stop_transaction.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.stop_transaction.wait(), min(interval, max(0.0, end - loop.time())))
        state.meter_wh += int(11000 * interval / 3600)
        yield state.meter_wh


def start_transaction(state: StationState, session: Any) -> bool:
    if state.transaction is not None and not state.transaction.done():
        return False
    state.transaction = asyncio.create_task(session(), name=f"transaction-{state.station_id}")
    state.transaction.add_done_callback(_log_failure)
    return True


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed: %r", task.get_name(), task.exception())


def stop_transaction(state: StationState) -> bool:
    if state.transaction is None or state.transaction.done():
        return False
    state.stop_transaction.set()
    return True


def _triggered(station: Station16 | Station2, requested: str) -> Callable[[], Awaitable[Any]] | None:
    """What sends the message a TriggerMessage asks for, if the station knows it."""
    senders: dict[str, Callable[[], Awaitable[Any]]] = {
        "Heartbeat": station.heartbeat,
        "StatusNotification": lambda: station.status("Available"),
        "BootNotification": station.boot,
    }
    return senders.get(requested)


async def _send_triggered(station: Station16 | Station2, requested: str) -> None:
    """Send the triggered message after the TriggerMessage answer, as the spec orders."""
    sender = _triggered(station, requested)
    if sender is not None:
        await sender()
