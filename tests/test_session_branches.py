"""Branches of the call state machine the other session tests do not reach: 2.1 CALLRESULTERRORs both
ways, CSMS SENDs, malformed CSMS CALLs, a queued call that expired before its turn, the window of
remembered timeouts, strict mode on CSMS traffic, and events after the end of the connection."""

from __future__ import annotations

import json
from typing import Any

from ocpp_gw.core.calls import RECENT_TIMEOUTS_KEPT
from ocpp_gw.core.frames import Frame, Rejection, parse_frame, parse_message
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.core.session import (
    Action,
    Notice,
    PublishToCsms,
    SendToStation,
    SessionLimits,
    State,
    StationSession,
)
from ocpp_gw.core.validation import PayloadValidator, StrictMode, StrictPolicy

V201, V21 = OcppVersion.V201, OcppVersion.V21
LIMITS = SessionLimits(csms_response_timeout=30, station_response_timeout=20, csms_queue_size=4)
SCHEMAS: dict[tuple[OcppVersion, str], dict[str, Any]] = {
    (V21, "ResetRequest"): {"type": "object", "required": ["type"]},
    (V21, "HeartbeatResponse"): {"type": "object", "required": ["currentTime"]},
}


def session(
    version: OcppVersion = V21, limits: SessionLimits = LIMITS, policy: StrictPolicy | None = None
) -> StationSession:
    validator = PayloadValidator(SCHEMAS, policy) if policy else None
    return StationSession("CP_1", version, limits, validator)


def csms(message: list[object], version: OcppVersion = V21) -> Frame | Rejection:
    return parse_frame(json.dumps(message), version)


def station(s: StationSession, message: list[object], now: float) -> list[Action]:
    return s.station_text(json.dumps(message), now)


def sent(actions: list[Action]) -> list[Any]:
    return [json.loads(a.text) for a in actions if isinstance(a, SendToStation)]


def published(actions: list[Action]) -> list[PublishToCsms]:
    return [a for a in actions if isinstance(a, PublishToCsms)]


def events(actions: list[Action]) -> list[str]:
    return [a.event for a in actions if isinstance(a, Notice)]


def state(s: StationSession) -> State:
    return s.state


def test_a_station_callresulterror_goes_to_the_csms_and_is_not_the_answer_to_its_call() -> None:
    s = session(limits=SessionLimits(message_rate=1, message_burst=1))
    assert sent(s.csms_frame(csms([2, "c1", "Reset", {"type": "Immediate"}]), now=0)) == [
        [2, "c1", "Reset", {"type": "Immediate"}]
    ]
    actions = station(s, [5, "c1", "FormatViolation", "your result was bad", {}], now=0)
    [record] = published(actions)
    assert (record.message_type, record.origin, record.request, record.late) == (5, "station", None, False)
    assert json.loads(record.text) == [5, "c1", "FormatViolation", "your result was bad", {}]
    assert sent(actions) == [] and state(s) is State.CSMS_CALL
    # It spent the station's one frame; the genuine answer is free and still answers the call.
    [answer] = published(station(s, [3, "c1", {"status": "Accepted"}], now=0))
    assert answer.request is not None and answer.request.message_id == "c1" and state(s) is State.WAITING
    over = station(s, [5, "c1", "FormatViolation", "", {}], now=0)
    assert published(over) == [] and sent(over) == [] and events(over) == ["station_rate_limited"]


def test_a_csms_callresulterror_goes_to_the_station_and_is_not_the_answer_to_its_call() -> None:
    s = session()
    station(s, [2, "a", "Heartbeat", {}], now=0)
    actions = s.csms_frame(csms([5, "a", "FormatViolation", "", {}]), now=1)
    assert [(a.message_type, a.generated) for a in actions if isinstance(a, SendToStation)] == [(5, False)]
    assert sent(actions) == [[5, "a", "FormatViolation", "", {}]] and published(actions) == []
    assert state(s) is State.STATION_CALL
    assert sent(s.csms_frame(csms([3, "a", {"currentTime": "t"}]), now=2)) == [[3, "a", {"currentTime": "t"}]]
    assert state(s) is State.WAITING


def test_a_csms_send_goes_to_the_station_at_once_past_the_queue_and_is_dropped_when_it_is_gone() -> None:
    s = session()
    s.csms_frame(csms([2, "c1", "Reset", {"type": "Immediate"}]), now=0)
    assert s.csms_frame(csms([2, "c2", "Reset", {"type": "OnIdle"}]), now=0) == [] and s.queued == 1
    actions = s.csms_frame(csms([6, "s1", "NotifyPeriodicEventStream", {}]), now=1)
    assert sent(actions) == [[6, "s1", "NotifyPeriodicEventStream", {}]] and published(actions) == []
    assert [a.message_type for a in actions if isinstance(a, SendToStation)] == [6]
    assert state(s) is State.CSMS_CALL and s.csms_call is not None and s.csms_call.message_id == "c1"
    assert s.queued == 1
    s.close(now=2)
    gone = s.csms_frame(csms([6, "s2", "NotifyPeriodicEventStream", {}]), now=3)
    assert events(gone) == ["csms_frame_for_closed_station"] and published(gone) == [] and sent(gone) == []


def test_a_malformed_csms_call_is_answered_to_the_csms_and_never_reaches_the_station() -> None:
    s = session(V201)
    rejection = csms([2, "c1", "Reset", []], V201)
    assert isinstance(rejection, Rejection) and rejection.answer
    actions = s.csms_frame(rejection, now=0)
    [error] = published(actions)
    assert (error.message_type, error.message_id, error.origin) == (4, "c1", "gateway")
    assert error.error_code == "FormatViolation"
    assert json.loads(error.text)[:3] == [4, "c1", "FormatViolation"]
    assert sent(actions) == [] and events(actions) == ["csms_frame_rejected"] and state(s) is State.WAITING
    # Without a readable id there is no one to answer: the CSMS gets nothing, the drop is counted.
    unreadable = s.csms_frame(csms([2, 7, "Reset", {}], V201), now=0)
    assert published(unreadable) == [] and sent(unreadable) == [] and events(unreadable) == ["csms_frame_rejected"]


def test_a_queued_call_past_its_deadline_when_the_connection_frees_is_failed_and_the_next_one_sent() -> None:
    s = session(V201)
    station(s, [2, "a", "Heartbeat", {}], now=0)
    s.csms_frame(csms([2, "c1", "Reset", {}], V201), now=1)  # waits until 21 at the latest
    s.csms_frame(csms([2, "c2", "Reset", {}], V201), now=22)  # waits until 42
    # The CSMS answers at 25 before the timer for c1 fired: c1 is failed at dispatch, c2 goes out.
    actions = s.csms_frame(csms([3, "a", {"currentTime": "t"}], V201), now=25)
    assert sent(actions) == [[3, "a", {"currentTime": "t"}], [2, "c2", "Reset", {}]]
    [timeout] = published(actions)
    assert timeout.origin == "gateway" and timeout.request is not None and timeout.request.message_id == "c1"
    assert json.loads(timeout.text)[:3] == [4, "c1", "InternalError"]
    assert s.queued == 0 and s.csms_call is not None and s.csms_call.message_id == "c2"
    assert s.next_deadline == 45


def test_late_csms_call_answers_are_told_from_stray_ones_for_the_most_recent_timeouts_only() -> None:
    s = session(V201)
    ids = [f"c{n}" for n in range(RECENT_TIMEOUTS_KEPT + 1)]
    for n, message_id in enumerate(ids):
        s.csms_frame(csms([2, message_id, "Reset", {}], V201), now=100 * n)
        assert [p.message_id for p in published(s.expire(now=100 * n + 20))] == [message_id]
    now = 100.0 * len(ids)
    forgotten = station(s, [3, ids[0], {}], now)
    assert published(forgotten) == [] and events(forgotten) == ["unexpected_station_answer"]
    [late] = published(station(s, [3, ids[1], {}], now))
    assert late.late and late.request is not None and late.request.message_id == ids[1]
    [last] = published(station(s, [3, ids[-1], {}], now))
    assert last.late
    again = station(s, [3, ids[1], {}], now)
    assert published(again) == [] and events(again) == ["unexpected_station_answer"]


def test_late_station_call_answers_are_told_from_stray_ones_for_the_most_recent_timeouts_only() -> None:
    s = session(V201)
    ids = [f"a{n}" for n in range(RECENT_TIMEOUTS_KEPT + 1)]
    for n, message_id in enumerate(ids):
        station(s, [2, message_id, "Heartbeat", {}], now=100 * n)
        assert [f[:2] for f in sent(s.expire(now=100 * n + 30))] == [[4, message_id]]
    now = 100.0 * len(ids)
    assert events(s.csms_frame(csms([3, ids[0], {}], V201), now)) == ["unexpected_csms_answer"]
    assert events(s.csms_frame(csms([3, ids[1], {}], V201), now)) == ["late_csms_answer"]
    assert events(s.csms_frame(csms([3, ids[-1], {}], V201), now)) == ["late_csms_answer"]


def test_strict_log_mode_on_csms_calls_reports_and_still_delivers() -> None:
    s = session(policy=StrictPolicy(csms_calls=StrictMode.LOG))
    actions = s.csms_frame(csms([2, "c1", "Reset", {}]), now=0)
    assert events(actions) == ["csms_call_invalid"] and sent(actions) == [[2, "c1", "Reset", {}]]
    assert published(actions) == []


def test_strict_off_for_a_kind_checks_nothing_of_that_kind() -> None:
    s = session(policy=StrictPolicy(csms_calls=StrictMode.OFF, csms_results=StrictMode.ENFORCE))
    actions = s.csms_frame(csms([2, "c1", "Reset", {}]), now=0)
    assert events(actions) == [] and sent(actions) == [[2, "c1", "Reset", {}]]


def test_an_invalid_csms_result_in_21_gives_the_station_a_callerror_and_the_csms_a_callresulterror() -> None:
    s = session(policy=StrictPolicy(csms_results=StrictMode.ENFORCE))
    station(s, [2, "a", "Heartbeat", {}], now=0)
    actions = s.csms_frame(csms([3, "a", {}]), now=1)
    assert events(actions) == ["csms_result_invalid"]
    [to_station] = [a for a in actions if isinstance(a, SendToStation)]
    assert to_station.generated and json.loads(to_station.text)[:3] == [4, "a", "OccurrenceConstraintViolation"]
    [to_csms] = published(actions)
    assert (to_csms.message_type, to_csms.origin, to_csms.action) == (5, "gateway", "Heartbeat")
    assert json.loads(to_csms.text)[:3] == [5, "a", "OccurrenceConstraintViolation"]
    assert state(s) is State.WAITING


def test_nothing_happens_after_the_end_of_the_connection() -> None:
    s = session(V201)
    station(s, [2, "a", "Heartbeat", {}], now=0)
    assert s.publish_failed("not-a", now=1) == [] and state(s) is State.STATION_CALL
    s.close(now=2)
    assert s.close(now=3) == [] and s.expire(now=100) == [] and s.publish_failed("a", now=3) == []
    call = csms([2, "b", "Heartbeat", {}], V201)
    assert not isinstance(call, Rejection) and s.station_frame(call, now=3) == []
    assert events(s.csms_frame(csms([3, "a", {}], V201), now=3)) == ["csms_frame_for_closed_station"]


def test_a_message_type_whose_exact_reading_fails_keeps_the_decoded_value() -> None:
    rejection = parse_message([2.0, "a", "Heartbeat", {}], "not the frame's text", V201)
    assert isinstance(rejection, Rejection) and rejection.description == "message type is not an integer"


def test_deep_nesting_after_a_float_message_type_is_rejected_not_raised() -> None:
    depth = 1010
    text = '[2.0,"a","Heartbeat",' + "[" * depth + "]" * depth + "]"
    rejection = parse_frame(text, V201)
    assert isinstance(rejection, Rejection) and rejection.answer
