"""How many records per second the web console keeps up with: decoding plus its model, in one process.

Run ``make bench-console``. It decodes and observes round trips as the console's follower does
(``messages_in`` record in, ``messages_out`` record out; a quarter of them TransactionEvents with a
meter value) over 1,000 stations with the default memory bounds, and prints the median and range of
five runs in records per second and microseconds per record.
"""

from __future__ import annotations

import statistics
import sys
import time

import orjson

from csms_server.console.model import ConsoleModel
from ocpp_gw.core.envelope import Origin, decode_in_record, decode_out_record, frame_record, out_record
from ocpp_gw.core.frames import Rejection
from ocpp_gw.core.protocol import OcppVersion

V201 = OcppVersion.V201
STATIONS = 1_000
RUNS = 5


def records(round_trips: int) -> list[tuple[bytes, bytes, bytes]]:
    """(key, messages_in value, messages_out value) per round trip."""
    made = []
    for number in range(round_trips):
        station_id = f"CP_{number % STATIONS}"
        message_id = f"m{number}"
        if number % 4 == 0:
            sample = {"value": number, "measurand": "Energy.Active.Import.Register"}
            payload = {
                "eventType": "Updated",
                "timestamp": "2026-01-01T00:00:00Z",
                "triggerReason": "MeterValuePeriodic",
                "seqNo": number,
                "transactionInfo": {"transactionId": f"T{station_id}"},
                "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [sample]}],
            }
            action, body = "TransactionEvent", payload
        else:
            action, body = "Heartbeat", {}
        value = frame_record(
            Origin(station_id, V201, "gw-1"),
            "2026-01-01T00:00:00.000Z",
            reply_partition=0,
            frame_text=orjson.dumps([2, message_id, action, body]).decode(),
            message_type=2,
            message_id=message_id,
            action=action,
            source="station",
        )
        answer = out_record([3, message_id, {"currentTime": "2026-01-01T00:00:00Z"}], V201)
        made.append((station_id.encode(), value, answer))
    return made


def run(batch: list[tuple[bytes, bytes, bytes]]) -> float:
    model = ConsoleModel()
    started = time.perf_counter()
    for time_ms, (key, value, answer) in enumerate(batch):
        model.observe_in(decode_in_record(key, value, ()), time_ms)
        decoded = decode_out_record(key, answer, lambda _: V201)
        assert not isinstance(decoded.frame, Rejection)
        model.observe_out(decoded.station_id, decoded.frame, time_ms + 1)
        if time_ms % 250 == 0:
            model.take_changes()
    return time.perf_counter() - started


def main() -> int:
    round_trips = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    batch = records(round_trips)
    rates = sorted(2 * round_trips / run(batch) for _ in range(RUNS))
    median = statistics.median(rates)
    print(
        f"console: {median:,.0f} records/s ({1e6 / median:.1f} µs per record), "
        f"range {rates[0]:,.0f}-{rates[-1]:,.0f}, median of {RUNS} runs of {round_trips:,} round trips"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
