"""The per-station call state machine, read like the spec: one CALL in flight per direction."""

from __future__ import annotations

import json

from ocpp_gw.core.frames import Call, CallResult, Frame, parse_frame
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

LIMITS = SessionLimits(csms_response_timeout=30, station_response_timeout=20, csms_queue_size=2)


def session(version: OcppVersion = OcppVersion.V201) -> StationSession:
    return StationSession("CP_1", version, LIMITS)


def frame(message: list[object], version: OcppVersion = OcppVersion.V201) -> Frame:
    parsed = parse_frame(json.dumps(message), version)
    assert isinstance(parsed, Call | CallResult) or not hasattr(parsed, "fault"), parsed
    return parsed


def sent(actions: list[Action]) -> list[list[object]]:
    return [json.loads(a.text) for a in actions if isinstance(a, SendToStation)]


def published(actions: list[Action]) -> list[PublishToCsms]:
    return [a for a in actions if isinstance(a, PublishToCsms)]


def events(actions: list[Action]) -> list[str]:
    return [a.event for a in actions if isinstance(a, Notice)]


def state(s: StationSession) -> State:
    """The session's state, read afresh (mypy would keep an asserted ``s.state`` narrowed across events)."""
    return s.state


def test_station_call_is_forwarded_and_the_csms_answer_returns() -> None:
    s = session()
    actions = s.station_text('[2,"a","Heartbeat",{}]', now=0)
    [record] = published(actions)
    assert (record.message_id, record.action, record.origin, record.text) == (
        "a",
        "Heartbeat",
        "station",
        '[2,"a","Heartbeat",{}]',
    )
    assert state(s) is State.STATION_CALL and s.next_deadline == 30
    assert sent(s.csms_frame(frame([3, "a", {"currentTime": "t"}]), now=1)) == [[3, "a", {"currentTime": "t"}]]
    assert state(s) is State.WAITING and s.next_deadline is None


def test_csms_call_goes_to_a_waiting_station_and_the_answer_carries_the_request() -> None:
    s = session()
    assert sent(s.csms_frame(frame([2, "c1", "Reset", {"type": "Soft"}]), now=0)) == [
        [2, "c1", "Reset", {"type": "Soft"}]
    ]
    assert state(s) is State.CSMS_CALL and s.next_deadline == 20
    [record] = published(s.station_text('[3,"c1",{"status":"Accepted"}]', now=1))
    assert record.request is not None and record.request.action == "Reset" and record.action == "Reset"
    assert json.loads(record.request.text) == [2, "c1", "Reset", {"type": "Soft"}]
    assert state(s) is State.WAITING


def test_csms_calls_wait_in_order_while_a_station_call_is_in_flight() -> None:
    s = session()
    s.station_text('[2,"a","Heartbeat",{}]', now=0)
    assert s.csms_frame(frame([2, "c1", "Reset", {}]), now=1) == []
    assert s.csms_frame(frame([2, "c2", "GetVariables", {}]), now=2) == []
    actions = s.csms_frame(frame([3, "a", {}]), now=3)
    assert sent(actions) == [[3, "a", {}], [2, "c1", "Reset", {}]]
    assert sent(s.station_text('[3,"c1",{}]', now=4)) == [[2, "c2", "GetVariables", {}]]


def test_a_full_queue_refuses_the_csms_call_with_a_callerror_on_messages_in() -> None:
    s = session(OcppVersion.V16)
    s.station_text('[2,"a","Heartbeat",{}]', now=0)
    s.csms_frame(frame([2, "c1", "Reset", {}], OcppVersion.V16), now=0)
    s.csms_frame(frame([2, "c2", "Reset", {}], OcppVersion.V16), now=0)
    [refusal] = published(s.csms_frame(frame([2, "c3", "Reset", {}], OcppVersion.V16), now=0))
    assert refusal.origin == "gateway" and refusal.request is not None
    assert json.loads(refusal.text)[:3] == [4, "c3", "InternalError"]


def test_station_call_timeout_answers_the_station_once_and_drops_the_late_answer() -> None:
    s = session(OcppVersion.V16)
    s.station_text('[2,"a","Heartbeat",{}]', now=0)
    assert s.expire(now=29.9) == []
    actions = s.expire(now=30)
    assert [f[:3] for f in sent(actions)] == [[4, "a", "InternalError"]]
    assert events(actions) == ["station_call_timeout"]
    late = s.csms_frame(frame([3, "a", {}], OcppVersion.V16), now=31)
    assert sent(late) == [] and events(late) == ["late_csms_answer"]


def test_csms_call_timeout_answers_the_csms_and_marks_a_late_station_answer() -> None:
    s = session()
    s.csms_frame(frame([2, "c1", "Reset", {}]), now=0)
    [timeout] = published(s.expire(now=20))
    assert timeout.origin == "gateway" and json.loads(timeout.text)[:3] == [4, "c1", "InternalError"]
    [late] = published(s.station_text('[3,"c1",{}]', now=21))
    assert late.late and late.request is not None and late.origin == "station"
    assert events(s.station_text('[3,"c1",{}]', now=22)) == ["unexpected_station_answer"]


def test_queued_calls_expire_in_the_queue() -> None:
    s = session()
    s.station_text('[2,"a","Heartbeat",{}]', now=0)
    s.csms_frame(frame([2, "c1", "Reset", {}]), now=1)
    actions = s.expire(now=21)
    assert [json.loads(p.text)[:2] for p in published(actions)] == [[4, "c1"]]
    assert s.csms_queue == deque_empty()


def deque_empty() -> object:
    from collections import deque

    return deque()


def test_crossing_calls_do_not_deadlock() -> None:
    s = session()
    s.csms_frame(frame([2, "c1", "Reset", {}]), now=0)
    [forwarded] = published(s.station_text('[2,"a","StatusNotification",{}]', now=1))
    assert forwarded.message_id == "a" and state(s) is State.CROSSING
    assert sent(s.csms_frame(frame([3, "a", {}]), now=2)) == [[3, "a", {}]]
    assert published(s.station_text('[3,"c1",{}]', now=3))[0].request is not None
    assert state(s) is State.WAITING


def test_a_second_station_call_while_one_is_in_flight_is_refused_and_a_retry_ignored() -> None:
    s = session()
    s.station_text('[2,"a","Heartbeat",{}]', now=0)
    assert events(s.station_text('[2,"a","Heartbeat",{}]', now=1)) == ["duplicate_station_call"]
    refused = s.station_text('[2,"b","Heartbeat",{}]', now=1)
    assert [f[:3] for f in sent(refused)] == [[4, "b", "GenericError"]] and published(refused) == []


def test_duplicate_csms_calls_and_stray_answers_are_dropped_and_counted() -> None:
    s = session()
    s.csms_frame(frame([2, "c1", "Reset", {}]), now=0)
    assert events(s.csms_frame(frame([2, "c1", "Reset", {}]), now=0)) == ["duplicate_csms_call"]
    assert events(s.csms_frame(frame([3, "zzz", {}]), now=0)) == ["unexpected_csms_answer"]


def test_disconnect_answers_every_waiting_csms_call_and_sends_nothing_after() -> None:
    s = session()
    s.station_text('[2,"a","Heartbeat",{}]', now=0)
    s.csms_frame(frame([2, "c1", "Reset", {}]), now=0)
    s.csms_frame(frame([2, "c2", "Reset", {}]), now=0)
    actions = s.close(now=1)
    assert [p.message_id for p in published(actions)] == ["c1", "c2"]
    assert sent(actions) == [] and state(s) is State.CLOSED
    assert s.station_text('[2,"b","Heartbeat",{}]', now=2) == []
    [offline] = published(s.csms_frame(frame([2, "c3", "Reset", {}]), now=2))
    assert json.loads(offline.text)[:2] == [4, "c3"]


def test_send_and_callresulterror_pass_through_in_21_without_state() -> None:
    s = session(OcppVersion.V21)
    [record] = published(s.station_text('[6,"s1","NotifyPeriodicEventStream",{}]', now=0))
    assert record.message_type == 6 and state(s) is State.WAITING
    assert sent(s.csms_frame(frame([5, "x", "FormatViolation", "", {}], OcppVersion.V21), now=0)) == [
        [5, "x", "FormatViolation", "", {}]
    ]


def test_publish_failure_answers_the_station_call_at_once() -> None:
    s = session()
    s.station_text('[2,"a","Heartbeat",{}]', now=0)
    assert [f[:3] for f in sent(s.publish_failed("a", now=1))] == [[4, "a", "InternalError"]]
    assert state(s) is State.WAITING


def test_bad_frames_are_answered_and_never_published() -> None:
    s = session(OcppVersion.V16)
    actions = s.station_text("nope", now=0)
    assert published(actions) == [] and [f[:3] for f in sent(actions)] == [[4, "-1", "FormationViolation"]]
    assert [f[:3] for f in sent(s.station_binary(0))] == [[4, "-1", "FormationViolation"]]


def test_a_malformed_csms_answer_fails_the_station_call_at_once() -> None:
    s = session()
    s.station_text('[2,"a","Heartbeat",{}]', now=0)
    rejection = parse_frame('[3,"a",[]]', OcppVersion.V201)
    actions = s.csms_frame(rejection, now=1)
    assert [f[:3] for f in sent(actions)] == [[4, "a", "InternalError"]] and state(s) is State.WAITING
