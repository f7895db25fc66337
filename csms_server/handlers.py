"""What the reference CSMS answers, per OCPP version and action: the one place to add a handler.

A handler takes the request (station, version, action, payload and the CSMS settings) and returns
the response payload. Register it with ``@handles(versions, "Action", ...)``; an action with no
handler gets the version's NotImplemented CALLERROR. Handlers keep no state: any worker of the
consumer group can answer any station. ``worker.py`` registers the table with the SDK's worker
(``ocpp_gw.sdk.Csms``), which does the Kafka side.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ocpp_gw.config import CsmsConfig
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.sdk import utc_now

Payload = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """A station CALL as the CSMS sees it."""

    station_id: str
    version: OcppVersion
    action: str
    payload: Payload
    settings: CsmsConfig


Handler = Callable[[Request], Payload]

HANDLERS: dict[tuple[OcppVersion, str], Handler] = {}

V16 = (OcppVersion.V16,)
V2 = (OcppVersion.V201, OcppVersion.V21)
V21 = (OcppVersion.V21,)
ALL = V16 + V2

OWN_VENDOR_ID = "org.ocpp-gw"
"""DataTransfer vendorId this CSMS recognises; any other gets UnknownVendorId."""


def handles(versions: tuple[OcppVersion, ...], *actions: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``actions`` for ``versions``."""

    def register(handler: Handler) -> Handler:
        for version in versions:
            for action in actions:
                HANDLERS[(version, action)] = handler
        return handler

    return register


# Provisioning and availability.


@handles(ALL, "BootNotification")
def boot_notification(request: Request) -> Payload:
    """Accept all, only an allow-list, or keep every station Pending, as ``[csms] boot_policy`` says."""
    settings = request.settings
    if settings.boot_policy == "pending":
        status = "Pending"
    elif settings.boot_policy == "allow_list" and request.station_id not in settings.allowed_stations:
        status = "Rejected"
    else:
        status = "Accepted"
    return {"status": status, "currentTime": utc_now(), "interval": settings.heartbeat_interval}


@handles(ALL, "Heartbeat")
def heartbeat(request: Request) -> Payload:
    return {"currentTime": utc_now()}


@handles(ALL, "StatusNotification", "FirmwareStatusNotification")
@handles(V16, "DiagnosticsStatusNotification", "MeterValues", "StopTransaction")
@handles(
    V2,
    "MeterValues",
    "NotifyReport",
    "NotifyEvent",
    "SecurityEventNotification",
    "LogStatusNotification",
    "NotifyMonitoringReport",
    "NotifyCustomerInformation",
    "NotifyChargingLimit",
    "ClearedChargingLimit",
    "ReportChargingProfiles",
    "ReservationStatusUpdate",
    "NotifyDisplayMessages",
    "PublishFirmwareStatusNotification",
)
@handles(
    V21,
    "BatterySwap",
    "ClosePeriodicEventStream",
    "NotifyDERAlarm",
    "NotifyDERStartStop",
    "NotifyPriorityCharging",
    "NotifySettlement",
    "ReportDERControl",
)
def acknowledge(request: Request) -> Payload:
    """Notifications whose response has no required field: noted, nothing to say back."""
    return {}


# Authorization and transactions.


@handles(V16, "Authorize")
def authorize_16(request: Request) -> Payload:
    return {"idTagInfo": {"status": "Accepted"}}


@handles(V2, "Authorize")
def authorize_2(request: Request) -> Payload:
    return {"idTokenInfo": {"status": "Accepted"}}


@handles(V16, "StartTransaction")
def start_transaction(request: Request) -> Payload:
    """1.6 needs a transaction id from the CSMS; derived from the request so any worker gives the same."""
    seed = f"{request.station_id}|{request.payload.get('connectorId')}|{request.payload.get('timestamp')}"
    return {"transactionId": zlib.crc32(seed.encode()) & 0x7FFFFFFF, "idTagInfo": {"status": "Accepted"}}


@handles(V2, "TransactionEvent")
def transaction_event(request: Request) -> Payload:
    """2.x transactions carry their own id; an idToken in the event gets authorized."""
    return {"idTokenInfo": {"status": "Accepted"}} if "idToken" in request.payload else {}


# Everything else a station may send.


@handles(ALL, "DataTransfer")
def data_transfer(request: Request) -> Payload:
    known = request.payload.get("vendorId") == OWN_VENDOR_ID
    return {"status": "Accepted" if known else "UnknownVendorId"}


@handles(V2, "NotifyEVChargingNeeds")
def notify_ev_charging_needs(request: Request) -> Payload:
    return {"status": "Accepted"}


@handles(V2, "SignCertificate")
def sign_certificate(request: Request) -> Payload:
    return {"status": "Rejected"}


@handles(V21, "OpenPeriodicEventStream")
def open_periodic_event_stream(request: Request) -> Payload:
    return {"status": "Accepted"}


@handles(V21, "PullDynamicScheduleUpdate")
def pull_dynamic_schedule_update(request: Request) -> Payload:
    return {"status": "Rejected"}


@handles(V21, "VatNumberValidation")
def vat_number_validation(request: Request) -> Payload:
    return {"vatNumber": str(request.payload.get("vatNumber", "")), "status": "Rejected"}
