"""Steps that run the real simulator and the csms-server call command as processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from behave import given, then, when
from behave.runner import Context
from support.kafka import read_until
from support.processes import Program

from testing.harness import ROOT

IN_TOPIC, OUT_TOPIC = "messages_in", "messages_out"


def _start_simulator(context: Context, station_id: str, protocol: str, charge: bool) -> Program:
    env = {
        "OCPPGW_KAFKA__SERVERS": context.kafka_servers,
        "OCPPGW_CHARGE_STATION__GATEWAY_URL": context.gateway_url,
        "OCPPGW_CHARGE_STATION__CHARGE_SECONDS": "2.5",
        "OCPPGW_CHARGE_STATION__METER_INTERVAL": "1",
        "OCPPGW_CHARGE_STATION__RECONNECT_BASE": "0.2",
    }
    args = ("--id", station_id, "--protocol", protocol, *(("--charge",) if charge else ()))
    program = Program(f"sim-{station_id}", "charge_station", env, context.log_dir, args)
    context.simulators = getattr(context, "simulators", {})
    context.simulators[station_id] = (program, protocol, charge)
    program.wait_for_log("boot answered", timeout=30)
    return program


def _label(record: dict[str, Any]) -> str:
    action, payload = record["frame"][2], record["frame"][3]
    detail = payload.get("status") or payload.get("connectorStatus") or payload.get("eventType")
    return f"{action}:{detail}" if action in ("StatusNotification", "TransactionEvent") and detail else action


def _station_calls(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "frame" and r["origin"] == "station" and r["message_type"] == 2]


@given('a simulated "{protocol}" station "{station_id}" that charges after booting')
def step_charging_simulator(context: Context, protocol: str, station_id: str) -> None:
    _start_simulator(context, station_id, protocol, charge=True)


@given('a simulated "{protocol}" station "{station_id}"')
def step_simulator(context: Context, protocol: str, station_id: str) -> None:
    _start_simulator(context, station_id, protocol, charge=False)


@then('messages_in shows the calls of "{station_id}" in order: {calls}')
def step_calls_in_order(context: Context, station_id: str, calls: str) -> None:
    expected = [c.strip() for c in calls.split(",")]

    def collapsed(records: list[dict[str, Any]]) -> list[str]:
        labels: list[str] = []
        for record in _station_calls(records):
            label = _label(record)
            if not labels or labels[-1] != label:
                labels.append(label)
        return labels

    records = read_until(
        context.kafka_servers,
        IN_TOPIC,
        station_id,
        lambda rs: collapsed(rs)[-1:] == expected[-1:] and len(collapsed(rs)) >= len(expected),
        timeout=30,
    )
    assert collapsed(records) == expected, collapsed(records)
    context.call_ids = [r["message_id"] for r in _station_calls(records)]


@then('the CSMS answered every call of "{station_id}" with a CALLRESULT')
def step_all_results(context: Context, station_id: str) -> None:
    wanted = set(context.call_ids)

    def all_answered(records: list[dict[str, Any]]) -> bool:
        return wanted <= {r["frame"][1] for r in records}

    records = read_until(context.kafka_servers, OUT_TOPIC, station_id, all_answered)
    answers = [r["frame"] for r in records if r["frame"][1] in wanted]
    assert all(frame[0] == 3 for frame in answers), [f for f in answers if f[0] != 3]


@when('I run csms-server call "{station_id}" "{action}" \'{payload}\'')
def step_run_call(context: Context, station_id: str, action: str, payload: str) -> None:
    env = {**os.environ, "OCPPGW_KAFKA__SERVERS": context.kafka_servers, "OCPPGW_LOGGING__FORMAT": "json"}
    context.call = subprocess.run(
        [
            sys.executable,
            "-m",
            "csms_server",
            "--config",
            str(ROOT / "config.cfg"),
            "call",
            station_id,
            action,
            payload,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
    )


@then("it exits {code:d}")
def step_exit(context: Context, code: int) -> None:
    assert context.call.returncode == code, (context.call.returncode, context.call.stdout, context.call.stderr)


@then('it exits {code:d} and prints a result whose "{path}" is "{value}"')
def step_exit_and_print(context: Context, code: int, path: str, value: str) -> None:
    step_exit(context, code)
    document: Any = json.loads(context.call.stdout)
    for part in path.split("."):
        document = document[int(part)] if isinstance(document, list) else document[part]
    assert str(document) == value, (document, context.call.stdout)


@when('the simulator of "{station_id}" is killed with SIGKILL and started again')
def step_kill_simulator(context: Context, station_id: str) -> None:
    program, protocol, charge = context.simulators[station_id]
    program.kill()
    program.stop()
    _start_simulator(context, station_id, protocol, charge)


@then('"{station_id}" boots again')
def step_boots_again(context: Context, station_id: str) -> None:
    def boots(records: list[dict[str, Any]]) -> list[int]:
        return [
            i
            for i, r in enumerate(records)
            if r["kind"] == "frame" and r.get("action") == "BootNotification" and r["message_type"] == 2
        ]

    def booted_twice_after_a_disconnect(records: list[dict[str, Any]]) -> bool:
        indices = boots(records)
        return len(indices) >= 2 and any(r["kind"] == "disconnected" for r in records[indices[0] : indices[-1]])

    read_until(context.kafka_servers, IN_TOPIC, station_id, booted_twice_after_a_disconnect, timeout=30)
