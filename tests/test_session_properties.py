"""Invariants of the call state machine under random event sequences (hypothesis).

The events: station and CSMS CALLs and answers (valid or not for strict mode), 2.1 SENDs both ways,
frames that are neither (stray answers, binary frames), the clock, a station CALL Kafka did not take,
and the end of the connection; the session may limit the station's message rate and check payloads.

- at most one CSMS CALL is in flight to the station at any time;
- every CSMS CALL gets exactly one answer on messages_in (the station's or the gateway's);
- every station CALL gets exactly one answer, unless the connection closed while it was in flight
  or was closed because of that very CALL (over the rate);
- nothing is sent to a closed connection;
- the station's answer to the CSMS call in flight is never refused for the rate;
- without a rate, nothing is rate-limited and the gateway never closes the connection; with one,
  it closes only with 1008;
- a SEND is never answered (2.1), and never takes the place of a CALL;
- strict mode in enforce never lets an invalid CALL through (to the CSMS or to the station).
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

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
from ocpp_gw.core.validation import PayloadValidator, StrictMode, StrictPolicy

VERSIONS = (OcppVersion.V16, OcppVersion.V201, OcppVersion.V21)
SCHEMA_OF: dict[str, dict[str, Any]] = {
    "HeartbeatRequest": {"type": "object", "additionalProperties": False},
    "HeartbeatResponse": {"type": "object", "required": ["currentTime"]},
    "ResetRequest": {"type": "object", "required": ["type"]},
    "ResetResponse": {"type": "object", "required": ["status"]},
}
SCHEMAS = {(version, name): schema for version in VERSIONS for name, schema in SCHEMA_OF.items()}

calls_and_answers = st.one_of(
    st.tuples(st.just("station_call"), st.booleans()),
    st.tuples(st.just("csms_call"), st.booleans()),
    st.tuples(st.just("station_answer"), st.integers(0, 3), st.booleans(), st.booleans()),
    st.tuples(st.just("csms_answer"), st.integers(0, 3), st.booleans(), st.booleans()),
)
everything_else = st.one_of(
    st.tuples(st.just("station_send")),
    st.tuples(st.just("csms_send")),
    st.tuples(st.just("station_junk"), st.booleans(), st.integers(1, 6)),
    st.tuples(st.just("publish_failed"), st.integers(0, 5)),
    st.tuples(st.just("tick"), st.floats(0, 2) | st.floats(0, 40)),
    st.tuples(st.just("close")),
)
# Two events in three are calls and answers, so a sequence gets far before the connection ends.
events = st.lists(st.one_of(calls_and_answers, calls_and_answers, everything_else), min_size=10, max_size=60)
modes = st.sampled_from(StrictMode)
policies = st.none() | st.builds(StrictPolicy, modes, modes, modes, modes)
rates = st.none() | st.tuples(st.sampled_from([0.1, 1.0, 5.0]), st.integers(1, 4), st.booleans())


@cache
def validator(policy: StrictPolicy) -> PayloadValidator:
    return PayloadValidator(SCHEMAS, policy)


class Harness:
    def __init__(
        self,
        queue_size: int,
        version: OcppVersion = OcppVersion.V201,
        rate: tuple[float, int, bool] | None = None,
        policy: StrictPolicy | None = None,
    ) -> None:
        message_rate, burst, at_once = rate or (None, 50, False)
        limits = SessionLimits(30, 20, queue_size, message_rate, burst, at_once)
        self.version, self.rate, self.policy = version, rate, policy
        self.session = StationSession("CP", version, limits, validator(policy) if policy else None)
        self.now = 0.0
        self.closing = False
        self.closed = False
        self.ids = 0
        self.csms_calls: list[str] = []
        self.station_calls: list[str] = []
        self.at_station: list[str] = []
        self.at_csms: list[str] = []
        self.outstanding_at_station: set[str] = set()
        self.csms_answers: Counter[str] = Counter()
        self.station_answers: Counter[str] = Counter()
        self.may_go_unanswered: set[str] = set()
        self.sends: set[str] = set()
        self.invalid_calls: set[str] = set()
        self.strikes: list[float] = []

    def new_id(self, prefix: str) -> str:
        self.ids += 1
        return f"{prefix}{self.ids}"

    def run(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        s = self.session
        if kind == "station_call":
            message_id = self.new_id("s")
            if not (self.closed or self.closing):
                self.station_calls.append(message_id)
            self.note_invalid(message_id, event[1], "station_calls")
            actions = self.station([2, message_id, "Heartbeat", {} if event[1] else {"unexpected": True}])
            if any(isinstance(a, CloseStation) for a in actions):
                self.may_go_unanswered.add(message_id)
            self.apply(actions)
        elif kind == "csms_call":
            message_id = self.new_id("c")
            self.csms_calls.append(message_id)
            self.note_invalid(message_id, event[1], "csms_calls")
            self.apply(self.csms([2, message_id, "Reset", {"type": "Immediate"} if event[1] else {}]))
        elif kind == "station_answer" and self.at_station:
            message_id = self.at_station[-1 - event[1] % len(self.at_station)]  # 0: the latest
            awaited = s.csms_call is not None and s.csms_call.message_id == message_id
            awaited = awaited and not (self.closed or self.closing)
            self.outstanding_at_station.discard(message_id)
            payload = {"status": "Accepted"} if event[3] else {}
            self.apply(self.station([3, message_id, payload] if event[2] else [4, message_id, "GenericError", "", {}]))
            if awaited:
                assert self.csms_answers[message_id] == 1, "the answer to the CSMS call in flight was not passed on"
        elif kind == "csms_answer" and self.at_csms:
            message_id = self.at_csms[-1 - event[1] % len(self.at_csms)]
            payload = {"currentTime": "t"} if event[3] else {}
            self.apply(self.csms([3, message_id, payload] if event[2] else [4, message_id, "GenericError", "", {}]))
        elif kind in ("station_send", "csms_send"):
            message_id = self.new_id("x")
            self.sends.add(message_id)
            send = self.station if kind == "station_send" else self.csms
            self.apply(send([6, message_id, "NotifyPeriodicEventStream", {}]))
        elif kind == "station_junk":  # frames that answer nothing, several at once
            for _ in range(event[2]):
                self.apply(self.station(None if event[1] else [3, "stray", {}]))
        elif kind == "publish_failed" and self.at_csms:
            self.apply(s.publish_failed(self.at_csms[-1 - event[1] % len(self.at_csms)], self.now))
        elif kind == "tick":
            if self.closing:
                self.close()  # the close the session asked for is done by now
            self.now += float(event[1])
            self.apply(s.expire(self.now))
        elif kind == "close":
            self.close()

    def station(self, message: list[Any] | None) -> list[Action]:
        """A frame from the station (None: a binary one); none is read once the session asked for a close."""
        s = self.session
        actions = s.station_binary(self.now) if message is None else s.station_text(json.dumps(message), self.now)
        if self.closing:
            assert actions == [], "a station frame was read after the close was decided"
        return actions

    def csms(self, message: list[Any]) -> list[Action]:
        return self.session.csms_frame(parse_frame(json.dumps(message), self.version), self.now)

    def note_invalid(self, message_id: str, valid: bool, kind: str) -> None:
        if not valid and self.policy is not None and getattr(self.policy, kind) is StrictMode.ENFORCE:
            self.invalid_calls.add(message_id)

    def close(self) -> None:
        if self.closed:
            return
        s = self.session
        self.may_go_unanswered |= {c.message_id for c in (s.station_call,) if c is not None}
        self.closed = True
        self.apply(s.close(self.now))

    def apply(self, actions: list[Action]) -> None:
        closes = [action for action in actions if isinstance(action, CloseStation)]
        for action in actions:
            if isinstance(action, SendToStation):
                assert not self.closed, "sent to a closed connection"
                frame = json.loads(action.text)
                if frame[0] == 2:
                    assert frame[1] not in self.invalid_calls, "an invalid CSMS CALL reached the station"
                    assert not self.outstanding_at_station, "two CSMS CALLs in flight to the station"
                    self.outstanding_at_station.add(frame[1])
                    self.at_station.append(frame[1])
                elif frame[0] in (3, 4):
                    if self.version is OcppVersion.V21:
                        assert frame[1] not in self.sends, "a station SEND was answered"
                    self.station_answers[frame[1]] += 1
            elif isinstance(action, PublishToCsms):
                frame = json.loads(action.text)
                if frame[0] == 2:
                    assert frame[1] not in self.invalid_calls, "an invalid station CALL reached the CSMS"
                    self.at_csms.append(frame[1])
                elif self.version is OcppVersion.V21 and frame[1] in self.sends:
                    assert frame[0] == 6 and action.origin == "station", "a CSMS SEND was answered"
                elif frame[1] in self.csms_calls and not action.late:
                    self.csms_answers[frame[1]] += 1
                    if action.origin == "gateway":
                        self.outstanding_at_station.discard(frame[1])
            elif isinstance(action, Notice) and action.event == "station_rate_limited" and not closes:
                self.strike()
            elif isinstance(action, CloseStation):
                self.rate_close(action)

    def strike(self) -> None:
        """A frame refused for the rate: at most a burst's worth (refilled at the rate) before a close."""
        assert self.rate is not None, "rate-limited without a rate"
        rate, burst, at_once = self.rate
        assert not at_once, "refused a frame instead of closing at once"
        self.strikes.append(self.now)
        for first, since in enumerate(self.strikes):
            allowed = burst + (self.now - since) * rate
            assert len(self.strikes) - first <= allowed + 1e-9, ("over the rate for too long", self.strikes)

    def rate_close(self, action: CloseStation) -> None:
        """The gateway closes a station only for its rate, only with 1008, only when the station kept on."""
        assert self.rate is not None and action.code == 1008, action
        _, burst, at_once = self.rate
        assert at_once or len(self.strikes) >= burst, ("closed before a burst's worth over the rate", self.strikes)
        self.closing = True


def check(harness: Harness, sequence: list[tuple[Any, ...]]) -> None:
    for event in sequence:
        harness.run(event)
    harness.run(("tick", 1000.0))
    harness.run(("close",))
    for message_id in harness.csms_calls:
        assert harness.csms_answers[message_id] == 1, (message_id, harness.csms_answers)
    for message_id in harness.station_calls:
        expected = {0, 1} if message_id in harness.may_go_unanswered else {1}
        assert harness.station_answers[message_id] in expected, (message_id, harness.station_answers)


@settings(max_examples=400, deadline=None)
@given(events, st.integers(0, 3))
def test_every_call_is_answered_exactly_once(sequence: list[tuple[Any, ...]], queue_size: int) -> None:
    check(Harness(queue_size), sequence)


@settings(max_examples=600, deadline=None)
@given(events, st.integers(0, 3), st.sampled_from(VERSIONS), rates, policies)
def test_every_call_is_answered_exactly_once_under_rate_limits_and_strict_mode(
    sequence: list[tuple[Any, ...]],
    queue_size: int,
    version: OcppVersion,
    rate: tuple[float, int, bool] | None,
    policy: StrictPolicy | None,
) -> None:
    check(Harness(queue_size, version, rate, policy), sequence)
