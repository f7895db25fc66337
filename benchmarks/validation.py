"""What strict mode costs per message: the session's work with and without schema checks.

Run ``make bench-validation``. It feeds a station session a realistic mix of station CALLs and CSMS
answers in one process (no network, no Kafka) and reports messages per second and microseconds per
message for strict mode off, log and enforce.
"""

from __future__ import annotations

import json
import sys
import time

from ocpp_gw.core.frames import parse_frame
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.core.session import SessionLimits, StationSession
from ocpp_gw.core.validation import PayloadValidator, StrictMode, StrictPolicy
from ocpp_gw.schemas import load_ocpp_schemas

V201 = OcppVersion.V201
CALLS = [
    ("BootNotification", {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"}),
    ("Heartbeat", {}),
    (
        "StatusNotification",
        {"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    ),
    (
        "MeterValues",
        {
            "evseId": 1,
            "meterValue": [
                {
                    "timestamp": "2026-01-01T00:00:00Z",
                    "sampledValue": [{"value": 1234.5, "measurand": "Energy.Active.Import.Register"}],
                }
            ],
        },
    ),
]
ANSWERS = {
    "BootNotification": {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z", "interval": 300},
    "Heartbeat": {"currentTime": "2026-01-01T00:00:00Z"},
    "StatusNotification": {},
    "MeterValues": {},
}


def run(validator: PayloadValidator | None, rounds: int) -> float:
    """Seconds for ``rounds`` station CALL + CSMS CALLRESULT pairs through one session."""
    session = StationSession("CP_1", V201, SessionLimits(), validator)
    texts = [
        (json.dumps([2, f"m{i}", action, payload]), parse_frame(json.dumps([3, f"m{i}", ANSWERS[action]]), V201))
        for i, (action, payload) in enumerate(CALLS * 25)
    ]
    started = time.perf_counter()
    for round_ in range(rounds // len(texts)):
        for call, answer in texts:
            session.station_text(call, float(round_))
            session.csms_frame(answer, float(round_))
    return time.perf_counter() - started


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    schemas = load_ocpp_schemas((V201,))
    started = time.perf_counter()
    modes = {
        "off": None,
        "log": PayloadValidator(schemas, StrictPolicy(*(StrictMode.LOG,) * 4)),
        "enforce": PayloadValidator(schemas, StrictPolicy(*(StrictMode.ENFORCE,) * 4)),
    }
    print(f"compiled the 2.0.1 schemas twice in {time.perf_counter() - started:.2f} s")
    baseline = None
    print(f"{'strict mode':<12}{'round trips/s':>15}{'us per message':>16}{'cost vs off':>13}")
    for name, validator in modes.items():
        seconds = min(run(validator, rounds) for _ in range(3))
        per_message = seconds / (2 * rounds) * 1e6
        baseline = baseline or per_message
        print(f"{name:<12}{rounds / seconds:>15,.0f}{per_message:>16.2f}{per_message / baseline - 1:>12.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
