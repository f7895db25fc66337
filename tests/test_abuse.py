"""The abuse suite's pure parts: expectations, probe generation, framing, and judging what comes back."""

from __future__ import annotations

import json
import random
import zlib

import pytest

from chaos import abuse
from chaos.abuse import (
    UNREADABLE_ID,
    Expectation,
    Probe,
    Recipe,
    _FuzzRun,
    _Lane,
    _Outstanding,
    answer,
    build_probe,
    effective_expectation,
    encode_frame,
    expect_message,
    generate_probes,
    judge_answer,
    silent,
    strict_json,
)

V16, V201, V21 = abuse.VERSIONS
MAX = 4096


def expect(version: str, text: str | bytes, **kwargs: object) -> Expectation:
    data = text.encode() if isinstance(text, str) else text
    return expect_message(version, data, max_message_size=MAX, **kwargs)  # type: ignore[arg-type]


# What a correct gateway must do with each message (README "Invalid input", OCPP-J).


@pytest.mark.parametrize("version", abuse.VERSIONS)
def test_a_well_formed_call_reaches_the_csms(version: str) -> None:
    e = expect(version, '[2,"a1","Heartbeat",{}]')
    assert (e.outcome, e.message_id, e.forwarded, e.codes) == ("answer", "a1", True, frozenset())


@pytest.mark.parametrize(
    ("version", "text", "message_id", "code"),
    [
        (V16, '[2,"a","Heartbeat"]', "a", "ProtocolError"),
        (V201, '[2,"a","Heartbeat"]', "a", "RpcFrameworkError"),
        (V21, '[2,"a","Heartbeat",{},1]', "a", "RpcFrameworkError"),
        (V16, '[2,"a",3,{}]', "a", "FormationViolation"),
        (V201, '[2,"a",null,{}]', "a", "RpcFrameworkError"),
        (V16, '[2,"a","Heartbeat",[]]', "a", "FormationViolation"),
        (V201, '[2,"a","Heartbeat","x"]', "a", "FormatViolation"),
        (V16, "[2,", UNREADABLE_ID, "FormationViolation"),
        (V21, "{}", UNREADABLE_ID, "RpcFrameworkError"),
        (V201, "[]", UNREADABLE_ID, "RpcFrameworkError"),
        (V201, '["2","a","Heartbeat",{}]', UNREADABLE_ID, "RpcFrameworkError"),
        (V16, '[true,"a","Heartbeat",{}]', UNREADABLE_ID, "FormationViolation"),
        (V16, '[2.0,"a","Heartbeat",{}]', UNREADABLE_ID, "FormationViolation"),
        (V201, f'[2,"{"x" * 37}","Heartbeat",{{}}]', UNREADABLE_ID, "RpcFrameworkError"),
        (V16, '[2,"","Heartbeat",{}]', UNREADABLE_ID, "FormationViolation"),
        (V201, '[2,7,"Heartbeat",{}]', UNREADABLE_ID, "RpcFrameworkError"),
        (V201, '[2,"a","Heartbeat",{"v":NaN}]', UNREADABLE_ID, "RpcFrameworkError"),
        (V201, '[2,"a","Heartbeat",{"v":1e400}]', UNREADABLE_ID, "RpcFrameworkError"),
        (V201, '[2,"a","Heartbeat",{"v":"\\ud800"}]', UNREADABLE_ID, "RpcFrameworkError"),
        (V201, '\ufeff[2,"a","Heartbeat",{}]', UNREADABLE_ID, "RpcFrameworkError"),
        (V201, '[7,"a"]', "a", "MessageTypeNotSupported"),
        (V201, "[7]", UNREADABLE_ID, "MessageTypeNotSupported"),
        (V201, '[5,"a","InternalError","",{}]', "a", "MessageTypeNotSupported"),
        (V201, '[6,"a","NotifyPeriodicEventStream",{}]', "a", "MessageTypeNotSupported"),
    ],
)
def test_refused_messages_get_one_callerror_with_the_readme_code(
    version: str, text: str, message_id: str, code: str
) -> None:
    e = expect(version, text)
    assert (e.outcome, e.message_id, e.codes, e.forwarded) == ("answer", message_id, frozenset({code}), False)


@pytest.mark.parametrize(
    ("version", "text"),
    [
        (V16, '[7,"a"]'),
        (V21, '[7,"a"]'),
        (V16, '[5,"a","InternalError","",{}]'),
        (V16, '[0,"a"]'),
        (V16, '[100000000000000000000000000,"a","Heartbeat",{}]'),  # an integer, however large
        (V201, '[3,"nobody-asked",{}]'),
        (V201, '[3,"a"]'),
        (V201, '[3,"a",[]]'),
        (V16, '[4,"a","GenericError","",{}]'),
        (V16, '[4,"a","GenericError"]'),
        (V201, f'[3,"{"x" * 37}",{{}}]'),
        (V21, '[6,"a","NotifyPeriodicEventStream",{}]'),
        (V21, '[6,"a","NotifyPeriodicEventStream"]'),
        (V21, '[6,"a","NotifyPeriodicEventStream",[]]'),
        (V21, '[5,"a","InternalError","",{}]'),
    ],
)
def test_ignored_messages_get_no_answer(version: str, text: str) -> None:
    assert expect(version, text).outcome == "silent"


def test_wire_level_faults_close_the_connection() -> None:
    assert expect(V16, b'[2,"a","\xff",{}]').close_codes == {1007}
    assert expect(V16, b"[" + b" " * MAX + b"]").close_codes == {1009}
    assert expect(V16, b" " * MAX).outcome == "answer"  # exactly the limit is allowed (then not JSON)
    binary = expect(V16, b'[2,"a","Heartbeat",{}]', binary=True)
    assert binary.message_id == UNREADABLE_ID and binary.codes == {"FormationViolation"}


def test_an_empty_action_may_be_refused_or_passed_on() -> None:
    e = expect(V201, '[2,"a","",{}]')
    assert e.forwarded and e.codes == {"RpcFrameworkError"}
    both = expect(V201, '[2,"a","",[]]')
    assert not both.forwarded and both.codes == {"RpcFrameworkError", "FormatViolation"}


def test_strict_json_follows_rfc_8259_and_the_gateway_limits() -> None:
    assert strict_json("[" + "1" + "0" * 400 + "]")[0]
    assert strict_json('["\\ud83d\\ude00"]') == (True, ["😀"])
    assert strict_json('{"a":1,"a":2}')[0]
    for bad in (
        "[NaN]",
        "[Infinity]",
        "[-Infinity]",
        "[1e400]",
        '["\\udc00"]',
        '{"\\ud800":1}',
        "[1,]",
        "",
        "[" * 20000,
    ):
        assert strict_json(bad) == (False, None), bad


# Judging answers.


def test_forwarded_calls_accept_the_csms_answer_with_their_id_only() -> None:
    e = answer("a", "call", forwarded=True)
    assert judge_answer('[3,"a",{"currentTime":"x"}]', e) == (None, "CALLRESULT")
    assert judge_answer('[4,"a","NotImplemented","no",{}]', e) == (None, "NotImplemented")
    assert judge_answer('[3,"b",{}]', e)[0] is not None
    assert judge_answer('[3,"a",[]]', e)[0] is not None
    assert judge_answer('[2,"a","Heartbeat",{}]', e)[0] is not None
    assert judge_answer('[4,"a","NotImplemented","no"]', e)[0] is not None


def test_gateway_callerrors_must_have_the_expected_code_and_shape() -> None:
    e = answer("-1", "not JSON", "RpcFrameworkError")
    assert judge_answer('[4,"-1","RpcFrameworkError","bad",{}]', e) == (None, "RpcFrameworkError")
    assert (
        judge_answer('[4,"-1","FormatViolation","bad",{}]', e)[0]
        == "errorCode FormatViolation, expected RpcFrameworkError"
    )
    assert judge_answer('[3,"-1",{}]', e)[0] is not None
    assert judge_answer(json.dumps([4, "-1", "RpcFrameworkError", "x" * 256, {}]), e)[0] is not None
    assert judge_answer('[4,"-1","RpcFrameworkError","bad",[]]', e)[0] is not None
    assert judge_answer('[4,"-1","RpcFrameworkError","bad",{}]', silent("ignored"))[0] is not None


def test_flood_answers_are_sorted_by_kind() -> None:
    assert abuse.flood_answer_kind('[3,"f-1",{}]') == ("result", "f-1")
    in_flight = '[4,"f-2","GenericError","CALL f-1 is still in flight; send one CALL at a time",{}]'
    assert abuse.flood_answer_kind(in_flight) == ("in_flight", "f-2")
    rate = '[4,"f-3","GenericError","message rate limit exceeded; slow down",{}]'
    assert abuse.flood_answer_kind(rate) == ("rate_limited", "f-3")
    assert abuse.flood_answer_kind('[4,"f-4","InternalError","x",{}]') == ("InternalError", "f-4")
    assert abuse.flood_answer_kind("[3]") == ("malformed", None)
    assert abuse.flood_answer_kind('[3,"f-5"]') == ("malformed", "f-5")


# Generating probes.


def test_probes_are_the_same_for_the_same_seed_and_differ_for_another() -> None:
    first = generate_probes(V201, 60, seed=3, lane=1, max_message_size=MAX)
    assert first == generate_probes(V201, 60, seed=3, lane=1, max_message_size=MAX)
    assert first != generate_probes(V201, 60, seed=4, lane=1, max_message_size=MAX)
    assert first != generate_probes(V201, 60, seed=3, lane=2, max_message_size=MAX)
    assert len(first) == 60


def test_long_runs_derive_more_recipes_than_hypothesis_draws() -> None:
    recipes = abuse.draw_recipes(abuse.RECIPE_POOL + 50, seed=9)
    assert len(recipes) == abuse.RECIPE_POOL + 50
    assert recipes == abuse.draw_recipes(abuse.RECIPE_POOL + 50, seed=9)
    for recipe in recipes:
        assert 0 <= recipe.wire < 1000 and len(recipe.mutations) <= 4
        assert all(name in abuse.MUTATIONS for name, _ in recipe.mutations)


@pytest.mark.parametrize("version", abuse.VERSIONS)
def test_every_probe_carries_the_expectation_of_its_bytes(version: str) -> None:
    for probe in generate_probes(version, 300, seed=1, max_message_size=MAX):
        if probe.wire in (
            "text",
            "fragmented",
            "binary",
            "oversize",
            "oversize_binary",
            "oversize_fragmented",
            "at_limit",
        ):
            binary = probe.wire in ("binary", "oversize_binary")
            assert probe.expect == expect_message(version, probe.data, binary=binary, max_message_size=MAX)


@pytest.mark.parametrize("version", abuse.VERSIONS)
def test_unmutated_base_frames_are_valid(version: str) -> None:
    frames = abuse.base_frames(version, "m")
    types = {frame[0] for frame in frames}
    assert types == ({2, 3, 4, 5, 6} if version == V21 else {2, 3, 4})
    for base in range(len(frames)):
        probe = build_probe(version, Recipe(base, (), 0), "m", MAX)
        assert json.loads(probe.data) == frames[base]
        if frames[base][0] == 2:
            assert probe.expect == answer("m", "well-formed CALL", forwarded=True)
        else:
            assert probe.expect.outcome == "silent"


def mutated(name: str, seed: int, version: str = V201, base: int = 0, wire: int = 0) -> Probe:
    return build_probe(version, Recipe(base, ((name, seed),), wire), "m", MAX)


def test_structure_mutations_do_what_they_say() -> None:
    original = [2, "m", "Heartbeat", {}]
    original_text = json.dumps(original, separators=(",", ":")).encode()
    assert build_probe(V201, Recipe(0, (), 0), "m", MAX).data == original_text
    for seed in range(40):
        ok, dropped = strict_json(mutated("drop", seed).data.decode())
        assert ok and len(dropped) == 3
        added = mutated("add", seed).data
        assert len(added) > len(original_text) and b'"m"' in added and b'"Heartbeat"' in added
        ok, swapped = strict_json(mutated("swap", seed).data.decode())
        assert ok and sorted(map(json.dumps, swapped)) == sorted(map(json.dumps, original))
        type_id = mutated("type_id", seed).data.decode()
        assert type_id.startswith("[") and type_id.endswith(',"m","Heartbeat",{}]')
        wrapped = json.loads(mutated("wrap", seed).data)
        assert wrapped in ([original], {"frame": original})
        action = mutated("action", seed).data.decode()
        assert action.startswith('[2,"m",') and action.endswith(",{}]") and '"Heartbeat"' not in action
        message_id = mutated("msg_id", seed).data.decode()
        assert message_id.startswith("[2,") and message_id.endswith(',"Heartbeat",{}]') and '"m"' not in message_id


def test_text_mutations_do_what_they_say() -> None:
    original = build_probe(V201, Recipe(0, (), 0), "m", MAX).data
    for seed in range(40):
        truncated = mutated("truncate", seed).data
        assert len(truncated) < len(original) and original.startswith(truncated)
        bad = mutated("bad_utf8", seed)
        with pytest.raises(UnicodeDecodeError):
            bad.data.decode()
        assert bad.expect.close_codes == {1007}
        assert mutated("bom", seed).data == "\ufeff".encode() + original
        assert mutated("whitespace", seed).data.strip() == original
        assert mutated("whitespace", seed).expect == answer("m", "well-formed CALL", forwarded=True)
        assert len(mutated("flip", seed).data) == len(original)


def wire_of(kind: str) -> int:
    low = 0
    for bound, name in abuse.WIRE_KINDS:
        if name == kind:
            return low
        low = bound
    raise AssertionError(kind)


def test_wire_forms_do_what_they_say() -> None:
    oversize = mutated("whitespace", 1, wire=wire_of("oversize"))
    assert len(oversize.data) > MAX and oversize.expect.close_codes == {1009}
    at_limit = mutated("whitespace", 1, wire=wire_of("at_limit"))
    assert len(at_limit.data) == MAX and at_limit.expect.forwarded
    binary = mutated("whitespace", 1, wire=wire_of("binary"))
    assert binary.expect.message_id == UNREADABLE_ID and binary.expect.codes == {"RpcFrameworkError"}
    compressed = mutated("whitespace", 1, wire=wire_of("compressed"))
    assert compressed.expect.close_codes == {1002}
    assert effective_expectation(compressed, deflate=True, max_message_size=MAX).forwarded
    bomb = mutated("whitespace", 1, wire=wire_of("deflate_bomb"))
    assert effective_expectation(bomb, deflate=True, max_message_size=MAX).close_codes == {1009}
    assert effective_expectation(bomb, deflate=False, max_message_size=MAX).close_codes == {1002}


def test_fragmented_probes_reassemble_to_the_message() -> None:
    probe = mutated("whitespace", 3, wire=wire_of("fragmented"))
    frames = decode_frames(abuse.probe_wire_bytes(probe, None))
    data = [(opcode, payload) for fin, opcode, payload in frames if opcode != abuse.OP_PING]
    assert data[0][0] == abuse.OP_TEXT and all(opcode == abuse.OP_CONT for opcode, _ in data[1:])
    assert b"".join(payload for _, payload in data) == probe.data
    assert [fin for fin, opcode, _ in frames if opcode != abuse.OP_PING] == [False] * (len(data) - 1) + [True]


def test_ws_violations_are_what_they_claim() -> None:
    rng = random.Random(5)
    seen = set()
    for index in range(len(abuse.VIOLATIONS) * 3):
        name, raw, e = abuse.ws_violation(index, rng)
        seen.add(name)
        first, second = raw[0], raw[1]
        if name == "unmasked":
            assert not second & 0x80 and e.close_codes == {1002}
        elif name in ("rsv2", "rsv3"):
            assert first & 0x30 and not first & 0x40 and e.close_codes == {1002}
        elif name == "reserved_opcode":
            assert first & 0xF in {3, 4, 5, 6, 7, 11, 12, 13, 14, 15}
        elif name == "close_valid":
            assert first & 0xF == abuse.OP_CLOSE and e.close_codes == {int.from_bytes(raw[6:8], "big")}
        elif name in ("ping", "pong"):
            assert e.outcome == "silent"
        else:
            assert e.outcome == "close"
    assert seen == set(abuse.VIOLATIONS)


# Framing.


def decode_frames(data: bytes) -> list[tuple[bool, int, bytes]]:
    """A reference decoder for client frames (masked), written from RFC 6455 §5.2."""
    frames, at = [], 0
    while at < len(data):
        first, second = data[at], data[at + 1]
        size, at = second & 0x7F, at + 2
        if size == 126:
            size, at = int.from_bytes(data[at : at + 2], "big"), at + 2
        elif size == 127:
            size, at = int.from_bytes(data[at : at + 8], "big"), at + 8
        assert second & 0x80, "client frames are masked"
        mask, at = data[at : at + 4], at + 4
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data[at : at + size]))
        frames.append((bool(first & 0x80), first & 0xF, payload))
        at += size
    return frames


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_frames_round_trip_with_every_length_encoding(size: int) -> None:
    payload = random.Random(size).randbytes(size)
    encoded = encode_frame(abuse.OP_BINARY, payload, mask=b"\x01\x02\x03\x04")
    assert decode_frames(encoded) == [(True, abuse.OP_BINARY, payload)]
    assert len(encoded) == size + 6 + (0 if size < 126 else 2 if size < 65536 else 8)


def test_masking_is_its_own_inverse() -> None:
    data = random.Random(1).randbytes(1001)
    assert abuse.apply_mask(abuse.apply_mask(data, b"abcd"), b"abcd") == data
    assert abuse.apply_mask(data, b"\x00\x00\x00\x00") == data


def test_deflate_round_trip_and_negotiation() -> None:
    agreed = abuse.Deflate.from_header("permessage-deflate; server_no_context_takeover; client_max_window_bits=12")
    assert agreed is not None and agreed.client_bits == 12 and agreed.server_no_context
    assert abuse.Deflate.from_header("x-other") is None
    data = b'[2,"a","Heartbeat",{}]' * 50
    inflated = zlib.decompressobj(-15).decompress(agreed.compress(data) + b"\x00\x00\xff\xff")
    assert inflated == data
    server = zlib.compressobj(wbits=-12)
    body = server.compress(data) + server.flush(zlib.Z_SYNC_FLUSH)
    assert agreed.decompress(body[:-4]) == data


def test_accept_key_matches_rfc_6455_example() -> None:
    assert abuse.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


# Handshake cases.


def test_handshake_outcomes_match_classes() -> None:
    assert abuse.outcome_ok("426", frozenset({"4xx"}))
    assert abuse.outcome_ok("101", frozenset({"101"}))
    assert not abuse.outcome_ok("101+1002", frozenset({"101"}))
    assert not abuse.outcome_ok("503", frozenset({"4xx"}))
    assert not abuse.outcome_ok("eof", frozenset({"4xx"}))


def test_handshake_cases_say_what_they_test() -> None:
    cases = {case.name: case for case in abuse.handshake_cases("127.0.0.1", 9000)}
    assert len(cases) == len(abuse.handshake_cases("127.0.0.1", 9000))
    assert cases["id_48_chars"].expect == {"101", "503"}
    assert f"/ocpp/{'H' * 48} ".encode() in cases["id_48_chars"].request
    assert "400" in cases["id_49_chars"].expect and "101" not in cases["id_49_chars"].expect
    assert cases["valid_ocpp1.6"].expect == {"101"} and cases["valid_ocpp1.6"].protocol == "ocpp1.6"
    assert cases["unknown_subprotocols_only"].expect == {"101+1002", "503"}
    assert b"sec-websocket-key" not in cases["missing_key"].request.lower()
    assert cases["duplicate_subprotocol_headers"].request.lower().count(b"sec-websocket-protocol") == 2
    assert cases["half_request"].mode == "stall" and not cases["half_request"].request.endswith(b"\r\n\r\n")
    for case in cases.values():
        if case.mode == "once" and case.request.startswith(b"GET "):
            assert b"\r\n\r\n" in case.request, case.name
            assert case.request.endswith(b"\r\n\r\n") or case.name == "request_body", case.name


def test_upgrade_request_drops_and_adds_headers() -> None:
    request = abuse.upgrade_request(
        "h", 1, "/ocpp/X", key="k", subprotocols=["ocpp1.6", "ocpp2.1"], drop=["upgrade"], extra=[("X-A", "b")]
    )
    text = request.decode()
    assert text.startswith("GET /ocpp/X HTTP/1.1\r\n") and "Upgrade:" not in text
    assert "Sec-WebSocket-Protocol: ocpp1.6, ocpp2.1\r\n" in text and "X-A: b\r\n" in text


# The per-connection oracle: matching what arrives to what is due.


def lane() -> _Lane:
    run = _FuzzRun("127.0.0.1", 1, "/ocpp", None, MAX, 1.0, "T_")
    return _Lane(run, 0, V201, False)


def due(lane: _Lane, text: str, number: int) -> _Outstanding:
    probe = Probe(f"probe-{number}", V201, text.encode(), "text", expect(V201, text))
    lane.seq += 1
    item = _Outstanding(probe, probe.expect, number, lane.seq)
    if probe.expect.outcome == "answer" and probe.expect.forwarded:
        lane.in_flight = item
    elif probe.expect.outcome == "answer":
        lane.ordered.append(item)
    else:
        lane.unproven.append(item)
    return item


def barrier(lane: _Lane, barrier_id: str) -> None:
    lane.seq += 1
    lane.ordered.append(_Outstanding(None, answer(barrier_id, "barrier", "FormatViolation"), 0, lane.seq))


def test_lane_counts_in_order_answers_and_proves_silence_with_the_barrier() -> None:
    subject = lane()
    due(subject, "[2,", 1)
    due(subject, '[3,"nobody",{}]', 2)
    due(subject, '[2,"c","Heartbeat",{}]', 3)
    barrier(subject, "~b")
    subject.on_message('[4,"-1","RpcFrameworkError","not JSON",{}]')
    subject.on_message('[3,"c",{}]')
    subject.on_message('[4,"~b","FormatViolation","payload",{}]')
    report = subject.report
    assert (report.answered, report.silent, report.violations.count) == (2, 1, 0)
    assert report.gateway_errors == {"RpcFrameworkError": 1} and report.csms_answers == {"CALLRESULT": 1}
    assert not subject.ordered and subject.in_flight is None and not subject.unproven


def test_lane_blames_an_answer_to_an_ignored_frame_on_that_frame() -> None:
    subject = lane()
    due(subject, '[3,"nobody",{}]', 1)
    ignored = due(subject, '[4,"x","GenericError","",{}]', 2)
    barrier(subject, "~b")
    subject.on_message('[4,"-1","RpcFrameworkError","oops",{}]')
    subject.on_message('[4,"~b","FormatViolation","payload",{}]')
    assert subject.report.violations.count == 1
    assert "probe #1 " in subject.report.violations.first[0]
    assert subject.report.silent == 1 and ignored not in subject.unproven


def test_lane_takes_a_wrong_id_for_the_answer_due_without_a_cascade() -> None:
    subject = lane()
    due(subject, '[7,"u1"]', 1)  # 2.0.1: MessageTypeNotSupported with id u1
    due(subject, "[2,", 2)  # RpcFrameworkError with id -1
    subject.on_message('[4,"-1","RpcFrameworkError","message type is not an integer",{}]')
    subject.on_message('[4,"-1","RpcFrameworkError","not JSON",{}]')
    assert subject.report.violations.count == 1 and "probe #1 " in subject.report.violations.first[0]
    assert subject.report.answered == 1 and not subject.ordered


def test_lane_reports_a_skipped_answer_and_a_second_answer() -> None:
    subject = lane()
    due(subject, '[2,"a1","Heartbeat",[]]', 1)
    due(subject, '[2,"a2","Heartbeat",[]]', 2)
    subject.on_message('[4,"a2","FormatViolation","payload",{}]')
    assert subject.report.violations.count == 1 and "no answer" in subject.report.violations.first[0]
    subject.on_message('[4,"a2","FormatViolation","payload",{}]')
    assert subject.report.violations.count == 2 and "unexpected frame" in subject.report.violations.first[1]
    assert subject.report.answered == 1


def test_lane_blames_a_stray_answer_on_an_ignored_frame_sent_after_the_last_answer() -> None:
    subject = lane()
    due(subject, '[3,"nobody",{}]', 1)  # ignored, before the answered frame: cannot be the culprit
    due(subject, "[2,", 2)
    due(subject, '[4,"x","GenericError","",{}]', 3)  # ignored, after it
    barrier(subject, "~b")
    subject.on_message('[4,"-1","RpcFrameworkError","not JSON",{}]')
    subject.on_message('[4,"-1","RpcFrameworkError","oops",{}]')
    subject.on_message('[4,"~b","FormatViolation","payload",{}]')
    assert subject.report.violations.count == 1 and "probe #3 " in subject.report.violations.first[0]
    assert (subject.report.answered, subject.report.silent) == (1, 1)
