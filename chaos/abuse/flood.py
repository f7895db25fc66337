"""3. Call flood: one station sends many CALLs back to back, ignoring the one-CALL-in-flight rule.

Each CALL must get exactly one answer (the CSMS's result or the gateway's CALLERROR), unless the
gateway closes the connection with a documented code.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

from .client import Closed, Lost, Message, RawConnection, next_event, split_url
from .framing import OP_TEXT, encode_frame
from .oracle import strict_json
from .tally import Tally

_IN_FLIGHT_WORDS = ("in flight",)
_RATE_WORDS = ("rate",)


def flood_answer_kind(text: str) -> tuple[str, str | None]:
    """(kind, message id) of an answer to a flooded Heartbeat: ``result``, ``in_flight``,
    ``rate_limited``, another errorCode, or ``malformed`` (id None when unreadable)."""
    ok, message = strict_json(text)
    if not ok or not isinstance(message, list) or len(message) < 2 or not isinstance(message[1], str):
        return "malformed", None
    if message[0] == 3 and len(message) == 3 and isinstance(message[2], dict):
        return "result", message[1]
    if message[0] == 4 and len(message) == 5 and isinstance(message[2], str) and isinstance(message[3], str):
        description = message[3].lower()
        if message[2] == "GenericError" and any(word in description for word in _IN_FLIGHT_WORDS):
            return "in_flight", message[1]
        if message[2] == "GenericError" and any(word in description for word in _RATE_WORDS):
            return "rate_limited", message[1]
        return message[2], message[1]
    return "malformed", message[1]


FLOOD_CLOSE_CODES = frozenset({1008, 1012, 1001})
"""Closes the README documents for a station that floods: rate limit or full send queue (1008), drain."""


async def call_flood(
    url: str,
    calls: int,
    *,
    protocol: str = "ocpp2.0.1",
    answer_timeout: float = 35.0,
    station_id: str = "FLOOD_CALLS",
) -> dict[str, Any]:
    """One station sends ``calls`` Heartbeat CALLs back to back, ignoring the one-in-flight rule.

    Each must get exactly one answer (the CSMS's result, or the gateway's CALLERROR for a call
    in flight or over the rate), unless the gateway closes the connection with a documented code
    (1008), after which the unanswered calls are counted, not faulted.
    """
    host, port, path, ssl_context = split_url(url)
    violations = Tally()
    connection, reply = await RawConnection.open(
        host, port, f"{path}/{station_id}", [protocol], timeout=answer_timeout, ssl_context=ssl_context
    )
    if connection is None:
        violations.add(f"handshake failed: {reply.status} {reply.ending}")
        return {
            "calls": 0,
            "answers": {},
            "duplicates": 0,
            "missing": calls,
            "violations": violations.first,
            "violation_count": violations.count,
        }
    ids = [f"flood-{n}" for n in range(calls)]
    sent = set(ids)
    started = time.monotonic()
    connection.write(
        b"".join(encode_frame(OP_TEXT, f'[2,"{i}","Heartbeat",{{}}]'.encode(), mask=os.urandom(4)) for i in ids)
    )
    await connection.drain()
    answered: dict[str, str] = {}
    kinds: Counter[str] = Counter()
    duplicates = unexpected = 0
    closed: str | None = None
    deadline = time.monotonic() + answer_timeout
    while len(answered) < calls:
        event = await next_event(connection, deadline)
        if event is None:
            break
        if isinstance(event, Closed):
            closed = f"{event.code} {event.reason}".strip()
            if event.code not in FLOOD_CLOSE_CODES:
                violations.add(f"closed with {event.code} {event.reason!r}, not a documented limit")
            break
        if isinstance(event, Lost):
            closed = f"lost ({event.how})"
            violations.add(f"connection lost without a close frame ({event.how})")
            break
        kind, message_id = flood_answer_kind(event.text)
        if message_id is None or kind == "malformed":
            violations.add(f"malformed answer {event.text[:160]!r}")
            continue
        if message_id not in sent:
            unexpected += 1
            violations.add(f"answer to an id never sent: {event.text[:160]!r}")
            continue
        if message_id in answered:
            duplicates += 1
            violations.add(f"second answer to {message_id}: {event.text[:160]!r} (first: {answered[message_id]})")
            continue
        answered[message_id] = kind
        kinds[kind] += 1
    missing = calls - len(answered)
    if missing and closed is None:
        first = next(i for i in ids if i not in answered)
        violations.add(f"{missing} calls unanswered after {answer_timeout:g} s (first {first})")
    if closed is None:
        # Late duplicates: anything more within a short grace period is a second answer.
        grace = time.monotonic() + 1.0
        while (event := await next_event(connection, grace)) is not None:
            if isinstance(event, Message):
                duplicates += 1
                violations.add(f"answer after all calls were answered: {event.text[:160]!r}")
            else:
                break
        await connection.close()
    else:
        await connection.finish(5.0)
    seconds = time.monotonic() - started
    return {
        "calls": calls,
        "answers": dict(kinds),
        "answered": len(answered),
        "duplicates": duplicates,
        "unexpected": unexpected,
        "missing": missing if closed is None else 0,
        "unanswered_after_close": missing if closed is not None else 0,
        "closed": closed,
        "seconds": round(seconds, 2),
        "violations": violations.first,
        "violation_count": violations.count,
    }
