"""2. Handshake abuse, the I/O: run the cases of :mod:`.handshakes`, a duplicate station and a handshake flood.

:func:`handshake_abuse` names the outcome of every attempt and counts those outside what the
case allows: a hang, a reset, a server error, a stalled handshake left open too long.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any

from .client import Closed, HttpReply, Lost, RawConnection, _abort, accept_key, http_exchange, next_event, wait_eof
from .framing import OP_CLOSE, close_payload, encode_frame
from .handshakes import HandshakeCase, handshake_cases, outcome_ok
from .tally import Tally


async def _switched(reply: HttpReply, case: HandshakeCase, violations: Tally) -> str:
    """Finish a 101: check it, then close (or see the gateway close) and name the outcome."""
    assert reply.reader is not None and reply.writer is not None
    if case.key and reply.header("Sec-WebSocket-Accept") != accept_key(case.key):
        violations.add(f"{case.name}: wrong Sec-WebSocket-Accept {reply.header('Sec-WebSocket-Accept')!r}")
    protocol = reply.header("Sec-WebSocket-Protocol")
    connection = RawConnection(reply.reader, reply.writer, protocol, None)
    try:
        if protocol is None:
            event = await next_event(connection, time.monotonic() + 10.0)
            if isinstance(event, Closed):
                return f"101+{event.code}"
            return f"101+{'timeout' if event is None else 'lost' if isinstance(event, Lost) else 'message'}"
        offered = _offered(case.request)
        if protocol not in offered or "," in protocol:
            violations.add(f"{case.name}: subprotocol {protocol!r} agreed, offered {offered}")
        if case.protocol is not None and protocol != case.protocol:
            violations.add(f"{case.name}: subprotocol {protocol!r} agreed, the station preferred {case.protocol!r}")
        connection.close_sent = True
        connection.write(encode_frame(OP_CLOSE, close_payload(1000), mask=os.urandom(4)))
        await connection.drain()
        event = await next_event(connection, time.monotonic() + 10.0)
        if isinstance(event, Closed):
            return "101" if event.code == 1000 else f"101 (close echoed as {event.code})"
        return f"101 then {'no close echo' if event is None else 'lost'}"
    finally:
        await connection.finish(5.0)


def _offered(request: bytes) -> list[str]:
    offered: list[str] = []
    for line in request.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-protocol":
            offered += [v.strip() for v in value.split(",") if v.strip()]
    return offered


async def _run_case(
    host: str, port: int, case: HandshakeCase, handshake_timeout: float, margin: float, violations: Tally
) -> str:
    if case.mode == "once":
        reply = await http_exchange(host, port, case.request, 10.0 + margin)
        if reply.status == 101:
            return await _switched(reply, case, violations)
        if reply.status is not None:
            assert reply.reader is not None
            ending = await wait_eof(reply.reader, 5.0)
            _abort(reply.writer)
            if ending == "timeout":
                violations.add(f"{case.name}: HTTP {reply.status} refusal left the connection open")
            return str(reply.status)
        return reply.ending
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as error:
        return f"connect failed: {error}"
    limit = handshake_timeout + margin
    try:
        if case.mode == "stall":
            writer.write(case.request)
            ending = await wait_eof(reader, limit)
        else:
            ending = await _drip(reader, writer, case.request, handshake_timeout, limit)
    finally:
        _abort(writer)
    elapsed = time.monotonic() - started
    if ending == "timeout":
        return f"still open after {elapsed:.1f} s"
    if ending == "response":
        return "response"
    if elapsed > limit:
        return f"closed after {elapsed:.1f} s"
    return "timeout_close" if ending in ("eof", "reset") else ending


async def _drip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, handshake_timeout: float, limit: float
) -> str:
    """Write ``request`` a byte at a time over twice the handshake timeout; how the server ended it."""
    pause = 2 * handshake_timeout / max(1, len(request))
    reading = asyncio.ensure_future(wait_eof(reader, limit))
    try:
        for byte in request:
            if reading.done():
                break
            writer.write(bytes([byte]))
            await asyncio.wait({reading}, timeout=pause)
        return await reading
    finally:
        reading.cancel()


async def _flood(host: str, port: int, prefix: str, count: int, violations: Tally) -> Counter[str]:
    """``count`` complete handshakes at once; each must end in 101 or a clean HTTP refusal."""

    async def one(n: int) -> tuple[str, RawConnection | None]:
        connection, reply = await RawConnection.open(host, port, f"{prefix}/FLOOD_{n}", ["ocpp2.0.1"], timeout=30.0)
        if connection is not None:
            return "101", connection
        if reply.status is not None:
            return str(reply.status), None
        return reply.ending, None

    results = await asyncio.gather(*(one(n) for n in range(count)))
    outcomes: Counter[str] = Counter(outcome for outcome, _ in results)
    for outcome, n in outcomes.items():
        if outcome not in ("101", "503"):
            violations.add(f"flood: {n} of {count} handshakes ended {outcome!r} (101 or 503 expected)")

    async def close(connection: RawConnection) -> str:
        connection.close_sent = True
        connection.write(encode_frame(OP_CLOSE, close_payload(1000), mask=os.urandom(4)))
        await connection.drain()
        event = await next_event(connection, time.monotonic() + 10.0)
        await connection.finish(5.0)
        return "ok" if isinstance(event, Closed) else "no close echo"

    closings = await asyncio.gather(*(close(c) for _, c in results if c is not None))
    bad = sum(1 for c in closings if c != "ok")
    if bad:
        violations.add(f"flood: {bad} connections did not echo our close")
    return outcomes


async def _duplicate_station(host: str, port: int, prefix: str) -> str:
    """Two connections with one station id: the first is replaced (1000) or the second rejected (1008)."""
    path = f"{prefix}/HS_DUPLICATE"
    first, _ = await RawConnection.open(host, port, path, ["ocpp2.0.1"])
    if first is None:
        return "first refused"
    second, reply = await RawConnection.open(host, port, path, ["ocpp2.0.1"])
    try:
        if second is None:
            return f"second {reply.status or reply.ending}"
        deadline = time.monotonic() + 20.0
        first_event = await next_event(first, deadline)
        if isinstance(first_event, Closed) and first_event.code == 1000:
            return "replaced:1000"
        second_event = await next_event(second, time.monotonic() + 1.0)
        if isinstance(second_event, Closed) and second_event.code == 1008:
            return "rejected:1008"
        return f"first {first_event!r}, second {second_event!r}"
    finally:
        await first.close()
        if second is not None:
            await second.close()


async def handshake_abuse(
    host: str,
    port: int,
    *,
    handshake_timeout: float = 10.0,
    margin: float = 2.0,
    flood: int = 300,
    prefix: str = "/ocpp",
) -> dict[str, Any]:
    """Hostile opening handshakes against a profile 0 listener, then ``flood`` handshakes at once.

    Every case must end as its :class:`HandshakeCase` says: never a hang, a reset or a server
    error. Stalled handshakes must be closed within ``handshake_timeout`` + ``margin`` seconds.
    """
    violations = Tally()
    outcomes: dict[str, Any] = {}
    cases = handshake_cases(host, port, prefix)
    expected: dict[str, frozenset[str]] = {case.name: case.expect for case in cases}

    async def run(case: HandshakeCase) -> None:
        outcomes[case.name] = await _run_case(host, port, case, handshake_timeout, margin, violations)

    controls = [case for case in cases if case.name.startswith("valid_")]
    for case in controls:
        await run(case)
    await asyncio.gather(*(run(case) for case in cases if case not in controls))
    outcomes["duplicate_station"] = await _duplicate_station(host, port, prefix)
    expected["duplicate_station"] = frozenset({"replaced:1000", "rejected:1008"})
    as_expected = 0
    for name, observed in outcomes.items():
        if outcome_ok(observed, expected[name]):
            as_expected += 1
        else:
            violations.add(f"{name}: observed {observed!r}, expected one of {sorted(expected[name])}")
    busy = sum(1 for name, observed in outcomes.items() if observed == "503")
    if busy > len(outcomes) // 2:
        violations.add(f"{busy} of {len(outcomes)} handshakes refused as busy (503): the cases proved little")
    flood_outcomes = await _flood(host, port, prefix, flood, violations) if flood else Counter()
    outcomes["flood"] = dict(flood_outcomes)
    cases_run = len(expected) + (1 if flood else 0)
    flood_ok = flood and set(flood_outcomes) <= {"101", "503"}
    return {
        "cases": cases_run,
        "as_expected": as_expected + (1 if flood_ok else 0),
        "outcomes": outcomes,
        "violations": violations.first,
        "violation_count": violations.count,
    }
