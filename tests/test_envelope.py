"""The Kafka envelope: valid JSON with the frame spliced in exactly, and clear errors for bad CSMS records."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from ocpp_gw.core.envelope import (
    EnvelopeError,
    InRecord,
    Origin,
    decode_in_record,
    decode_out_record,
    frame_record,
    lifecycle_record,
    out_record,
)
from ocpp_gw.core.frames import Call, CallError, CallResult, Rejection
from ocpp_gw.core.protocol import OcppVersion

ORIGIN = Origin("CP|1", OcppVersion.V16, "gw-1")
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "envelope-v1.schema.json").read_text())


def validate(document: object, definition: str) -> None:
    jsonschema.validate(document, {"$ref": f"#/$defs/{definition}", "$defs": SCHEMA["$defs"]})
    jsonschema.validate(document, SCHEMA)


def no_station(station_id: str) -> None:
    return None


def test_frame_record_keeps_the_frame_text_exactly_and_attaches_the_request() -> None:
    text = '[3, "c1", {"status": "Accepted", "n": 1.50}]'
    value = frame_record(
        ORIGIN,
        "2026-01-01T00:00:00.000Z",
        reply_partition=3,
        frame_text=text,
        message_type=3,
        message_id="c1",
        action="Reset",
        source="station",
        request_text='[2,"c1","Reset",{"type":"Soft"}]',
    )
    assert value.endswith(b',"frame":' + text.encode() + b"}")
    document = json.loads(value)
    validate(document, "in_record")
    assert document["request"] == [2, "c1", "Reset", {"type": "Soft"}] and document["station_id"] == "CP|1"
    assert document["protocol"] == "ocpp1.6" and document["kind"] == "frame" and document["late"] is False
    assert document["reply_partition"] == 3


def test_lifecycle_records_validate() -> None:
    for kind, details in (
        ("connected", {"remote_address": "1.2.3.4:5"}),
        ("disconnected", {"close_code": 1000, "close_reason": ""}),
    ):
        validate(json.loads(lifecycle_record(ORIGIN, "t", kind, 0, **details)), "in_record")
    headers = dict(ORIGIN.headers("connected", 5))
    assert headers["station_id"] == b"CP|1" and headers["reply_partition"] == b"5"


def test_out_record_round_trips() -> None:
    value = out_record([2, "c1", "Reset", {"type": "Hard"}], OcppVersion.V201)
    validate(json.loads(value), "out_record")
    record = decode_out_record(b"CP_1", value, no_station)
    assert isinstance(record.frame, Call) and record.frame.action == "Reset" and record.protocol is OcppVersion.V201
    answer = decode_out_record(b"CP_1", b'{"v":1,"frame":[3,"x",{}]}', no_station)
    assert isinstance(answer.frame, CallResult)


def test_a_bad_frame_inside_a_good_envelope_is_a_rejection_to_answer() -> None:
    record = decode_out_record(b"CP_1", b'{"v":1,"frame":[2,"x","Reset",[]]}', lambda s: OcppVersion.V16)
    assert isinstance(record.frame, Rejection) and record.frame.message_id == "x"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (None, b'{"frame":[3,"x",{}]}', "no key"),
        (b"\xff", b'{"frame":[3,"x",{}]}', "not UTF-8"),
        (b"CP", None, "no value"),
        (b"CP", b"nope", "not valid JSON"),
        (b"CP", b'{"frame": [2, "x", "A", {"t": "\\ud83d"}]}', "lone surrogate"),
        (b"CP", b'{"frame": [2, "x", "A", {"n": 1e400}]}', "cannot be written"),
        (b"CP", b"[1]", '"frame"'),
        (b"CP", b'{"v":2,"frame":[]}', "version 2"),
        (b"CP", b'{"frame":[],"protocol":"ocpp9"}', "unknown protocol"),
    ],
)
def test_bad_csms_records_are_envelope_errors(key: bytes | None, value: bytes | None, message: str) -> None:
    with pytest.raises(EnvelopeError) as raised:
        decode_out_record(key, value, no_station)
    assert message in str(raised.value)


def test_csms_frames_keep_wide_integers_exact() -> None:
    record = decode_out_record(
        b"CP", b'{"frame": [2, "x", "DataTransfer", {"n": 12345678901234567890123}]}', no_station
    )
    assert isinstance(record.frame, Call) and "12345678901234567890123" in record.frame.text


def in_frame(
    frame_text: str,
    message_type: int,
    message_id: str,
    action: str | None = None,
    source: str = "station",
    reply_partition: int | None = 3,
    request_text: str | None = None,
    late: bool = False,
) -> bytes:
    return frame_record(
        ORIGIN,
        "2026-01-01T00:00:00.000Z",
        reply_partition=reply_partition,
        frame_text=frame_text,
        message_type=message_type,
        message_id=message_id,
        action=action,
        source=source,
        request_text=request_text,
        late=late,
    )


def test_a_station_call_round_trips_through_the_in_record() -> None:
    value = in_frame('[2, "m1", "BootNotification", {"reason": "PowerUp"}]', 2, "m1", action="BootNotification")
    headers = [*ORIGIN.headers("frame", 3), ("correlation_id", b"CP|1/m1")]
    record = decode_in_record(b"CP|1", value, headers)
    assert record == InRecord(
        kind="frame",
        station_id="CP|1",
        protocol=OcppVersion.V16,
        gateway_id="gw-1",
        received_at="2026-01-01T00:00:00.000Z",
        reply_partition=3,
        correlation_id="CP|1/m1",
        frame=Call("m1", "BootNotification", {"reason": "PowerUp"}, '[2,"m1","BootNotification",{"reason":"PowerUp"}]'),
        origin="station",
        action="BootNotification",
    )


def test_an_answer_to_a_csms_call_carries_its_request_and_late_flag() -> None:
    value = in_frame(
        '[4, "c1", "InternalError", "timeout", {}]',
        4,
        "c1",
        action="Reset",
        source="gateway",
        request_text='[2,"c1","Reset",{"type":"Soft"}]',
        late=True,
        reply_partition=None,
    )
    record = decode_in_record(b"CP|1", value, None)
    assert isinstance(record.frame, CallError) and record.frame.code == "InternalError"
    assert record.origin == "gateway" and record.late and record.reply_partition is None
    assert record.request is not None and record.request.payload == {"type": "Soft"} and record.action == "Reset"


def test_the_reply_partition_header_stands_in_for_a_missing_field() -> None:
    value = in_frame('[3, "c1", {}]', 3, "c1", reply_partition=None)
    record = decode_in_record(b"CP|1", value, ORIGIN.headers("frame", 6))
    assert isinstance(record.frame, CallResult) and record.reply_partition == 6 and record.correlation_id is None


def test_connection_events_round_trip() -> None:
    connected = decode_in_record(b"CP|1", lifecycle_record(ORIGIN, "t", "connected", 2, remote_address="1.2.3.4:5"), ())
    assert connected.kind == "connected" and connected.remote_address == "1.2.3.4:5" and connected.frame is None
    assert connected.reply_partition == 2 and connected.protocol is OcppVersion.V16
    value = lifecycle_record(ORIGIN, "t", "disconnected", None, close_code=1006, close_reason="")
    disconnected = decode_in_record(b"CP|1", value, ())
    assert (disconnected.kind, disconnected.close_code, disconnected.close_reason) == ("disconnected", 1006, "")


GOOD_FRAME = {
    "v": 1,
    "kind": "frame",
    "station_id": "CP",
    "protocol": "ocpp2.0.1",
    "gateway_id": "gw",
    "received_at": "t",
    "origin": "station",
    "message_type": 2,
    "message_id": "m",
    "late": False,
    "frame": [2, "m", "Heartbeat", {}],
}


@pytest.mark.parametrize(
    ("key", "changes", "message"),
    [
        (None, {}, "no key"),
        (b"CP2", {}, "is not the station id"),
        (b"CP", {"v": 2}, "version 2"),
        (b"CP", {"v": None}, "version None"),
        (b"CP", {"kind": "hello"}, "unknown kind"),
        (b"CP", {"station_id": ""}, '"station_id"'),
        (b"CP", {"protocol": "ocpp9"}, "unknown protocol"),
        (b"CP", {"gateway_id": None}, '"gateway_id"'),
        (b"CP", {"received_at": 5}, '"received_at"'),
        (b"CP", {"reply_partition": -1}, "reply_partition"),
        (b"CP", {"reply_partition": True}, "reply_partition"),
        (b"CP", {"origin": "csms"}, "origin"),
        (b"CP", {"late": None}, '"late"'),
        (b"CP", {"frame": [2, "m", "Heartbeat", []]}, "not an OCPP-J message"),
        (b"CP", {"frame": [5, "m", "E", "d", {}]}, "not an OCPP-J message of ocpp2.0.1"),
        (b"CP", {"frame": None}, "not an OCPP-J message"),
        (b"CP", {"message_id": "other"}, "do not match the frame"),
        (b"CP", {"message_type": 3}, "do not match the frame"),
        (b"CP", {"request": [3, "m", {}]}, "request is not a CALL"),
        (b"CP", {"action": 7}, '"action"'),
        (b"CP", {"kind": "disconnected", "close_code": "1000"}, '"close_code"'),
    ],
)
def test_bad_in_records_are_envelope_errors(key: bytes | None, changes: dict[str, object], message: str) -> None:
    with pytest.raises(EnvelopeError) as raised:
        decode_in_record(key, json.dumps(GOOD_FRAME | changes).encode(), ())
    assert message in str(raised.value)


@pytest.mark.parametrize(("value", "message"), [(None, "no value"), (b"{", "not valid JSON"), (b"[]", "JSON object")])
def test_in_records_that_are_not_json_objects_are_envelope_errors(value: bytes | None, message: str) -> None:
    assert decode_in_record(b"CP", json.dumps(GOOD_FRAME).encode(), ()).kind == "frame"
    with pytest.raises(EnvelopeError, match=message):
        decode_in_record(b"CP", value, ())
