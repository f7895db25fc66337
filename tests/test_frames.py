"""OCPP-J framing per version (1.6 §4, 2.0.1 §4, 2.1 §4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocpp_gw.core.frames import (
    Call,
    CallError,
    CallResult,
    Rejection,
    call_error_text,
    load_json,
    load_json_exact,
    parse_frame,
)
from ocpp_gw.core.protocol import Fault, OcppVersion, error_code, select_subprotocol, valid_station_id

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21


def test_call_result_and_error_parse_with_their_exact_text() -> None:
    text = '[2, "19223201", "BootNotification", {"reason": "PowerUp"}]'
    call = parse_frame(text, V201)
    assert call == Call("19223201", "BootNotification", {"reason": "PowerUp"}, text)
    assert parse_frame('[3,"1",{"a":1}]', V16) == CallResult("1", {"a": 1}, '[3,"1",{"a":1}]')
    error = parse_frame('[4,"1","NotSupported","no",{}]', V201)
    assert isinstance(error, CallError) and error.code == "NotSupported" and not error.to_result


@pytest.mark.parametrize(
    ("version", "code"), [(V16, "FormationViolation"), (V201, "RpcFrameworkError"), (V21, "RpcFrameworkError")]
)
@pytest.mark.parametrize("text", ["not json", "{}", "[]", "42", '[2, "a", "B", {}', "[NaN]", '"x"'])
def test_unreadable_messages_are_answered_with_id_minus_one(version: OcppVersion, code: str, text: str) -> None:
    rejection = parse_frame(text, version)
    assert isinstance(rejection, Rejection) and rejection.answer
    assert rejection.message_id == "-1"
    assert error_code(version, rejection.fault) == code


@pytest.mark.parametrize("message_id", [1, None, "", "x" * 37])
def test_message_id_must_be_a_string_of_at_most_36_characters(message_id: object) -> None:
    import json

    rejection = parse_frame(json.dumps([2, message_id, "Heartbeat", {}]), V201)
    assert isinstance(rejection, Rejection) and rejection.message_id == "-1" and rejection.fault is Fault.NOT_RPC


def test_36_character_id_is_accepted() -> None:
    assert isinstance(parse_frame(f'[2,"{"x" * 36}","Heartbeat",{{}}]', V16), Call)


@pytest.mark.parametrize(
    ("text", "fault", "codes"),
    [
        ('[2,"1","Heartbeat"]', Fault.INCOMPLETE, ("ProtocolError", "RpcFrameworkError")),
        ('[2,"1","Heartbeat",[]]', Fault.BAD_PAYLOAD, ("FormationViolation", "FormatViolation")),
        ('[2,"1","Heartbeat",null]', Fault.BAD_PAYLOAD, ("FormationViolation", "FormatViolation")),
        ('[2,"1",7,{}]', Fault.NOT_RPC, ("FormationViolation", "RpcFrameworkError")),
    ],
)
def test_bad_calls_keep_their_id_and_use_each_versions_code(text: str, fault: Fault, codes: tuple[str, str]) -> None:
    for version, code in ((V16, codes[0]), (V201, codes[1]), (V21, codes[1])):
        rejection = parse_frame(text, version)
        assert isinstance(rejection, Rejection) and rejection.fault is fault and rejection.message_id == "1"
        assert error_code(version, fault) == code


def test_unknown_message_type_is_ignored_in_16_and_21_and_answered_in_201() -> None:
    for version, answered in ((V16, False), (V201, True), (V21, False)):
        rejection = parse_frame('[9,"1","X",{}]', version)
        assert isinstance(rejection, Rejection) and rejection.answer is answered
    rejection = parse_frame('[9,"1","X",{}]', V201)
    assert isinstance(rejection, Rejection)
    assert error_code(V201, rejection.fault) == "MessageTypeNotSupported" and rejection.message_id == "1"


def test_a_message_type_wider_than_64_bits_is_an_unknown_type_not_a_non_integer() -> None:
    for huge in ("100000000000000000000000", "-9223372036854775809"):
        for version, answered in ((V16, False), (V201, True), (V21, False)):
            rejection = parse_frame(f'[{huge},"1","Heartbeat",{{}}]', version)
            assert isinstance(rejection, Rejection) and rejection.fault is Fault.UNKNOWN_MESSAGE_TYPE
            assert rejection.answer is answered and rejection.message_id == "1"
    for not_integer in ("2.0", "1e400"):
        rejection = parse_frame(f'[{not_integer},"1","Heartbeat",{{}}]', V201)
        assert isinstance(rejection, Rejection) and rejection.fault is Fault.NOT_RPC


def test_send_and_callresulterror_exist_only_in_21() -> None:
    send = parse_frame('[6,"1","NotifyPeriodicEventStream",{}]', V21)
    assert isinstance(send, Call) and send.send and send.message_type == 6
    result_error = parse_frame('[5,"1","FormatViolation","bad",{}]', V21)
    assert isinstance(result_error, CallError) and result_error.to_result
    for version in (V16, V201):
        assert isinstance(parse_frame('[6,"1","X",{}]', version), Rejection)
        assert isinstance(parse_frame('[5,"1","X","",{}]', version), Rejection)


def test_malformed_answers_are_not_answered() -> None:
    for text in ('[3,"1"]', '[3,"1",[]]', '[4,"1","X"]', '[4,"1",1,"",{}]', "[3,1,{}]"):
        rejection = parse_frame(text, V201)
        assert isinstance(rejection, Rejection) and not rejection.answer, text


def test_call_error_text_spells_the_code_and_bounds_the_description() -> None:
    text = call_error_text(V16, "7", Fault.BAD_PAYLOAD, "d" * 300)
    frame = load_json(text)
    assert frame[:3] == [4, "7", "FormationViolation"] and len(frame[3]) == 255 and frame[4] == {}


def test_huge_integers_are_json_and_deep_nesting_is_rejected() -> None:
    big = '[2,"1","DataTransfer",{"n":123456789012345678901234567890}]'
    assert isinstance(parse_frame(big, V201), Call)
    deep = '[2,"1","DataTransfer",' + "[" * 100000 + "]" * 100000 + "]"
    assert isinstance(parse_frame(deep, V201), Rejection)


def test_subprotocol_selection_follows_the_stations_preference() -> None:
    supported = (V16, V201, V21)
    assert select_subprotocol(["ocpp1.5", "ocpp2.1", "ocpp1.6"], supported) is V21
    assert select_subprotocol(["ocpp1.5"], supported) is None
    assert select_subprotocol([], supported) is None
    assert select_subprotocol(["ocpp2.1"], (V16,)) is None


@pytest.mark.parametrize(
    ("station_id", "valid"),
    [
        ("CP_1", True),
        ("RDAM|123", True),
        ("a" * 48, True),
        ("a" * 49, False),
        ("", False),
        ("a:b", False),
        ("a\nb", False),
    ],
)
def test_station_identity_rules(station_id: str, valid: bool) -> None:
    assert valid_station_id(station_id) is valid


def test_malformed_sends_are_never_answered() -> None:
    for text in ('[6,"a","X",[]]', '[6,"a",1,{}]', '[6,1,"X",{}]', '[6,"a","X"]'):
        rejection = parse_frame(text, V21)
        assert isinstance(rejection, Rejection) and not rejection.answer, text


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same type at every level (1 and 1.0 are not the same here)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@given(JSON_VALUES)
def test_exact_parsing_reads_what_the_standard_library_reads(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert same(load_json_exact(text), json.loads(text))
    assert same(load_json_exact(text.encode()), json.loads(text))


@pytest.mark.parametrize(
    "text", ["[123456789012345678901234567890]", '{"a": [1, {"b": 18446744073709551616}]}', "[-9223372036854775809]"]
)
def test_integers_wider_than_64_bits_stay_exact(text: str) -> None:
    assert same(load_json_exact(text), json.loads(text))


@pytest.mark.parametrize("text", ["[NaN]", "[Infinity]", '["\\ud800"]', "[1,]", "{"])
def test_what_is_not_strict_json_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        load_json_exact(text)
