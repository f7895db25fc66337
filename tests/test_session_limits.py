"""What a station's frames cost against its message rate, and what the CSMS may send through.

Each case here was an attack that worked when the adapter sniffed the frame's first digit and
exempted every ``[3``, ``[4`` and ``[5``: only a genuine answer to the CSMS call in flight is free.
"""

from __future__ import annotations

import json

from ocpp_gw.core.frames import parse_frame
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.core.session import (
    Action,
    CloseStation,
    Notice,
    PublishToCsms,
    SendToStation,
    SessionLimits,
    StationSession,
)

RATE = SessionLimits(message_rate=10.0, message_burst=20)


def session(version: OcppVersion = OcppVersion.V21, limits: SessionLimits = RATE) -> StationSession:
    return StationSession("CP_1", version, limits)


def flood(s: StationSession, frames: list[str], now: float = 100.0) -> list[Action]:
    actions: list[Action] = []
    for text in frames:
        actions += s.station_text(text, now)
    return actions


def published(actions: list[Action]) -> list[PublishToCsms]:
    return [a for a in actions if isinstance(a, PublishToCsms)]


def sent(actions: list[Action]) -> list[SendToStation]:
    return [a for a in actions if isinstance(a, SendToStation)]


def closes(actions: list[Action]) -> list[CloseStation]:
    return [a for a in actions if isinstance(a, CloseStation)]


def logged(actions: list[Action]) -> list[Notice]:
    return [a for a in actions if isinstance(a, Notice) and not a.quiet]


def test_callresulterror_flood_counts_against_the_rate_and_ends_in_a_close() -> None:
    s = session()
    actions = flood(s, [f'[5,"x{n}","GenericError","",{{}}]' for n in range(3000)])
    assert len(published(actions)) == RATE.message_burst
    assert [(c.code, c.reason) for c in closes(actions)] == [(1008, "message rate limit exceeded")]


def test_unsolicited_callresults_are_counted_and_their_log_lines_bounded() -> None:
    s = session(OcppVersion.V201)
    actions = flood(s, [f'[3,"r{n}",{{}}]' for n in range(3000)])
    assert published(actions) == []
    assert len(closes(actions)) == 1
    assert len(logged(actions)) <= 12


def test_unknown_message_types_get_at_most_a_burst_of_callerrors() -> None:
    s = session(OcppVersion.V201)
    actions = flood(s, [f'[30,"u{n}",{{}}]' for n in range(3000)])
    assert len(sent(actions)) <= RATE.message_burst
    assert len(closes(actions)) == 1


def test_binary_frames_count_against_the_rate() -> None:
    s = session(OcppVersion.V201)
    actions: list[Action] = []
    for _ in range(100):
        actions += s.station_binary(100.0)
    assert len(sent(actions)) <= RATE.message_burst
    assert len(closes(actions)) == 1


def test_nothing_is_read_after_the_close_was_decided() -> None:
    s = session()
    flood(s, [f'[2,"c{n}","Heartbeat",{{}}]' for n in range(200)])
    assert s.station_text('[2,"late","Heartbeat",{}]', 200.0) == []


def test_calls_over_the_rate_get_a_callerror_until_the_station_keeps_on() -> None:
    s = session(OcppVersion.V201)
    s.station_text('[2,"a","Heartbeat",{}]', 100.0)
    s.csms_frame(parse_frame('[3,"a",{"currentTime":"t"}]', OcppVersion.V201), 100.0)
    actions = flood(s, [f'[2,"c{n}","Heartbeat",{{}}]' for n in range(30)])
    rate_errors = [json.loads(a.text) for a in sent(actions) if "rate limit" in a.text]
    assert rate_errors and all(e[2] == "GenericError" for e in rate_errors)
    assert closes(actions) == []


def test_rate_recovers_with_time() -> None:
    s = session(OcppVersion.V21)
    flood(s, [f'[6,"s{n}","Notify",{{}}]' for n in range(RATE.message_burst + 5)], now=100.0)
    actions = s.station_text('[6,"later","Notify",{}]', 102.0)
    assert len(published(actions)) == 1


def test_a_genuine_answer_to_the_csms_call_is_free_even_over_the_rate() -> None:
    s = session(OcppVersion.V201)
    flood(s, [f'[6,"s{n}","Notify",{{}}]' for n in range(5)])
    over = flood(s, [f'[3,"r{n}",{{}}]' for n in range(RATE.message_burst + 3)])
    assert not closes(over)
    s.csms_frame(parse_frame('[2,"csms-1","Reset",{"type":"Immediate"}]', OcppVersion.V201), 100.0)
    answer = s.station_text('[3,"csms-1",{"status":"Accepted"}]', 100.0)
    assert [p.message_id for p in published(answer)] == ["csms-1"]


def test_close_at_once_when_configured() -> None:
    limits = SessionLimits(message_rate=10.0, message_burst=2, close_when_limited=True)
    s = session(OcppVersion.V201, limits)
    actions = flood(s, [f'[6,"s{n}","Notify",{{}}]' for n in range(3)])
    assert len(closes(actions)) == 1


def test_suppressed_log_lines_are_counted_in_the_next_one() -> None:
    s = session(OcppVersion.V201, SessionLimits(message_rate=1000.0, message_burst=1000))
    first = flood(s, [f'[3,"r{n}",{{}}]' for n in range(50)], now=100.0)
    later = s.station_text('[3,"again",{}]', 200.0)
    [line] = logged(later)
    assert line.suppressed == 50 - len(logged(first))


LARGE = SessionLimits(max_frame_size=1024)


def test_a_csms_call_larger_than_the_limit_is_answered_to_the_csms() -> None:
    s = session(OcppVersion.V201, LARGE)
    big = json.dumps([2, "big-1", "DataTransfer", {"vendorId": "v", "data": "x" * 2000}])
    actions = s.csms_frame(parse_frame(big, OcppVersion.V201), 1.0)
    assert sent(actions) == []
    [error] = published(actions)
    assert (error.origin, error.message_id, json.loads(error.text)[2]) == ("gateway", "big-1", "GenericError")
    assert "1024" in json.loads(error.text)[3]


def test_a_large_send_is_dropped_and_a_large_answer_becomes_a_callerror_for_the_station() -> None:
    s = session(OcppVersion.V21, LARGE)
    send = json.dumps([6, "s-1", "NotifyPeriodicEventStream", {"data": "x" * 2000}])
    assert sent(s.csms_frame(parse_frame(send, OcppVersion.V21), 1.0)) == []
    s.station_text('[2,"a","Heartbeat",{}]', 1.0)
    answer = json.dumps([3, "a", {"currentTime": "x" * 2000}])
    [error] = sent(s.csms_frame(parse_frame(answer, OcppVersion.V21), 1.0))
    assert json.loads(error.text)[:3] == [4, "a", "InternalError"]
    assert s.station_call is None


def test_multibyte_text_is_measured_in_bytes() -> None:
    s = session(OcppVersion.V201, LARGE)
    text = json.dumps([2, "big-2", "DataTransfer", {"vendorId": "v", "data": "é" * 600}], ensure_ascii=False)
    assert len(text) < 1024 < len(text.encode())
    actions = s.csms_frame(parse_frame(text, OcppVersion.V201), 1.0)
    assert sent(actions) == [] and len(published(actions)) == 1
