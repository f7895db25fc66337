"""The console's model without Kafka: what it learns from records, round trips, and its memory bounds."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from csms_server.console.facts import MAX_TEXT
from csms_server.console.model import ENTRY_OVERHEAD, MAX_CONNECTORS, MAX_FRAME_TEXT, ConsoleModel
from ocpp_gw.core.envelope import Origin, decode_in_record, frame_record, lifecycle_record
from ocpp_gw.core.frames import Frame, Rejection, parse_frame
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.core.routing import Route
from ocpp_gw.sdk import InRecord

V201, V16 = OcppVersion.V201, OcppVersion.V16


def station_frame(
    frame: list[Any],
    station_id: str = "CP_1",
    version: OcppVersion = V201,
    origin: str = "station",
    action: str | None = None,
) -> InRecord:
    source = Origin(station_id, version, "gw-1")
    value = frame_record(
        source,
        "2026-01-01T00:00:00.000Z",
        reply_partition=0,
        frame_text=json.dumps(frame),
        message_type=frame[0],
        message_id=frame[1],
        action=frame[2] if frame[0] == 2 else action,
        source=origin,
    )
    return decode_in_record(station_id.encode(), value, ())


def event(kind: str, station_id: str = "CP_1", gateway: str = "gw-1", **details: Any) -> InRecord:
    value = lifecycle_record(Origin(station_id, V201, gateway), "2026-01-01T00:00:00.000Z", kind, 0, **details)
    return decode_in_record(station_id.encode(), value, ())


def csms_frame(frame: list[Any], version: OcppVersion = V201) -> Frame:
    parsed = parse_frame(json.dumps(frame), version)
    assert not isinstance(parsed, Rejection), parsed
    return parsed


BOOT_201 = {"reason": "PowerUp", "chargingStation": {"vendorName": "V", "model": "M", "firmwareVersion": "1.2"}}


def test_a_boot_and_its_answer_make_a_station_with_its_boot_information_and_a_round_trip() -> None:
    model = ConsoleModel()
    model.observe_in(event("connected", remote_address="10.0.0.1:5000"), 1_000)
    model.observe_in(station_frame([2, "b1", "BootNotification", BOOT_201]), 1_010)
    model.observe_out("CP_1", csms_frame([3, "b1", {"status": "Accepted", "currentTime": "x", "interval": 60}]), 1_035)
    view = model.station_view("CP_1")
    assert view is not None
    station = view["station"]
    assert station["connected"] and station["gateway"] == "gw-1" and station["protocol"] == "ocpp2.0.1"
    assert station["boot"] == {"vendor": "V", "model": "M", "firmware": "1.2", "status": "Accepted"}
    kinds = [(e["direction"], e["kind"], e["action"], e["rtt_ms"]) for e in view["timeline"]]
    assert kinds == [
        ("event", "connected", None, None),
        ("in", "call", "BootNotification", None),
        ("out", "result", "BootNotification", 25),
    ]


def test_an_answer_read_before_its_call_is_paired_when_the_call_arrives_and_told_again() -> None:
    model = ConsoleModel()
    model.observe_out("CP_1", csms_frame([3, "h1", {"currentTime": "x"}]), 2_008)
    model.observe_in(station_frame([2, "h1", "Heartbeat", {}]), 2_000)
    _, fresh = model.take_changes()
    answer = [e for e in fresh if e.kind == "result"]
    assert len(answer) == 2 and answer[0] is answer[1], "the answer is sent to the pages twice, the same entry"
    assert answer[0].action == "Heartbeat" and answer[0].rtt_ms == 8
    view = model.station_view("CP_1")
    assert view is not None
    assert [e["kind"] for e in view["timeline"]] == ["call", "result"], "shown in the order written"


def test_csms_calls_are_answered_by_the_station_and_gateway_errors_are_marked() -> None:
    model = ConsoleModel()
    model.observe_out("CP_1", csms_frame([2, "r1", "Reset", {"type": "Immediate"}]), 100)
    model.observe_in(station_frame([3, "r1", {"status": "Accepted"}], action="Reset"), 140)
    model.observe_out("CP_1", csms_frame([2, "r2", "Reset", {"type": "Sometimes"}]), 200)
    gateway_error = [4, "r2", "TypeConstraintViolation", "bad type", {}]
    model.observe_in(station_frame(gateway_error, origin="gateway", action="Reset"), 201)
    view = model.station_view("CP_1")
    assert view is not None
    result, error = view["timeline"][1], view["timeline"][3]
    assert (result["direction"], result["action"], result["rtt_ms"], result["by_gateway"]) == ("in", "Reset", 40, False)
    assert (error["kind"], error["error_code"], error["by_gateway"], error["rtt_ms"]) == (
        "error",
        "TypeConstraintViolation",
        True,
        1,
    )


def test_a_2x_transaction_collects_its_energy_from_transaction_events() -> None:
    model = ConsoleModel()

    def transaction_event(message_id: str, kind: str, wh: float | None, t: int) -> None:
        payload: dict[str, Any] = {
            "eventType": kind,
            "timestamp": "2026-01-01T00:00:00Z",
            "triggerReason": "MeterValuePeriodic",
            "seqNo": 0,
            "transactionInfo": {"transactionId": "T1"},
        }
        if wh is not None:
            sample = {"value": wh, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "kWh"}}
            payload["meterValue"] = [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [sample]}]
        model.observe_in(station_frame([2, message_id, "TransactionEvent", payload]), t)

    transaction_event("t1", "Started", None, 1_000)
    transaction_event("t2", "Updated", 10.0, 2_000)
    transaction_event("t3", "Updated", 10.25, 3_000)
    view = model.station_view("CP_1")
    assert view is not None and view["transaction"] is not None
    assert view["transaction"]["points"] == [[2_000, 0.0], [3_000, 250.0]]
    assert view["station"]["transaction"] == {"id": "T1", "active": True, "energy_wh": 250.0}
    transaction_event("t4", "Ended", 10.5, 4_000)
    view = model.station_view("CP_1")
    assert view is not None and view["transaction"]["active"] is False and view["transaction"]["energy_wh"] == 500.0


def test_a_16_transaction_takes_its_id_from_the_csms_answer_and_its_energy_from_meter_values() -> None:
    model = ConsoleModel()
    start = {"connectorId": 1, "idTag": "TAG", "meterStart": 1000, "timestamp": "2026-01-01T00:00:00Z"}
    model.observe_in(station_frame([2, "s1", "StartTransaction", start], version=V16), 1_000)
    answer = [3, "s1", {"transactionId": 7, "idTagInfo": {"status": "Accepted"}}]
    model.observe_out("CP_1", csms_frame(answer, V16), 1_010)
    sample = {"value": "1150", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    meter = {"connectorId": 1, "transactionId": 7, "meterValue": [{"timestamp": "x", "sampledValue": [sample]}]}
    model.observe_in(station_frame([2, "m1", "MeterValues", meter], version=V16), 2_000)
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
    model.observe_in(station_frame([2, "n1", "StatusNotification", status], version=V16), 2_100)
    view = model.station_view("CP_1")
    assert view is not None
    assert view["transaction"]["id"] == "7" and view["transaction"]["points"] == [[1_000, 0.0], [2_000, 150.0]]
    assert view["station"]["connectors"] == {"1": "Charging"}
    stop = {"transactionId": 7, "meterStop": 1200, "timestamp": "x"}
    model.observe_in(station_frame([2, "e1", "StopTransaction", stop], version=V16), 3_000)
    view = model.station_view("CP_1")
    assert view is not None and view["transaction"]["active"] is False and view["transaction"]["energy_wh"] == 200.0


def test_nonsense_in_a_known_action_is_shown_but_understood_as_nothing() -> None:
    model = ConsoleModel()
    model.observe_in(station_frame([2, "b1", "BootNotification", {"chargingStation": "nope"}]), 1)
    model.observe_in(station_frame([2, "t1", "TransactionEvent", {"transactionInfo": []}]), 2)
    model.observe_in(station_frame([2, "s1", "StatusNotification", {"evseId": 1}]), 3)
    view = model.station_view("CP_1")
    assert view is not None and len(view["timeline"]) == 3
    assert view["station"]["boot"] == {} and view["station"]["connectors"] == {} and view["transaction"] is None


def test_routes_and_disconnections_decide_who_is_connected() -> None:
    model = ConsoleModel()
    model.observe_route("CP_1", Route("CP_1", "gw-2", 3, "ocpp1.6", "c1", "2026-01-01T00:00:00Z"))
    assert model.stations["CP_1"].connected and model.stations["CP_1"].gateway_id == "gw-2"
    model.observe_in(event("disconnected", gateway="gw-1", close_code=1006), 10)
    assert model.stations["CP_1"].connected, "another gateway's old connection ending does not disconnect it"
    model.observe_in(event("disconnected", gateway="gw-2", close_code=1000), 20)
    assert not model.stations["CP_1"].connected
    model.observe_route("CP_2", None)
    assert "CP_2" not in model.stations, "a tombstone for an unknown station adds nothing"


def test_long_frames_are_cut_and_marked() -> None:
    model = ConsoleModel()
    model.observe_in(station_frame([2, "d1", "DataTransfer", {"vendorId": "v", "data": "x" * 40_000}]), 1)
    entry = model.stations["CP_1"].timeline[0]
    assert entry.truncated and len(entry.text) == MAX_FRAME_TEXT


def test_disconnected_stations_leave_first_when_there_are_too_many() -> None:
    model = ConsoleModel(max_stations=2)
    model.observe_in(event("connected", "A"), 1)
    model.observe_in(event("connected", "B"), 2)
    model.observe_in(event("disconnected", "A"), 3)
    model.observe_in(event("connected", "C"), 4)
    assert list(model.stations) == ["B", "C"]


operations = st.lists(
    st.tuples(st.sampled_from(["A", "B", "C", "D", "E"]), st.integers(0, 3000), st.booleans()), max_size=120
)


@settings(max_examples=60, deadline=None)
@given(operations, st.integers(1, 4), st.integers(1, 8), st.integers(ENTRY_OVERHEAD, 20_000))
def test_memory_stays_within_its_bounds(
    steps: list[tuple[str, int, bool]], max_stations: int, entries: int, budget: int
) -> None:
    model = ConsoleModel(max_stations=max_stations, timeline_entries=entries, timeline_bytes=budget)
    for number, (station_id, size, answer) in enumerate(steps):
        if answer:
            model.observe_out(station_id, csms_frame([3, f"m{number}", {"data": "x" * size}]), number)
        else:
            model.observe_in(
                station_frame([2, f"m{number}", "DataTransfer", {"vendorId": "x" * size}], station_id), number
            )
        kept = [entry for station in model.stations.values() for entry in station.timeline]
        assert len(model.stations) <= max_stations
        assert all(len(station.timeline) <= entries for station in model.stations.values())
        assert sum(entry.size for entry in kept) == model._bytes
        assert model._bytes <= budget or (len(kept) == 0 and model._bytes == 0)
        assert len(model._order) <= 2 * len(kept) + 2


def meter_event(message_id: str, samples: list[Any], kind: str = "Updated") -> list[Any]:
    payload = {
        "eventType": kind,
        "timestamp": "2026-01-01T00:00:00Z",
        "triggerReason": "MeterValuePeriodic",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "T1"},
        "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": samples}],
    }
    return [2, message_id, "TransactionEvent", payload]


def test_a_station_s_absurd_unit_multiplier_is_ignored_and_cannot_stop_the_console() -> None:
    model = ConsoleModel()
    model.observe_in(station_frame(meter_event("t1", [{"value": 1}], "Started")), 1)
    for multiplier in (400, 10_000_000, -400):
        absurd = {"value": 5, "unitOfMeasure": {"unit": "Wh", "multiplier": multiplier}}
        model.observe_in(station_frame(meter_event(f"m{multiplier}", [absurd])), 2)
    model.observe_in(station_frame(meter_event("t2", [{"value": 3, "unitOfMeasure": {"multiplier": 3}}])), 3)
    view = model.station_view("CP_1")
    assert view is not None and view["transaction"]["points"] == [[1, 0.0], [3, 2999.0]]


def test_one_unreadable_sample_does_not_hide_the_readable_ones() -> None:
    model = ConsoleModel()
    signed = {"value": "not-a-number", "format": "SignedData"}
    model.observe_in(station_frame(meter_event("t1", [signed, "junk", {"value": 7}], "Started")), 1)
    view = model.station_view("CP_1")
    assert view is not None and view["transaction"]["points"] == [[1, 0.0]]


def test_more_connected_stations_than_the_bound_keep_the_newest_and_the_accounting_right() -> None:
    model = ConsoleModel(max_stations=3, timeline_bytes=3 * (ENTRY_OVERHEAD + 40))
    for number in range(8):
        station_id = f"CP_{number}"
        model.observe_route(station_id, Route(station_id, "gw", 0, "ocpp2.0.1", "c", "2026-01-01T00:00:00Z"))
        model.observe_in(station_frame([2, f"h{number}", "Heartbeat", {}], station_id), number)
        assert station_id in model.stations and model.stations[station_id].connected
        assert len(model.stations) <= 3
        kept = [entry for station in model.stations.values() for entry in station.timeline]
        assert sum(entry.size for entry in kept) == model._bytes <= model.timeline_bytes
    assert list(model.stations) == ["CP_5", "CP_6", "CP_7"]


def test_what_a_station_says_about_itself_is_bounded() -> None:
    model = ConsoleModel()
    for connector in range(200):
        status = {"timestamp": "x", "connectorStatus": "Available" * 100, "evseId": 1, "connectorId": connector}
        model.observe_in(station_frame([2, f"s{connector}", "StatusNotification", status]), connector)
    boot = {"reason": "PowerUp", "chargingStation": {"vendorName": "V" * 5000, "model": "M"}}
    model.observe_in(station_frame([2, "b", "BootNotification", boot]), 500)
    station = model.stations["CP_1"]
    assert len(station.connectors) == MAX_CONNECTORS
    assert max(len(status) for status in station.connectors.values()) <= MAX_TEXT
    assert len(station.boot["vendor"]) <= MAX_TEXT
