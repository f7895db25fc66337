"""The Kafka envelope: valid JSON with the frame spliced in exactly, and clear errors for bad CSMS records."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from ocpp_gw.core.envelope import (
    EnvelopeError,
    Origin,
    decode_out_record,
    frame_record,
    lifecycle_record,
    out_record,
)
from ocpp_gw.core.frames import Call, CallResult, Rejection
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
