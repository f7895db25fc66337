"""Steps for the hardening scenarios: floods, address caps, deaf stations, hostile ids and headers.

Stations connect from chosen loopback addresses (all of 127.0.0.0/8 reaches the gateway on
127.0.0.1), so one address can attack while others must still get through.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import uuid
from typing import Any

from behave import given, then, when
from behave.runner import Context
from steps.operations_steps import OPS_PORT, _value, step_heartbeat_answered
from support.kafka import publish_many_to_partition, read_until
from support.station import expect_close
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from testing.harness import wait_until

HARDENING_ENV = {
    "OCPPGW_OCPP_GATEWAY__MAX_CONNECTIONS": "100",
    "OCPPGW_OCPP_GATEWAY__HANDSHAKE_RATE": "25",
    "OCPPGW_OCPP_GATEWAY__MAX_HANDSHAKES_PER_ADDRESS": "20",
    "OCPPGW_OCPP_GATEWAY__SEND_QUEUE_BYTES": "65536",
}


def _upgrade(path: str, protocol: str = "ocpp2.0.1", extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{OPS_PORT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {base64.b64encode(uuid.uuid4().bytes).decode()}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {protocol}\r\n{extra}\r\n"
    ).encode()


def _status_line(sock: socket.socket) -> str:
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply.split(b"\r\n", 1)[0].decode(errors="replace")


def _records(context: Context, station_id: str, done: Any, headers: bool = False) -> list[dict[str, Any]]:
    return read_until(context.kafka_servers, context.ops_topics[0], station_id, done, headers=headers)


def _reply_partition(context: Context, station_id: str) -> int:
    records = _records(context, station_id, lambda rs: any(r.get("kind") == "connected" for r in rs))
    return int(next(r for r in records if r.get("kind") == "connected")["reply_partition"])


def _flood(context: Context, station_id: str, frames: list[str]) -> None:
    """Send ``frames`` back to back; the gateway may close the connection part way."""
    station = context.ops_stations[station_id]
    with contextlib.suppress(ConnectionClosed):
        for text in frames:
            station.send(text)


@when('"{station_id}" sends 300 CALLRESULTERROR frames at once')
def step_callresulterror_flood(context: Context, station_id: str) -> None:
    _flood(context, station_id, [f'[5,"x{n}","GenericError","",{{}}]' for n in range(300)])


@when('"{station_id}" sends 300 CALLRESULT frames nobody asked for')
def step_callresult_flood(context: Context, station_id: str) -> None:
    _flood(context, station_id, [f'[3,"r{n}",{{}}]' for n in range(300)])


@then('"{station_id}" is closed with {code:d} "{reason}"')
def step_closed_with(context: Context, station_id: str, code: int, reason: str) -> None:
    expect_close(context.ops_stations[station_id].connection, code, reason)


@then('at most {count:d} of the frames of "{station_id}" reached messages_in')
def step_at_most_published(context: Context, count: int, station_id: str) -> None:
    records = _records(context, station_id, lambda rs: any(r.get("kind") == "disconnected" for r in rs))
    frames = [r for r in records if r.get("kind") == "frame"]
    assert len(frames) <= count, f"{len(frames)} frames published"


@then('the ops gateway logged at most {count:d} lines about "{station_id}"')
def step_log_lines(context: Context, count: int, station_id: str) -> None:
    wait_until(lambda: "station disconnected" in context.ops.log_text(), 10, "the disconnection to be logged")
    lines = [line for line in context.ops.log_text().splitlines() if station_id in line]
    assert len(lines) <= count, f"{len(lines)} lines:\n" + "\n".join(lines[:20])


def _connect_from(address: str, station_id: str) -> Any:
    return connect(
        f"ws://127.0.0.1:{OPS_PORT}/ocpp/{station_id}",
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        open_timeout=15,
        source_address=(address, 0),
    )


@when("127.0.0.2 floods the gateway with requests for a bad path while 20 stations connect from 127.0.0.3")
def step_bad_flood(context: Context) -> None:
    stop = threading.Event()
    sent = [0]

    def attack() -> None:
        while not stop.is_set():
            with socket.create_connection(("127.0.0.1", OPS_PORT), source_address=("127.0.0.2", 0)) as sock:
                sock.sendall(_upgrade("/ocpp/bad%zz"))
                sock.settimeout(10)
                _status_line(sock)
                sent[0] += 1

    attackers = [threading.Thread(target=attack) for _ in range(4)]
    for thread in attackers:
        thread.start()
    context.outcomes = []
    try:
        wait_until(lambda: sent[0] >= 8, 30, "the flood to be under way")
        for n in range(20):
            try:
                context.outcomes.append(_connect_from("127.0.0.3", f"CP_GOOD_{n}"))
            except InvalidStatus as refused:
                context.outcomes.append(refused.response.status_code)
    finally:
        stop.set()
        for thread in attackers:
            thread.join(timeout=30)
    for outcome in context.outcomes:
        if not isinstance(outcome, int):
            context.stations[f"good:{id(outcome)}"] = outcome


@then("all 20 stations from 127.0.0.3 were accepted")
def step_all_good(context: Context) -> None:
    refused = [o for o in context.outcomes if isinstance(o, int)]
    assert not refused, f"refused with {refused}"
    assert _value("ocpp_gw_handshakes_refused_total", reason="bad_station_id") > 0


@when("127.0.0.4 opens 60 TCP connections and sends nothing")
def step_idle_connections(context: Context) -> None:
    context.idle = [
        socket.create_connection(("127.0.0.1", OPS_PORT), source_address=("127.0.0.4", 0)) for _ in range(60)
    ]


@then("the gateway closes at least 40 of them at once")
def step_idle_closed(context: Context) -> None:
    closed: set[int] = set()

    def count() -> bool:
        for n, sock in enumerate(context.idle):
            if n in closed:
                continue
            sock.setblocking(False)
            try:
                if sock.recv(1) == b"":
                    closed.add(n)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(n)
        return len(closed) >= 40

    try:
        wait_until(count, 3, "the gateway to close the connections over the address's cap")
        assert _value("ocpp_gw_handshakes_refused_total", reason="address_handshakes") >= 40
    finally:
        for sock in context.idle:
            sock.close()


@then("a station connecting from 127.0.0.5 is accepted")
def step_other_address(context: Context) -> None:
    connection = _connect_from("127.0.0.5", "CP_ELSEWHERE")
    context.stations["elsewhere"] = connection


@given('a raw 2.1 station "{station_id}" that does not read')
def step_deaf_station(context: Context, station_id: str) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect(("127.0.0.1", OPS_PORT))
    sock.sendall(_upgrade(f"/ocpp/{station_id}", "ocpp2.1"))
    sock.settimeout(10)
    status = _status_line(sock)
    assert " 101 " in status, status
    context.deaf = sock


@when('the CSMS sends "{station_id}" {count:d} SEND frames of {size:d} bytes')
def step_csms_sends(context: Context, station_id: str, count: int, size: int) -> None:
    partition = _reply_partition(context, station_id)
    frames = [{"v": 1, "frame": [6, f"s{n}", "NotifyPeriodicEventStream", {"data": "x" * size}]} for n in range(count)]
    publish_many_to_partition(context.kafka_servers, context.ops_topics[1], partition, station_id, frames)


@then('"{station_id}" answers a Heartbeat the CSMS answers')
def step_still_answers(context: Context, station_id: str) -> None:
    step_heartbeat_answered(context, station_id)


@then('the ops gateway\'s metrics count {count:d} "{event}" event')
def step_event_metric(context: Context, count: int, event: str) -> None:
    try:
        wait_until(lambda: _value("ocpp_gw_session_events_total", event=event) >= count, 20, f"{count} {event} events")
        assert _value("ocpp_gw_session_events_total", event=event) == count
    finally:
        if getattr(context, "deaf", None) is not None:
            context.deaf.close()
            context.deaf = None


@when('the CSMS sends "{station_id}" a DataTransfer CALL of {size:d} bytes')
def step_large_call(context: Context, station_id: str, size: int) -> None:
    partition = _reply_partition(context, station_id)
    context.large_call_id = f"large-{uuid.uuid4().hex[:8]}"
    frame = [2, context.large_call_id, "DataTransfer", {"vendorId": "v", "data": "x" * size}]
    publish_many_to_partition(
        context.kafka_servers, context.ops_topics[1], partition, station_id, [{"v": 1, "frame": frame}]
    )
    context.large_call_station = station_id


@then('the CSMS gets the gateway\'s CALLERROR "{code}" for that call')
def step_large_refused(context: Context, code: str) -> None:
    message_id = context.large_call_id
    records = _records(
        context, context.large_call_station, lambda rs: any(r.get("message_id") == message_id for r in rs)
    )
    [record] = [r for r in records if r.get("message_id") == message_id]
    assert record["origin"] == "gateway" and record["frame"][:3] == [4, message_id, code], record


@when('"{station_id}" sends a Heartbeat whose message id holds CR LF')
def step_crlf_id(context: Context, station_id: str) -> None:
    context.crlf_id = f"a\r\n{uuid.uuid4().hex[:8]}"
    context.ops_stations[station_id].send([2, context.crlf_id, "Heartbeat", {}])
    context.crlf_station = station_id


@then("the messages_in record of that call has a correlation_id header without CR or LF")
def step_crlf_header(context: Context) -> None:
    message_id = context.crlf_id
    records = _records(
        context, context.crlf_station, lambda rs: any(r.get("message_id") == message_id for r in rs), headers=True
    )
    [record] = [r for r in records if r.get("message_id") == message_id]
    header = record["_headers"]["correlation_id"]
    assert b"\r" not in header and b"\n" not in header, header
    assert header.startswith(f"{context.crlf_station}/a\\r\\n".encode()), header


@when('"{station_id}" closes its connection with code {code:d}')
def step_close_code(context: Context, station_id: str, code: int) -> None:
    context.ops_stations[station_id].connection.close(code=code)


@then('the ops gateway\'s metrics count {count:d} connection closed with code "{label}"')
def step_close_metric(context: Context, count: int, label: str) -> None:
    wait_until(lambda: _value("ocpp_gw_connections_closed_total", code=label) >= count, 10, f"a close counted {label}")
    assert _value("ocpp_gw_connections_closed_total", code=label) == count
    assert _value("ocpp_gw_connections_closed_total", code="4321") == 0


@when("a station sends a handshake with two Authorization headers")
def step_two_authorizations(context: Context) -> None:
    basic = "Authorization: Basic " + base64.b64encode(b"CP_TWO:password-0123456789ab").decode() + "\r\n"
    with socket.create_connection(("127.0.0.1", OPS_PORT)) as sock:
        sock.sendall(_upgrade("/ocpp/CP_TWO", extra=basic + basic))
        sock.settimeout(10)
        context.status_line = _status_line(sock)


@then("that handshake is refused with HTTP {status:d}")
def step_status_line(context: Context, status: int) -> None:
    assert context.status_line.split(" ")[1] == str(status), context.status_line
