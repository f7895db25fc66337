"""Invariants of the call state machine under random event sequences (hypothesis).

- at most one CSMS CALL is in flight to the station at any time;
- every CSMS CALL gets exactly one answer on messages_in (the station's or the gateway's);
- every station CALL gets exactly one answer, unless the connection closed while it was in flight;
- nothing is sent to a closed connection.
"""

from __future__ import annotations

import json
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_gw.core.frames import parse_frame
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.core.session import Action, PublishToCsms, SendToStation, SessionLimits, StationSession

VERSION = OcppVersion.V201

events = st.lists(
    st.one_of(
        st.tuples(st.just("station_call")),
        st.tuples(st.just("csms_call")),
        st.tuples(st.just("station_answer"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("csms_answer"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("tick"), st.floats(0, 40)),
        st.tuples(st.just("close")),
    ),
    max_size=60,
)


class Harness:
    def __init__(self, queue_size: int) -> None:
        self.session = StationSession("CP", VERSION, SessionLimits(30, 20, queue_size))
        self.now = 0.0
        self.closed = False
        self.ids = 0
        self.csms_calls: list[str] = []
        self.station_calls: list[str] = []
        self.at_station: list[str] = []
        self.at_csms: list[str] = []
        self.outstanding_at_station: set[str] = set()
        self.csms_answers: Counter[str] = Counter()
        self.station_answers: Counter[str] = Counter()
        self.in_flight_at_close: set[str] = set()

    def new_id(self, prefix: str) -> str:
        self.ids += 1
        return f"{prefix}{self.ids}"

    def run(self, event: tuple[object, ...]) -> None:
        kind = event[0]
        s = self.session
        if kind == "station_call":
            message_id = self.new_id("s")
            if not self.closed:
                self.station_calls.append(message_id)
            self.apply(s.station_text(json.dumps([2, message_id, "Heartbeat", {}]), self.now))
        elif kind == "csms_call":
            message_id = self.new_id("c")
            self.csms_calls.append(message_id)
            self.apply(s.csms_frame(parse_frame(json.dumps([2, message_id, "Reset", {}]), VERSION), self.now))
        elif kind == "station_answer" and self.at_station:
            message_id = self.at_station[int(event[1]) % len(self.at_station)]  # type: ignore[call-overload]
            answer = [3, message_id, {}] if event[2] else [4, message_id, "GenericError", "", {}]
            self.outstanding_at_station.discard(message_id)
            self.apply(s.station_text(json.dumps(answer), self.now))
        elif kind == "csms_answer" and self.at_csms:
            message_id = self.at_csms[int(event[1]) % len(self.at_csms)]  # type: ignore[call-overload]
            answer = [3, message_id, {}] if event[2] else [4, message_id, "GenericError", "", {}]
            self.apply(s.csms_frame(parse_frame(json.dumps(answer), VERSION), self.now))
        elif kind == "tick":
            self.now += float(event[1])  # type: ignore[arg-type]
            self.apply(s.expire(self.now))
        elif kind == "close" and not self.closed:
            self.in_flight_at_close = {c.message_id for c in (s.station_call,) if c is not None}
            self.closed = True
            self.apply(s.close(self.now))

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendToStation):
                assert not self.closed, "sent to a closed connection"
                frame = json.loads(action.text)
                if frame[0] == 2:
                    assert not self.outstanding_at_station, "two CSMS CALLs in flight to the station"
                    self.outstanding_at_station.add(frame[1])
                    self.at_station.append(frame[1])
                else:
                    self.station_answers[frame[1]] += 1
            elif isinstance(action, PublishToCsms):
                frame = json.loads(action.text)
                if frame[0] == 2:
                    self.at_csms.append(frame[1])
                elif frame[1] in self.csms_calls and not action.late:
                    self.csms_answers[frame[1]] += 1
                    if action.origin == "gateway":
                        self.outstanding_at_station.discard(frame[1])


@settings(max_examples=400, deadline=None)
@given(events, st.integers(0, 3))
def test_every_call_is_answered_exactly_once(sequence: list[tuple[object, ...]], queue_size: int) -> None:
    harness = Harness(queue_size)
    for event in sequence:
        harness.run(event)
    harness.run(("tick", 1000.0))
    harness.run(("close",))
    for message_id in harness.csms_calls:
        assert harness.csms_answers[message_id] == 1, (message_id, harness.csms_answers)
    for message_id in harness.station_calls:
        expected = {0, 1} if message_id in harness.in_flight_at_close else {1}
        assert harness.station_answers[message_id] in expected, (message_id, harness.station_answers)
