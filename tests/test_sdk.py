"""The CSMS SDK without Kafka: dispatch to handlers, the answers it gives, calls and events as they arrive,
and the README's example, which must be the file it names."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from ocpp.v201 import call_result, datatypes, enums

from examples import csms_worker
from ocpp_gw.config import KafkaConfig
from ocpp_gw.core.envelope import InRecord, Origin, decode_in_record, frame_record, lifecycle_record
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.sdk import CallErrorReceived, CallTimeout, Csms, CsmsClient, Response, StationCall, to_payload

ROOT = Path(__file__).resolve().parents[1]


def record(
    version: str,
    frame: list[Any],
    origin: str = "station",
    station_id: str = "CP_1",
    request: list[Any] | None = None,
) -> InRecord:
    source = Origin(station_id, OcppVersion(version), "gw-1")
    value = frame_record(
        source,
        "2026-01-01T00:00:00.000Z",
        reply_partition=1,
        frame_text=json.dumps(frame),
        message_type=frame[0],
        message_id=frame[1],
        action=frame[2] if frame[0] == 2 else request[2] if request else None,
        source=origin,
        request_text=json.dumps(request) if request else None,
    )
    return decode_in_record(station_id.encode(), value, source.headers("frame", 1))


def answer(csms: Csms, version: str, action: str, payload: dict[str, Any] | None = None) -> list[Any] | None:
    return asyncio.run(csms.answer(record(version, [2, "m1", action, payload or {}])))


def test_the_readme_example_is_the_example_file() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Write your own CSMS\n", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block is not None
    assert block.group(1) == (ROOT / "examples" / "csms_worker.py").read_text()
    assert len(block.group(1).splitlines()) < 30


@pytest.mark.parametrize("version", ["ocpp1.6", "ocpp2.0.1"])
def test_the_example_boots_and_answers_heartbeats(version: str) -> None:
    boot = answer(csms_worker.csms, version, "BootNotification")
    assert boot is not None and boot[:2] == [3, "m1"] and boot[2]["status"] == "Accepted"
    assert boot[2]["currentTime"].endswith("Z") and boot[2]["interval"] == 60
    heartbeat = answer(csms_worker.csms, version, "Heartbeat")
    assert heartbeat is not None and heartbeat[0] == 3 and set(heartbeat[2]) == {"currentTime"}


def test_the_example_serves_only_the_versions_it_names() -> None:
    assert answer(csms_worker.csms, "ocpp2.1", "BootNotification") == [
        4,
        "m1",
        "NotImplemented",
        "BootNotification is not implemented by this CSMS",
        {},
    ]
    reply = answer(csms_worker.csms, "ocpp2.1", "Heartbeat")
    assert reply is not None and reply[0] == 3


def test_a_versions_own_handler_wins_and_coroutines_and_ocpp_dataclasses_answer() -> None:
    csms = Csms()

    @csms.on("Heartbeat")
    def any_version(call: StationCall) -> Response:
        return {"currentTime": "any"}

    @csms.on("Heartbeat", OcppVersion.V16)
    async def only_16(call: StationCall) -> Response:
        await asyncio.sleep(0)
        return {"currentTime": f"16 {call.station_id} {call.message_id} {call.record.gateway_id}"}

    @csms.on("BootNotification", "ocpp2.0.1")
    def boot(call: StationCall) -> Any:  # the ocpp package is untyped
        return call_result.BootNotification(
            current_time="t", interval=5, status=enums.RegistrationStatusEnumType.accepted
        )

    assert answer(csms, "ocpp1.6", "Heartbeat") == [3, "m1", {"currentTime": "16 CP_1 m1 gw-1"}]
    assert answer(csms, "ocpp2.0.1", "Heartbeat") == [3, "m1", {"currentTime": "any"}]
    reply = answer(csms, "ocpp2.0.1", "BootNotification")
    assert reply is not None and reply[2] == {"currentTime": "t", "interval": 5, "status": "Accepted"}


@pytest.mark.parametrize(("version", "code"), [("ocpp1.6", "InternalError"), ("ocpp2.0.1", "InternalError")])
def test_a_failing_handler_is_an_internal_error(version: str, code: str) -> None:
    csms = Csms()

    @csms.on("Heartbeat")
    def broken(call: StationCall) -> Response:
        raise RuntimeError("database down")

    @csms.on("Authorize")
    def wrong_type(call: StationCall) -> Any:
        return ["not", "a", "payload"]

    for action in ("Heartbeat", "Authorize"):
        assert answer(csms, version, action) == [4, "m1", code, f"{action} handler failed", {}]


def test_only_station_calls_are_answered() -> None:
    csms = Csms()
    csms.on("Heartbeat")(lambda call: {})
    reset = [2, "c1", "Reset", {}]
    assert asyncio.run(csms.answer(record("ocpp2.0.1", [3, "c1", {}], request=reset))) is None
    error = [4, "c1", "InternalError", "timeout", {}]
    assert asyncio.run(csms.answer(record("ocpp2.0.1", error, origin="gateway", request=reset))) is None
    assert asyncio.run(csms.answer(record("ocpp2.1", [6, "s1", "Heartbeat", {}]))) is None
    event = lifecycle_record(Origin("CP_1", OcppVersion.V16, "gw"), "t", "connected", 0, remote_address="a")
    assert asyncio.run(csms.answer(decode_in_record(b"CP_1", event, ()))) is None


def test_payloads_are_dicts_or_ocpp_dataclasses() -> None:
    status = datatypes.StatusInfoType(reason_code="R")
    dataclass = call_result.ClearCache(status=enums.ClearCacheStatusEnumType.rejected, status_info=status)
    assert to_payload(dataclass) == {"status": "Rejected", "statusInfo": {"reasonCode": "R"}}
    assert to_payload({"a": None}) == {"a": None}
    with pytest.raises(TypeError):
        to_payload([1])


def test_send_call_returns_the_result_or_raises_for_a_callerror_or_no_answer() -> None:
    async def scenario() -> None:
        client = CsmsClient(KafkaConfig())
        answers: dict[str, list[Any]] = {
            "GetVariables": [3, "", {"getVariableResult": []}],
            "Reset": [4, "", "NotSupported", "no", {}],
        }
        heard: list[InRecord] = []
        client.listen(heard.append)

        async def publish_call(station_id: str, action: str, payload: Response, message_id: str | None = None) -> str:
            assert message_id is not None
            if action in answers:
                frame = [answers[action][0], message_id, *answers[action][2:]]
                request = [2, message_id, action, payload]
                client._deliver(record("ocpp2.0.1", frame, station_id=station_id, request=request))
            return message_id

        client.publish_call = publish_call  # type: ignore[method-assign]
        assert await client.send_call("CP_1", "GetVariables", {}) == {"getVariableResult": []}
        with pytest.raises(CallErrorReceived) as raised:
            await client.send_call("CP_1", "Reset", {"type": "Soft"})
        assert (raised.value.code, raised.value.origin, raised.value.record.action) == (
            "NotSupported",
            "station",
            "Reset",
        )
        with pytest.raises(CallTimeout):
            await client.send_call("CP_1", "ClearCache", {}, timeout=0.05)
        assert [r.action for r in heard] == ["GetVariables", "Reset"] and not client._answers

    asyncio.run(scenario())


def test_events_follow_connections_only() -> None:
    async def scenario() -> list[tuple[str, str]]:
        client = CsmsClient(KafkaConfig())
        events = client.events()
        origin = Origin("CP_9", OcppVersion.V201, "gw-2")
        client._deliver(decode_in_record(b"CP_9", lifecycle_record(origin, "t", "connected", 0), ()))
        client._deliver(record("ocpp2.0.1", [2, "m", "Heartbeat", {}], station_id="CP_9"))
        value = lifecycle_record(origin, "t", "disconnected", 0, close_code=1000, close_reason="")
        client._deliver(decode_in_record(b"CP_9", value, ()))
        return [(event.kind, event.gateway_id) for event in [await anext(events), await anext(events)]]

    assert asyncio.run(scenario()) == [("connected", "gw-2"), ("disconnected", "gw-2")]
