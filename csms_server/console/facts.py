"""What a station's messages say about it: boot information, connector status, a transaction's energy.

Read defensively and within bounds: the payloads are the station's to choose, so every text is cut
to :data:`MAX_TEXT` characters and a meter sample the console cannot read is skipped on its own.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from typing import Any

from ocpp_gw.core.protocol import OcppVersion

MAX_METER_POINTS = 1_000
"""Meter points kept of a transaction (16 bytes each); at the bound every other point goes, so the chart
keeps the whole transaction at half the resolution."""
MAX_TEXT = 128
"""Characters kept of what a station says about itself (vendor, model, firmware, statuses, connector ids)."""
MAX_MULTIPLIER = 9
"""The largest power of ten a meter sample's ``unitOfMeasure.multiplier`` may scale by; beyond, it is ignored."""
ENERGY = "Energy.Active.Import.Register"


@dataclass(slots=True)
class Transaction:
    """The station's current (or last) transaction and the energy it delivered, in Wh, over time."""

    transaction_id: str
    started_ms: int
    active: bool = True
    start_wh: float | None = None
    energy_wh: float = 0.0
    times: array[int] = field(default_factory=lambda: array("q"))
    energies: array[float] = field(default_factory=lambda: array("d"))

    def register(self, time_ms: int, wh: float) -> None:
        if self.start_wh is None:
            self.start_wh = wh
        self.energy_wh = max(0.0, wh - self.start_wh)
        if len(self.times) >= MAX_METER_POINTS:
            del self.times[1::2]
            del self.energies[1::2]
        self.times.append(time_ms)
        self.energies.append(self.energy_wh)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.transaction_id,
            "started_ms": self.started_ms,
            "active": self.active,
            "energy_wh": round(self.energy_wh, 1),
            "points": [[t, round(wh, 1)] for t, wh in zip(self.times, self.energies, strict=True)],
        }


def boot_info(payload: dict[str, Any], version: str) -> dict[str, str]:
    if version == OcppVersion.V16.value:
        fields = {"vendor": "chargePointVendor", "model": "chargePointModel", "firmware": "firmwareVersion"}
        source = payload
    else:
        fields = {"vendor": "vendorName", "model": "model", "firmware": "firmwareVersion"}
        source = payload["chargingStation"]
    return {name: short(source[key]) for name, key in fields.items() if key in source}


def connector_status(payload: dict[str, Any], version: str) -> tuple[str, str]:
    if version == OcppVersion.V16.value:
        return short(payload["connectorId"]), short(payload["status"])
    return short(f"{payload['evseId']}/{payload['connectorId']}"), short(payload["connectorStatus"])


def short(value: Any) -> str:
    return str(value)[:MAX_TEXT]


def register_meter_values(transaction: Transaction, meter_values: Any, time_ms: int) -> None:
    """Take the energy register from MeterValues' or TransactionEvent's ``meterValue`` list, if any.

    Each sample is read on its own: one the console cannot read (signed data, a unit it does not know,
    an absurd multiplier) leaves the others."""
    for meter_value in meter_values if isinstance(meter_values, list) else ():
        samples = meter_value.get("sampledValue") if isinstance(meter_value, dict) else None
        for sample in samples if isinstance(samples, list) else ():
            try:
                register_wh(transaction, _sample_wh(sample), time_ms)
            except (AttributeError, TypeError, ValueError, ArithmeticError):
                continue


def _sample_wh(sample: Any) -> float | None:
    """A sample's energy register in Wh, or None when it is not the register."""
    if sample.get("measurand", ENERGY) != ENERGY or sample.get("phase"):
        return None
    unit = sample.get("unitOfMeasure") or {}
    name = unit.get("unit") or sample.get("unit") or "Wh"
    if name not in ("Wh", "kWh"):
        return None
    multiplier = unit.get("multiplier", 0)
    if type(multiplier) is not int or abs(multiplier) > MAX_MULTIPLIER:
        return None
    return float(sample["value"]) * 10.0**multiplier * (1000 if name == "kWh" else 1)


def register_wh(transaction: Transaction, wh: Any, time_ms: int) -> None:
    if isinstance(wh, int | float | str) and not isinstance(wh, bool):
        value = float(wh)
        if math.isfinite(value):
            transaction.register(time_ms, value)
