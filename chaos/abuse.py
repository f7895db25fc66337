"""Hostile input against a running gateway: fuzzed frames, broken handshakes and call floods.

Three drivers, each returning a counted report whose ``violations`` must stay empty against a
correct gateway (the harness checks bystanders, liveness and memory around them):

- :func:`fuzz_frames`: valid OCPP-J frames of each version, mutated (hypothesis draws the
  recipes), sent over raw WebSockets so that anything can be sent: binary and fragmented
  messages, invalid UTF-8, compressed messages and deflate bombs, illegal WebSocket frames,
  messages over ``max_message_size``. Every probe carries the expectation the README and the
  OCPP-J specifications give it: one answer with a given message id, silence, or a clean close
  with a given code. Never acceptable: a connection lost without a close frame, a second answer,
  a missing answer, a hang.
- :func:`handshake_abuse`: malformed, hostile and slow opening handshakes, and a connection flood.
- :func:`call_flood`: one station that ignores the one-CALL-in-flight rule.

The pure parts (recipes, probes and their expectations, frame encoding, judging answers and
handshake outcomes) are separate from the I/O so that tests/test_abuse.py can check them.
The expectations are written from the README's "Invalid input" table and the specifications,
not from the gateway's code, so a divergence shows up as a violation.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import random
import ssl
import time
import zlib
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

# The rules the probes are judged by.

VERSIONS = ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")
DEFAULT_MAX_MESSAGE_SIZE = 1_048_576
"""The gateway's default ``max_message_size`` (config.cfg)."""
MAX_MESSAGE_ID_LENGTH = 36
"""OCPP-J §4.1.4: a message id is a string of at most 36 characters."""
MAX_STATION_ID_LENGTH = 48
"""OCPP-J 2.0.1 and 2.1 §3.1.1: a station identity is at most 48 characters."""
MAX_ERROR_DESCRIPTION_LENGTH = 255
"""OCPP-J 2.x: errorDescription is string[255]."""
UNREADABLE_ID = "-1"
"""The message id of a CALLERROR whose frame's id could not be read (README, OCPP-J 2.x §4.2.3)."""

_FAULT_CODES = {
    "ocpp1.6": {"not_rpc": "FormationViolation", "incomplete": "ProtocolError", "bad_payload": "FormationViolation"},
    "ocpp2.0.1": {
        "not_rpc": "RpcFrameworkError",
        "incomplete": "RpcFrameworkError",
        "bad_payload": "FormatViolation",
        "unknown_type": "MessageTypeNotSupported",
    },
}
_FAULT_CODES["ocpp2.1"] = _FAULT_CODES["ocpp2.0.1"]


def fault_code(version: str, fault: str) -> str:
    """The errorCode the README's "Invalid input" table gives ``fault`` in ``version``."""
    return _FAULT_CODES[version][fault]


def known_message_types(version: str) -> frozenset[int]:
    """Message type numbers ``version`` defines (2.1 adds CALLRESULTERROR 5 and SEND 6)."""
    return frozenset({2, 3, 4, 5, 6}) if version == "ocpp2.1" else frozenset({2, 3, 4})


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a correct gateway does with one probe.

    ``answer``: exactly one frame carrying ``message_id``: a gateway CALLERROR whose code is in
    ``codes`` or, when ``forwarded``, whatever the CSMS answered (a CALLRESULT or CALLERROR).
    ``silent``: nothing. ``close``: the gateway closes the WebSocket with a code in ``close_codes``.
    """

    outcome: str
    why: str
    message_id: str = ""
    codes: frozenset[str] = frozenset()
    forwarded: bool = False
    close_codes: frozenset[int] = frozenset()

    def describe(self) -> str:
        if self.outcome == "answer":
            kinds = sorted(self.codes) + (["the CSMS's answer"] if self.forwarded else [])
            return f"one answer to {self.message_id!r} ({' or '.join(kinds)}; {self.why})"
        if self.outcome == "close":
            return f"close {'/'.join(str(c) for c in sorted(self.close_codes))} ({self.why})"
        return f"silence ({self.why})"


def answer(message_id: str, why: str, *codes: str, forwarded: bool = False) -> Expectation:
    return Expectation("answer", why, message_id, frozenset(codes), forwarded)


def silent(why: str) -> Expectation:
    return Expectation("silent", why)


def close(why: str, *codes: int) -> Expectation:
    return Expectation("close", why, close_codes=frozenset(codes))


def strict_json(text: str) -> tuple[bool, Any]:
    """RFC 8259 JSON as the gateway must read it: no NaN or Infinity, no number that overflows
    to infinity, no lone surrogate; (False, None) when ``text`` is not such a document."""
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return False, None
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            return False, None
        if isinstance(value, str) and _has_surrogate(value):
            return False, None
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
    return True, document


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def expect_message(
    version: str, data: bytes, *, binary: bool = False, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> Expectation:
    """The expectation for one complete WebSocket message from a station (README "Invalid input").

    Not JSON, not an array, a binary frame, an unreadable message id: CALLERROR with id ``-1``.
    CALL with the wrong number of elements: ProtocolError (1.6) / RpcFrameworkError. Action not
    a non-empty string: FormationViolation / RpcFrameworkError. Payload not an object:
    FormationViolation / FormatViolation. Unknown message type: ignored in 1.6 and 2.1,
    MessageTypeNotSupported in 2.0.1. An answer (CALLRESULT, CALLERROR, CALLRESULTERROR) or a
    SEND is never answered. A well-formed CALL reaches the CSMS, whose answer comes back.
    """
    if len(data) > max_message_size:
        return close("larger than max_message_size", 1009)
    if binary:
        return answer(UNREADABLE_ID, "binary frame", fault_code(version, "not_rpc"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return close("text frame is not UTF-8", 1007)
    readable, message = strict_json(text)
    if not readable:
        return answer(UNREADABLE_ID, "not JSON", fault_code(version, "not_rpc"))
    if not isinstance(message, list) or not message:
        return answer(UNREADABLE_ID, "not a non-empty JSON array", fault_code(version, "not_rpc"))
    message_type = message[0]
    if type(message_type) is not int:
        return answer(UNREADABLE_ID, "message type is not an integer", fault_code(version, "not_rpc"))
    message_id = message[1] if len(message) > 1 else None
    id_readable = isinstance(message_id, str) and 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH
    reply_id = message_id if isinstance(message_id, str) and id_readable else UNREADABLE_ID
    if message_type not in known_message_types(version):
        if version == "ocpp2.0.1":
            return answer(reply_id, "unknown message type", fault_code(version, "unknown_type"))
        return silent(f"unknown message type is ignored in {version}")
    if not id_readable:
        if message_type == 2:
            return answer(UNREADABLE_ID, "unreadable message id", fault_code(version, "not_rpc"))
        return silent("unreadable id on a frame that is never answered")
    if message_type not in (2, 6):
        return silent("answers are never answered")
    call = message_type == 2
    if len(message) != 4:
        return (
            answer(reply_id, "CALL without 4 elements", fault_code(version, "incomplete"))
            if call
            else silent("malformed SEND")
        )
    action, payload = message[2], message[3]
    if not isinstance(action, str):
        return (
            answer(reply_id, "action not a string", fault_code(version, "not_rpc"))
            if call
            else silent("malformed SEND")
        )
    if not isinstance(payload, dict):
        if not call:
            return silent("malformed SEND")
        # With an empty action too, either fault may be the one reported.
        codes = {fault_code(version, "bad_payload")} | ({fault_code(version, "not_rpc")} if not action else set())
        return answer(reply_id, "payload not an object", *sorted(codes))
    if not call:
        return silent("SEND is not answered")
    if not action:
        # An empty action is no OCPP action: refused (RpcFrameworkError), or passed on and NotImplemented.
        return answer(reply_id, "empty action", fault_code(version, "not_rpc"), forwarded=True)
    return answer(reply_id, "well-formed CALL", forwarded=True)


# Judging what the gateway sends back.


def answer_head(text: str) -> tuple[int, str] | None:
    """Message type and id of a frame the gateway sent, or None when it is no OCPP-J answer."""
    ok, message = strict_json(text)
    if not ok or not isinstance(message, list) or len(message) < 2:
        return None
    if type(message[0]) is not int or not isinstance(message[1], str):
        return None
    return message[0], message[1]


def judge_answer(text: str, expectation: Expectation) -> tuple[str | None, str]:
    """(None, kind) when ``text`` is an acceptable answer for ``expectation``, else (why not, kind).

    ``kind`` is the errorCode of a CALLERROR, "CALLRESULT" for a result, "?" for anything else.
    """
    ok, message = strict_json(text)
    if not ok or not isinstance(message, list) or len(message) < 2:
        return "not an OCPP-J frame", "?"
    message_type, message_id = message[0], message[1]
    if expectation.outcome != "answer":
        return f"an answer where {expectation.describe()} was due", "?"
    if message_id != expectation.message_id:
        return f"answer carries id {message_id!r}, not {expectation.message_id!r}", "?"
    if message_type == 3:
        if len(message) != 3 or not isinstance(message[2], dict):
            return "malformed CALLRESULT", "?"
        if not expectation.forwarded:
            return "a CALLRESULT for a frame the gateway must refuse", "CALLRESULT"
        return None, "CALLRESULT"
    if message_type != 4:
        return f"answer of message type {message_type!r}", "?"
    if len(message) != 5 or not all(isinstance(part, str) for part in message[2:4]):
        return "malformed CALLERROR", "?"
    if not isinstance(message[4], dict):
        return "CALLERROR details not an object", "?"
    code = message[2]
    if code in expectation.codes:
        if len(message[3]) > MAX_ERROR_DESCRIPTION_LENGTH:
            return f"errorDescription longer than {MAX_ERROR_DESCRIPTION_LENGTH}", code
        return None, code
    if expectation.forwarded:
        return None, code
    return f"errorCode {code}, expected {' or '.join(sorted(expectation.codes))}", code


# Building probes: base frames, mutations, wire forms.


class Raw(str):
    """JSON text written out verbatim (numbers and escapes that json.dumps cannot produce)."""


def dump_json(value: Any) -> str:
    """Compact JSON of ``value``; :class:`Raw` parts are copied as they are."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(dump_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{dump_json(v)}" for k, v in value.items()) + "}"
        )
    return json.dumps(value, ensure_ascii=False)


_V16_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("Heartbeat", {}),
    ("BootNotification", {"chargePointVendor": "Fuzz", "chargePointModel": "F1"}),
    ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
    ("Authorize", {"idTag": "FUZZTAG"}),
    ("DataTransfer", {"vendorId": "org.fuzz", "data": "x"}),
    (
        "MeterValues",
        {"connectorId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": "1"}]}]},
    ),
]
_V2_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("Heartbeat", {}),
    ("BootNotification", {"chargingStation": {"model": "F1", "vendorName": "Fuzz"}, "reason": "PowerUp"}),
    (
        "StatusNotification",
        {"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    ),
    ("Authorize", {"idToken": {"idToken": "FUZZTAG", "type": "ISO14443"}}),
    ("DataTransfer", {"vendorId": "org.fuzz", "data": "x"}),
    ("NotifyEvent", {"generatedAt": "2026-01-01T00:00:00Z", "seqNo": 0, "eventData": []}),
]


def base_frames(version: str, message_id: str) -> list[list[Any]]:
    """Valid frames a station of ``version`` may send: CALLs the CSMS answers, an unknown action,
    answers to nothing (CALLRESULT, CALLERROR) and, in 2.1, SEND and CALLRESULTERROR."""
    calls = _V16_CALLS if version == "ocpp1.6" else _V2_CALLS
    frames: list[list[Any]] = [[2, message_id, action, dict(payload)] for action, payload in calls]
    frames += [
        [2, message_id, "FuzzNoSuchAction", {}],
        [3, message_id, {"status": "Accepted"}],
        [4, message_id, "GenericError", "fuzz", {}],
    ]
    if version == "ocpp2.1":
        frames += [
            [
                6,
                message_id,
                "NotifyPeriodicEventStream",
                {"id": 1, "pending": 0, "basetime": "2026-01-01T00:00:00Z", "data": []},
            ],
            [5, message_id, "InternalError", "fuzz", {}],
        ]
    return frames


STRUCTURE_MUTATIONS = ("drop", "add", "swap", "retype", "type_id", "msg_id", "action", "payload", "wrap")
TEXT_MUTATIONS = ("truncate", "flip", "garbage", "whitespace", "bom", "bad_utf8", "not_json")
MUTATIONS = STRUCTURE_MUTATIONS + TEXT_MUTATIONS

WIRE_KINDS: tuple[tuple[int, str], ...] = (
    (700, "text"),
    (780, "fragmented"),
    (830, "binary"),
    (870, "compressed"),
    (950, "ws_violation"),
    (952, "oversize"),
    (953, "oversize_fragmented"),
    (954, "oversize_binary"),
    (955, "at_limit"),
    (957, "deflate_bomb"),
    (1000, "text"),
)
"""How a probe travels, chosen by its recipe's ``wire`` (0-999): the upper bound of each share."""


def wire_kind(wire: int) -> str:
    for bound, kind in WIRE_KINDS:
        if wire < bound:
            return kind
    return "text"


@dataclass(frozen=True, slots=True)
class Recipe:
    """How to make one probe: a base frame, up to a few mutations (each with its own seed), a wire form."""

    base: int
    mutations: tuple[tuple[str, int], ...]
    wire: int


def recipe_strategy() -> st.SearchStrategy[Recipe]:
    """Hypothesis strategy of recipes; the heavy lifting is left to seeded randomness in build_probe."""
    mutation = st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 2**32 - 1))
    return st.builds(
        Recipe,
        st.integers(0, 63),
        st.lists(mutation, max_size=3).map(tuple),
        st.integers(0, 999),
    )


RECIPE_POOL = 1024
"""Recipes drawn with hypothesis; longer runs derive further recipes from these by seeded mutation."""


def draw_recipes(count: int, seed: int) -> list[Recipe]:
    """``count`` recipes, the same for the same seed: hypothesis draws up to RECIPE_POOL of them
    (a fixed seed, no example database), the rest are derived from those with ``random.Random(seed)``."""
    pool: list[Recipe] = []
    attempt = 0
    while len(pool) < min(count, RECIPE_POOL) and attempt < 20:
        wanted = min(count, RECIPE_POOL) - len(pool)

        @hypothesis_seed(seed * 1009 + attempt)
        @settings(
            database=None,
            derandomize=False,  # explicit: a loaded profile must not replace the seed
            max_examples=wanted,
            deadline=None,
            phases=(Phase.generate,),
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        @given(recipe_strategy())
        def collect(recipe: Recipe) -> None:
            pool.append(recipe)

        collect()
        attempt += 1
    pool = pool[: min(count, RECIPE_POOL)]
    rng = random.Random(seed)
    recipes = list(pool)
    while len(recipes) < count:
        recipes.append(derive_recipe(pool or [Recipe(0, (), 0)], rng))
    return recipes


def derive_recipe(pool: list[Recipe], rng: random.Random) -> Recipe:
    """A mutation of a pool recipe: fresh seeds for its mutations, sometimes one more or one fewer."""
    parent = rng.choice(pool)
    mutations = [(name, rng.getrandbits(32)) for name, _ in parent.mutations]
    if rng.random() < 0.3:
        mutations.append((rng.choice(MUTATIONS), rng.getrandbits(32)))
    if mutations and rng.random() < 0.2:
        mutations.pop(rng.randrange(len(mutations)))
    base = rng.randrange(64) if rng.random() < 0.3 else parent.base
    # A megabyte probe is not copied: its share of a long run stays what WIRE_KINDS gives it.
    heavy = wire_kind(parent.wire).startswith(("oversize", "at_limit"))
    wire = rng.randrange(1000) if heavy or rng.random() < 0.3 else parent.wire
    return Recipe(base, tuple(mutations[:4]), wire)


@dataclass(frozen=True, slots=True)
class Probe:
    """One hostile (or valid) message and what a correct gateway does with it.

    ``data`` is the message's bytes; ``wire`` says how it travels (``text``, ``binary``,
    ``fragmented``, ``compressed``, ``oversize*``, ``at_limit``, ``deflate_bomb`` or
    ``ws_violation``, for which ``raw`` holds the exact bytes to write). ``expect`` assumes the
    connection did not negotiate permessage-deflate; see :func:`effective_expectation`.
    """

    name: str
    version: str
    data: bytes
    wire: str
    expect: Expectation
    raw: bytes = b""
    seed: int = 0


_LONG_IDS = (
    "",
    "x" * 36,
    "y" * 37,
    "z" * 1000,
    "w" * 100_000,
    "é" * 36,
    "😀" * 36,
    "😀" * 37,
    "-1",
    " ",
    "\u0000",
    'a"b\\c',
    "\u2028id",
)
_BAD_IDS: tuple[Any, ...] = (1, 0, None, [], {}, True, Raw('"\\ud800"'), Raw("1.5"), Raw("1" + "0" * 40))
_TYPE_IDS: tuple[Any, ...] = (
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    -1,
    99,
    2**31,
    2**63 - 1,
    True,
    None,
    "2",
    Raw("2.0"),
    Raw("2.5"),
    Raw("-0"),
)
_ACTIONS: tuple[Any, ...] = (
    "",
    "heartbeat",
    "Heartbeat ",
    "A" * 10_000,
    "TransactionEvent",
    "StartTransaction",
    "NotifyDERAlarm",
    "Bad\u0000Action",
    "../../etc/passwd",
    "😀",
    1,
    None,
    [],
    {},
    Raw('"\\udfff"'),
)
_NUMBERS = (
    Raw("1e400"),
    Raw("-1e400"),
    Raw("1" + "0" * 400),
    Raw("-" + "9" * 400),
    Raw("1" + "0" * 5000),
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1e308"),
    Raw("1.7976931348623157e309"),
    Raw("-0"),
    Raw("0.1e-400"),
    Raw("18446744073709551616"),
    Raw("-9223372036854775809"),
)
_STRINGS = (
    Raw('"\\ud800"'),
    Raw('"\\udc00x"'),
    Raw('"\\ud83d\\ude00"'),
    Raw('"\\u0000"'),
    "\u0000\u0001\u001f",
    "😀" * 100,
    "x" * 20_000,
    '"}]{[',
    "\ufeff",
)


def _random_string(rng: random.Random, size: int) -> str:
    alphabet = "aZ09 _-:/%\\\"'\n\t\u0000é中😀\u2028\ufffd"
    return "".join(rng.choice(alphabet) for _ in range(size))


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, now and then a hostile one (huge or non-finite numbers, lone surrogates)."""
    roll = rng.randrange(14 if depth < 3 else 10)
    if roll == 0:
        return None
    if roll == 1:
        return rng.random() < 0.5
    if roll == 2:
        return rng.randrange(-(2**70), 2**70)
    if roll == 3:
        return rng.uniform(-1e6, 1e6)
    if roll in (4, 5):
        return _random_string(rng, rng.randrange(0, 12))
    if roll == 6:
        return rng.choice(_NUMBERS)
    if roll == 7:
        return rng.choice(_STRINGS)
    if roll in (8, 9):
        return rng.choice([0, 1, -1, "", "x", 2, 4])
    if roll in (10, 11):
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {_random_string(rng, rng.randrange(0, 6)): random_json(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def _deep(rng: random.Random) -> Raw:
    """Nesting either shallow enough for any parser (<= 48) or far beyond every parser's limit."""
    depth = rng.randrange(2, 48) if rng.random() < 0.6 else rng.randrange(10_000, 60_000)
    opener, closer = ("[", "]") if rng.random() < 0.5 else ('{"a":', "}")
    return Raw(opener * depth + "0" + closer * depth)


def _payload(rng: random.Random) -> Any:
    roll = rng.randrange(8)
    if roll == 0:
        return rng.choice([[], "x", 1, None, True, Raw("1e400")])
    if roll == 1:
        return {"nested": _deep(rng)}
    if roll == 2:
        return {"n": rng.choice(_NUMBERS)}
    if roll == 3:
        return {"s": rng.choice(_STRINGS)}
    if roll == 4:
        return {f"k{i}": i for i in range(rng.randrange(100, 2000))}
    if roll == 5:
        return Raw('{"a":1,"a":2}')
    if roll == 6:
        return _deep(rng)
    return {_random_string(rng, 4): random_json(rng) for _ in range(rng.randrange(1, 5))}


def _mutate_structure(name: str, frame: Any, rng: random.Random) -> Any:
    if name == "wrap":
        return [frame] if rng.random() < 0.5 else {"frame": frame}
    if not isinstance(frame, list):
        return frame
    frame = list(frame)
    if name == "drop" and frame:
        del frame[rng.randrange(len(frame))]
    elif name == "add":
        frame.insert(rng.randrange(len(frame) + 1), random_json(rng))
    elif name == "swap" and len(frame) >= 2:
        i, j = rng.sample(range(len(frame)), 2)
        frame[i], frame[j] = frame[j], frame[i]
    elif name == "retype" and frame:
        frame[rng.randrange(len(frame))] = random_json(rng)
    elif name == "type_id" and frame:
        frame[0] = rng.choice(_TYPE_IDS)
    elif name == "msg_id" and len(frame) > 1:
        frame[1] = rng.choice(_LONG_IDS) if rng.random() < 0.7 else rng.choice(_BAD_IDS)
    elif name == "action" and len(frame) > 2:
        frame[2] = rng.choice(_ACTIONS) if rng.random() < 0.8 else f"Fuzz{rng.getrandbits(24):x}"
    elif name == "payload" and frame:
        frame[-1] = _payload(rng)
    return frame


def _mutate_text(name: str, data: bytes, rng: random.Random) -> bytes:
    if name == "truncate" and data:
        return data[: rng.randrange(len(data))]
    if name == "flip" and data:
        at = rng.randrange(len(data))
        return data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
    if name == "garbage":
        junk = rng.choice([b"}", b"]", b",", b"xyz", b"\x00", b"[]", b" 1", bytes([rng.randrange(32, 127)])])
        return data + junk if rng.random() < 0.5 else junk + data
    if name == "whitespace":
        pad = bytes(rng.choice(b" \t\r\n") for _ in range(rng.randrange(1, 64)))
        return pad + data + pad
    if name == "bom":
        return "\ufeff".encode() + data
    if name == "bad_utf8":
        bad = rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82"])
        at = rng.randrange(len(data) + 1)
        return data[:at] + bad + data[at:]
    if name == "not_json":
        return rng.choice([b"", b"hello", b"null", b"{}", b"2", b"[", b"]", b'"[2]"', b"[2,", b"\t", b"NaN", b"[]"])
    return data


def build_probe(
    version: str, recipe: Recipe, message_id: str, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> Probe:
    """The probe ``recipe`` makes for a ``version`` connection; deterministic."""
    bases = base_frames(version, message_id)
    frame: Any = bases[recipe.base % len(bases)]
    names = [f"{frame[0]}:{frame[2] if frame[0] in (2, 6) else '-'}"]
    text_mutations: list[tuple[str, int]] = []
    for name, mutation_seed in recipe.mutations:
        if name in STRUCTURE_MUTATIONS:
            frame = _mutate_structure(name, frame, random.Random(mutation_seed))
            names.append(name)
        else:
            text_mutations.append((name, mutation_seed))
    data = dump_json(frame).encode("utf-8", "surrogatepass")
    for name, mutation_seed in text_mutations:
        data = _mutate_text(name, data, random.Random(mutation_seed))
        names.append(name)
    kind = wire_kind(recipe.wire)
    rng = random.Random(recipe.wire * 7919 + recipe.base)
    raw = b""
    binary = kind in ("binary", "oversize_binary")
    if kind.startswith("oversize"):
        data += b" " * (max_message_size + 1 + rng.randrange(64) - len(data)) if len(data) <= max_message_size else b""
    elif kind == "at_limit" and len(data) < max_message_size:
        data += b" " * (max_message_size - len(data))
    if kind == "ws_violation":
        violation, raw, expectation = ws_violation(rng.randrange(len(VIOLATIONS)), rng)
        names.append(violation)
    elif kind in ("deflate_bomb", "compressed"):
        # Without permessage-deflate, RSV1 is a protocol error; effective_expectation() corrects this
        # for connections that negotiated it.
        expectation = close("RSV1 set without permessage-deflate", 1002)
    else:
        expectation = expect_message(version, data, binary=binary, max_message_size=max_message_size)
    names.append(kind)
    return Probe("+".join(names), version, data, kind, expectation, raw, recipe.wire)


def effective_expectation(probe: Probe, deflate: bool, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> Expectation:
    """``probe.expect``, corrected for a connection that negotiated permessage-deflate."""
    if not deflate:
        return probe.expect
    if probe.wire == "compressed":
        return expect_message(probe.version, probe.data, max_message_size=max_message_size)
    if probe.wire == "deflate_bomb":
        return close("inflates beyond max_message_size", 1009)
    return probe.expect


def lane_recipes(count: int, seed: int, lane: int) -> list[Recipe]:
    """The recipes of connection ``lane`` of a run with ``seed``."""
    return draw_recipes(count, seed * 131 + lane)


def lane_probes(
    version: str, recipes: Iterable[Recipe], *, lane: int = 0, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> Iterator[Probe]:
    """The probes of a lane, built one at a time (oversized ones are a megabyte each)."""
    for i, recipe in enumerate(recipes):
        yield build_probe(version, recipe, f"fz{lane}-{i}", max_message_size)


def generate_probes(
    version: str, count: int, seed: int, *, lane: int = 0, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> list[Probe]:
    """``count`` probes for connection ``lane`` of ``version``; the same for the same arguments."""
    recipes = lane_recipes(count, seed, lane)
    return list(lane_probes(version, recipes, lane=lane, max_message_size=max_message_size))


# WebSocket framing (RFC 6455), including frames no honest client sends.

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1 = 0x4


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask`` (fast for large payloads)."""
    if not data:
        return data
    size = len(data)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = b"\x00\x00\x00\x00",
    length: int | None = None,
) -> bytes:
    """One frame as a client writes it; ``mask=None`` leaves it unmasked (illegal from a client),
    ``length`` overrides the announced payload length."""
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)
    size = len(payload) if length is None else length
    mask_bit = 0x80 if mask is not None else 0
    if size < 126:
        head = bytes([first, mask_bit | size])
    elif size < 65536:
        head = bytes([first, mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([first, mask_bit | 127]) + size.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + apply_mask(payload, mask)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


VIOLATIONS = (
    "unmasked",
    "rsv2",
    "rsv3",
    "reserved_opcode",
    "long_ping",
    "fragmented_ping",
    "orphan_continuation",
    "interrupted_fragments",
    "close_one_byte",
    "close_bad_code",
    "close_bad_reason",
    "close_valid",
    "close_empty",
    "ping",
    "pong",
    "huge_length",
)


def ws_violation(index: int, rng: random.Random) -> tuple[str, bytes, Expectation]:
    """Raw frames that break (or legitimately use) RFC 6455 framing, and what the gateway must do."""
    name = VIOLATIONS[index % len(VIOLATIONS)]
    heartbeat = b'[2,"ws","Heartbeat",{}]'
    protocol_error = close("RFC 6455 protocol error", 1002)
    if name == "unmasked":
        return name, encode_frame(OP_TEXT, heartbeat, mask=None), protocol_error
    if name == "rsv2":
        return name, encode_frame(OP_TEXT, heartbeat, rsv=2), protocol_error
    if name == "rsv3":
        return name, encode_frame(OP_TEXT, heartbeat, rsv=1), protocol_error
    if name == "reserved_opcode":
        return name, encode_frame(rng.choice([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), heartbeat), protocol_error
    if name == "long_ping":
        return name, encode_frame(OP_PING, b"p" * rng.randrange(126, 300)), protocol_error
    if name == "fragmented_ping":
        return name, encode_frame(OP_PING, b"p", fin=False), protocol_error
    if name == "orphan_continuation":
        return name, encode_frame(OP_CONT, heartbeat), protocol_error
    if name == "interrupted_fragments":
        return name, encode_frame(OP_TEXT, b"[2,", fin=False) + encode_frame(OP_TEXT, heartbeat), protocol_error
    if name == "close_one_byte":
        return name, encode_frame(OP_CLOSE, b"\x03"), protocol_error
    if name == "close_bad_code":
        code = rng.choice([0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
        return name, encode_frame(OP_CLOSE, close_payload(code)), protocol_error
    if name == "close_bad_reason":
        return name, encode_frame(OP_CLOSE, close_payload(1000, b"\xff\xfe")), close("close reason not UTF-8", 1007)
    if name == "close_valid":
        code = rng.choice([1000, 1001, 3000, 4000, 4999])
        return name, encode_frame(OP_CLOSE, close_payload(code, b"bye")), close("echo of the station's close", code)
    if name == "close_empty":
        return name, encode_frame(OP_CLOSE, b""), close("echo of an empty close", 1005)
    if name == "ping":
        return (
            name,
            encode_frame(OP_PING, rng.randbytes(rng.randrange(0, 126))),
            silent("ping is answered by a pong only"),
        )
    if name == "pong":
        return name, encode_frame(OP_PONG, b"unsolicited"), silent("an unsolicited pong is ignored")
    return name, encode_frame(OP_TEXT, b"", length=2**62 + rng.randrange(1000)), close("announced length", 1009, 1002)


def probe_wire_bytes(probe: Probe, deflate: Deflate | None) -> bytes:
    """The bytes a client writes for ``probe`` (fresh mask keys; compressed when asked and possible)."""
    mask = os.urandom(4)
    opcode = OP_BINARY if probe.wire in ("binary", "oversize_binary") else OP_TEXT
    if probe.wire == "ws_violation":
        return probe.raw
    if probe.wire in ("fragmented", "oversize_fragmented"):
        pieces = _split(probe.data, 2 + probe.seed % 5)
        out = []
        for i, piece in enumerate(pieces):
            out.append(encode_frame(opcode if i == 0 else OP_CONT, piece, fin=i == len(pieces) - 1, mask=mask))
            if i == 0 and probe.seed % 3 == 0:
                out.append(encode_frame(OP_PING, b"between fragments", mask=mask))
        return b"".join(out)
    if probe.wire == "compressed":
        body = deflate.compress(probe.data) if deflate else zlib.compress(probe.data)[2:-4]
        return encode_frame(opcode, body, rsv=RSV1, mask=mask)
    if probe.wire == "deflate_bomb":
        inflated = b" " * (DEFAULT_MAX_MESSAGE_SIZE * 4)
        body = deflate.compress(inflated) if deflate else zlib.compress(inflated)[2:-4]
        return encode_frame(OP_TEXT, body, rsv=RSV1, mask=mask)
    return encode_frame(opcode, probe.data, mask=mask)


def _split(data: bytes, parts: int) -> list[bytes]:
    step = max(1, -(-len(data) // parts))
    return [data[i : i + step] for i in range(0, len(data), step)] or [b""]


class Deflate:
    """permessage-deflate (RFC 7692) as negotiated: no context takeover on our side."""

    def __init__(self, client_bits: int, server_no_context: bool) -> None:
        self.client_bits = max(9, min(15, client_bits))
        self.server_no_context = server_no_context
        self._inflater = zlib.decompressobj(-15)

    def compress(self, data: bytes) -> bytes:
        deflater = zlib.compressobj(wbits=-self.client_bits)
        body = deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)
        return body[:-4] if body.endswith(b"\x00\x00\xff\xff") else body

    def decompress(self, data: bytes) -> bytes:
        if self.server_no_context:
            self._inflater = zlib.decompressobj(-15)
        return self._inflater.decompress(data + b"\x00\x00\xff\xff")

    @classmethod
    def from_header(cls, value: str) -> Deflate | None:
        """The agreement in a server's Sec-WebSocket-Extensions header, if it accepted permessage-deflate."""
        for offer in value.split(","):
            params = [part.strip() for part in offer.split(";")]
            if params[0] != "permessage-deflate":
                continue
            bits, no_context = 15, False
            for param in params[1:]:
                key, _, val = param.partition("=")
                if key.strip() == "client_max_window_bits" and val.strip().strip('"').isdigit():
                    bits = int(val.strip().strip('"'))
                elif key.strip() == "server_no_context_takeover":
                    no_context = True
            return cls(bits, no_context)
        return None


# The raw client.


@dataclass(frozen=True, slots=True)
class Message:
    text: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer's close frame (1005 when it had no code)."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Lost:
    """The TCP connection ended without a close frame: ``how`` is eof, reset or a protocol fault."""

    how: str


Event = Message | Closed | Lost


@dataclass
class HttpReply:
    """The server's answer to an opening handshake, or how the attempt ended without one."""

    status: int | None
    headers: list[tuple[str, str]]
    ending: str
    """``response`` (a status line and headers came), ``eof``, ``garbage`` (bytes, then the end, or an
    endless head), ``reset``, ``timeout``, ``refused`` (no TCP connection) or ``bad Sec-WebSocket-Accept``."""
    elapsed: float
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept a server must return for ``key`` (RFC 6455 §4.2.2)."""
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


def upgrade_request(
    host: str,
    port: int,
    path: str,
    *,
    key: str,
    subprotocols: Iterable[str] = (),
    deflate: bool = False,
    drop: Iterable[str] = (),
    extra: Iterable[tuple[str, str]] = (),
) -> bytes:
    """An opening handshake request; ``drop`` leaves out headers by (lower-case) name."""
    headers = [
        ("Host", f"{host}:{port}"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    offered = list(subprotocols)
    if offered:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(offered)))
    if deflate:
        headers.append(
            (
                "Sec-WebSocket-Extensions",
                "permessage-deflate; client_max_window_bits; server_no_context_takeover; client_no_context_takeover",
            )
        )
    dropped = {name.lower() for name in drop}
    lines = [f"GET {path} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in dropped]
    lines += [f"{k}: {v}" for k, v in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


async def http_exchange(
    host: str, port: int, request: bytes, timeout: float, *, ssl_context: ssl.SSLContext | None = None
) -> HttpReply:
    """Connect, write ``request``, read the response head; the streams stay open on a response."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ssl_context), timeout)
    except (OSError, TimeoutError):
        return HttpReply(None, [], "refused", time.monotonic() - started)
    writer.write(request)
    return await read_http_reply(reader, writer, started, timeout)


async def read_http_reply(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, started: float, timeout: float
) -> HttpReply:
    """Read a response head; EOF, reset or timeout before one is reported as the ``ending``."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), max(0.0, started + timeout - time.monotonic()))
    except asyncio.IncompleteReadError as error:
        _abort(writer)
        return HttpReply(None, [], "eof" if not error.partial else "garbage", time.monotonic() - started)
    except (ConnectionError, OSError):
        _abort(writer)
        return HttpReply(None, [], "reset", time.monotonic() - started)
    except asyncio.LimitOverrunError:
        _abort(writer)
        return HttpReply(None, [], "garbage", time.monotonic() - started)
    except TimeoutError:
        _abort(writer)
        return HttpReply(None, [], "timeout", time.monotonic() - started)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:] if line)]
    return HttpReply(status, headers, "response", time.monotonic() - started, reader, writer)


def _abort(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.transport.abort()


async def wait_eof(reader: asyncio.StreamReader, timeout: float) -> str:
    """Read and drop until the server ends the connection: ``eof``, ``reset`` or ``timeout``."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), max(0.0, deadline - time.monotonic()))
            if not chunk:
                return "eof"
    except (ConnectionError, OSError):
        return "reset"
    except TimeoutError:
        return "timeout"


class RawConnection:
    """An open WebSocket over bare streams: writes any bytes, reports events in arrival order.

    Pings are answered; a close frame is echoed (unless we sent one) and reported as
    :class:`Closed`; the end of TCP without a close frame is reported as :class:`Lost`.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        subprotocol: str | None,
        deflate: Deflate | None,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.subprotocol, self.deflate = subprotocol, deflate
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.close_sent = False
        self.close_received: Closed | None = None
        self.tcp_end = ""
        self.server_faults: list[str] = []
        self._task = asyncio.create_task(self._read_loop())

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        path: str,
        subprotocols: list[str],
        *,
        deflate: bool = False,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> tuple[RawConnection | None, HttpReply]:
        """Handshake; the connection when the server switched protocols (101), and its reply."""
        key = new_key()
        request = upgrade_request(host, port, path, key=key, subprotocols=subprotocols, deflate=deflate)
        reply = await http_exchange(host, port, request, timeout, ssl_context=ssl_context)
        if reply.status != 101 or reply.reader is None or reply.writer is None:
            _abort(reply.writer)
            return None, reply
        if reply.header("Sec-WebSocket-Accept") != accept_key(key):
            _abort(reply.writer)
            reply.ending = "bad Sec-WebSocket-Accept"
            return None, reply
        agreed = Deflate.from_header(reply.header("Sec-WebSocket-Extensions") or "") if deflate else None
        return cls(reply.reader, reply.writer, reply.header("Sec-WebSocket-Protocol"), agreed), reply

    def write(self, data: bytes) -> None:
        """Write raw bytes (one or more frames) in one piece, so they never interleave with a pong."""
        if not self.writer.is_closing():
            self.writer.write(data)

    def send_text(self, text: str) -> None:
        self.write(encode_frame(OP_TEXT, text.encode(), mask=os.urandom(4)))

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.drain()

    async def close(self, code: int = 1000, timeout: float = 5.0) -> None:
        """Close handshake from our side (if the server has not closed), then wait for the TCP end."""
        if not self.close_sent and self.close_received is None:
            self.close_sent = True
            self.write(encode_frame(OP_CLOSE, close_payload(code), mask=os.urandom(4)))
            await self.drain()
        await self.finish(timeout)

    async def finish(self, timeout: float = 5.0) -> str:
        """Wait until the server ends TCP (``eof``/``reset``), or give up (``timeout``); always releases the socket."""
        try:
            if not self._task.done():
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self.tcp_end = self.tcp_end or "timeout"
        finally:
            self.abort()
        return self.tcp_end

    def abort(self) -> None:
        self._task.cancel()
        _abort(self.writer)

    async def _read_loop(self) -> None:
        fragments: list[bytes] = []
        compressed = False
        try:
            while True:
                b0, b1 = await self.reader.readexactly(2)
                fin, rsv, opcode = bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0xF
                size = b1 & 0x7F
                if size == 126:
                    size = int.from_bytes(await self.reader.readexactly(2), "big")
                elif size == 127:
                    size = int.from_bytes(await self.reader.readexactly(8), "big")
                if b1 & 0x80:
                    self.server_faults.append("masked frame from the server")
                    mask = await self.reader.readexactly(4)
                    payload = apply_mask(await self.reader.readexactly(size), mask)
                else:
                    payload = await self.reader.readexactly(size)
                if self.close_received is not None:
                    continue
                if opcode == OP_PING:
                    if not self.close_sent:
                        self.write(encode_frame(OP_PONG, payload, mask=os.urandom(4)))
                    continue
                if opcode == OP_PONG:
                    continue
                if opcode == OP_CLOSE:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                    self.close_received = Closed(code, payload[2:].decode("utf-8", "replace"))
                    self.events.put_nowait(self.close_received)
                    if not self.close_sent:
                        self.close_sent = True
                        self.write(encode_frame(OP_CLOSE, payload[:2], mask=os.urandom(4)))
                    continue
                if opcode in (OP_TEXT, OP_BINARY):
                    fragments, compressed = [payload], bool(rsv & RSV1)
                elif opcode == OP_CONT:
                    fragments.append(payload)
                else:
                    self.server_faults.append(f"frame with opcode {opcode} from the server")
                    continue
                if fin:
                    data = b"".join(fragments)
                    if compressed and self.deflate is not None:
                        data = self.deflate.decompress(data)
                    try:
                        self.events.put_nowait(Message(data.decode("utf-8")))
                    except UnicodeDecodeError:
                        self.server_faults.append("server message is not UTF-8")
                        self.events.put_nowait(Message(data.decode("utf-8", "replace")))
                    fragments = []
        except asyncio.IncompleteReadError:
            self.tcp_end = "eof"
        except (ConnectionError, OSError):
            self.tcp_end = "reset"
        except zlib.error:
            self.tcp_end = "bad deflate data from the server"
        except Exception as error:  # a bug here must show as a finding, not as a silent hang
            self.tcp_end = f"client fault {error!r}"
        if self.close_received is None:
            self.events.put_nowait(Lost(self.tcp_end))


async def next_event(connection: RawConnection, deadline: float) -> Event | None:
    """The connection's next event, or None at ``deadline`` (a loop time from time.monotonic())."""
    try:
        return await asyncio.wait_for(connection.events.get(), max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        return None


def split_url(url: str) -> tuple[str, int, str, ssl.SSLContext | None]:
    """Host, port, path (without trailing slash) and TLS context of a ``ws://`` or ``wss://`` URL."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    context = ssl.create_default_context() if secure else None
    if context is not None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return parts.hostname or "127.0.0.1", parts.port or (443 if secure else 80), parts.path.rstrip("/"), context


# Counting violations.


@dataclass
class Tally:
    """Violations as counted findings: all counted, the first ``keep`` described."""

    keep: int = 20
    count: int = 0
    first: list[str] = field(default_factory=list)

    def add(self, description: str) -> None:
        self.count += 1
        if len(self.first) < self.keep:
            self.first.append(description[:600])


def preview(data: bytes, size: int = 100) -> str:
    shown = data[:size].decode("utf-8", "backslashreplace")
    return shown + (f"... ({len(data)} bytes)" if len(data) > size else "")


# 1. Fuzzing frames.


@dataclass
class _Outstanding:
    """A probe whose answer is due, or the barrier that proves the silence of the probes before it."""

    probe: Probe | None
    expect: Expectation
    number: int
    seq: int
    """Order of sending on the connection (probes and barriers alike)."""


@dataclass
class FuzzReport:
    frames: int = 0
    answered: int = 0
    silent: int = 0
    gateway_errors: Counter[str] = field(default_factory=Counter)
    csms_answers: Counter[str] = field(default_factory=Counter)
    closes: Counter[int] = field(default_factory=Counter)
    wires: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    barriers: int = 0
    violations: Tally = field(default_factory=Tally)


class _Lane:
    """One station connection running its share of the probes, as fast as the oracle allows.

    Probes whose answers come straight from the gateway (CALLERRORs, silence) are pipelined, up
    to BATCH of them; the gateway answers them in order. A probe that reaches the CSMS is the one
    CALL in flight: the next such probe waits for its answer. Silence is proved by a barrier, a
    CALL with an array payload that the gateway refuses at once, sent after the silent probes:
    its CALLERROR arrives after anything they could have caused. A probe that must close the
    connection is sent alone, after everything before it was settled; then the lane reconnects.
    """

    BATCH = 24

    def __init__(self, run: _FuzzRun, index: int, version: str, offer_deflate: bool) -> None:
        self.run, self.index, self.version, self.offer_deflate = run, index, version, offer_deflate
        self.station_id = f"{run.station_prefix}{index}"
        self.connection: RawConnection | None = None
        self.ordered: deque[_Outstanding] = deque()
        self.in_flight: _Outstanding | None = None
        self.unproven: list[_Outstanding] = []
        self.barrier_seq = 0
        self.probe_number = 0
        self.seq = 0
        self.answered_seq = 0
        """Send order of the last probe whose in-order answer came: a stray answer comes from a later one."""

    @property
    def report(self) -> FuzzReport:
        return self.run.report

    def violation(self, what: str, item: _Outstanding | None = None) -> None:
        where = f"{self.station_id} ({self.version})"
        if item is not None and item.probe is not None:
            probe = item.probe
            where += f" probe #{item.number} {probe.name}: {preview(probe.raw if probe.raw else probe.data)!r}"
        self.report.violations.add(f"{where}: {what}")

    async def connect(self) -> bool:
        for attempt in range(40):
            connection, reply = await RawConnection.open(
                self.run.host,
                self.run.port,
                f"{self.run.path}/{self.station_id}",
                [self.version],
                deflate=self.offer_deflate,
                timeout=self.run.answer_timeout,
                ssl_context=self.run.ssl_context,
            )
            if connection is not None:
                if connection.subprotocol != self.version:
                    self.violation(f"handshake agreed {connection.subprotocol!r}, offered only {self.version}")
                    connection.abort()
                    return False
                self.connection = connection
                return True
            if reply.status not in (503, None) or attempt == 39:
                self.violation(f"reconnect refused: {reply.status} {reply.ending}")
                return False
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt) if reply.status == 503 else 0.05)
        return False

    async def run_probes(self, probes: Iterable[Probe]) -> None:
        try:
            for probe in probes:
                if self.connection is None:
                    if not await self.connect():
                        return
                    self.report.reconnects += 1
                await self.send_probe(probe)
            await self.settle(wait_forwarded=True)
        finally:
            if self.connection is not None:
                await self.connection.close()
                self.connection = None

    def ids_outstanding(self) -> set[str]:
        ids = {item.expect.message_id for item in self.ordered}
        if self.in_flight is not None:
            ids.add(self.in_flight.expect.message_id)
        return ids

    async def send_probe(self, probe: Probe) -> None:
        connection = self.connection
        assert connection is not None
        expect = effective_expectation(probe, connection.deflate is not None, self.run.max_message_size)
        self.probe_number += 1
        number = self.probe_number
        if expect.outcome == "close":
            await self.settle(wait_forwarded=True)
            if self.connection is None and not await self.connect():
                return
            self.seq += 1
            await self.closing_probe(_Outstanding(probe, expect, number, self.seq))
            return
        if expect.outcome == "answer":
            # One CALL in flight, and an id is outstanding once: otherwise answers could not be told apart.
            flight_id = self.in_flight.expect.message_id if self.in_flight is not None else None
            busy = expect.forwarded and (flight_id is not None or expect.message_id in self.ids_outstanding())
            if busy or expect.message_id == flight_id:
                await self.settle(wait_forwarded=True)
            elif any(_id_in(other.probe.data, expect.message_id) for other in self.unproven if other.probe is not None):
                # A wrong answer to an earlier silent probe could pass for this answer: prove the silence first.
                await self.settle(wait_forwarded=False)
        elif self.unproven:
            # One unproven silent probe at a time, so that a stray answer names its probe exactly.
            await self.settle(wait_forwarded=False)
        if self.connection is None and not await self.connect():
            return
        connection = self.connection
        assert connection is not None
        self.seq += 1  # after any barrier the settling above sent: seq is the order on the wire
        item = _Outstanding(probe, expect, number, self.seq)
        connection.write(probe_wire_bytes(probe, connection.deflate))
        await connection.drain()
        self.report.frames += 1
        self.report.wires[probe.wire] += 1
        if expect.outcome == "answer" and expect.forwarded:
            self.in_flight = item
        elif expect.outcome == "answer":
            self.ordered.append(item)
        else:
            self.unproven.append(item)
        if len(self.ordered) + len(self.unproven) >= self.BATCH:
            await self.settle(wait_forwarded=False)

    async def closing_probe(self, item: _Outstanding) -> None:
        connection = self.connection
        assert connection is not None and item.probe is not None
        if item.probe.wire == "ws_violation" and item.probe.raw[:1] and item.probe.raw[0] & 0xF == OP_CLOSE:
            connection.close_sent = True
        connection.write(probe_wire_bytes(item.probe, connection.deflate))
        await connection.drain()
        self.report.frames += 1
        self.report.wires[item.probe.wire] += 1
        deadline = time.monotonic() + self.run.answer_timeout
        while True:
            event = await next_event(connection, deadline)
            if event is None:
                self.violation(
                    f"no close within {self.run.answer_timeout:g} s; expected {item.expect.describe()}", item
                )
                break
            if isinstance(event, Message):
                self.violation(f"sent {event.text[:120]!r}; expected {item.expect.describe()}", item)
                continue
            if isinstance(event, Lost):
                self.violation(
                    f"connection lost without a close frame ({event.how}); expected {item.expect.describe()}", item
                )
                break
            if event.code in item.expect.close_codes:
                self.report.closes[event.code] += 1
            else:
                self.violation(f"closed with {event.code} {event.reason!r}; expected {item.expect.describe()}", item)
            break
        await self.drop_connection(clean=True)

    async def drop_connection(self, clean: bool) -> None:
        connection, self.connection = self.connection, None
        self.ordered.clear()
        self.unproven.clear()
        self.in_flight = None
        if connection is None:
            return
        if clean:
            ending = await connection.finish(5.0)
            if ending == "timeout":
                self.violation("TCP left open 5 s after the close handshake")
        else:
            connection.abort()
        for fault in connection.server_faults[:3]:
            self.violation(f"server broke RFC 6455: {fault}")

    async def settle(self, wait_forwarded: bool) -> None:
        """Wait for every answer due (and the CSMS's answer when asked); prove pending silence."""
        connection = self.connection
        if connection is None:
            return
        if self.unproven:
            self.barrier_seq += 1
            barrier_id = f"~b{self.index}.{self.barrier_seq}"
            connection.send_text(f'[2,"{barrier_id}","FuzzBarrier",[]]')
            await connection.drain()
            self.report.barriers += 1
            expect = answer(barrier_id, "barrier", fault_code(self.version, "bad_payload"))
            self.seq += 1
            self.ordered.append(_Outstanding(None, expect, 0, self.seq))
        deadline = time.monotonic() + self.run.answer_timeout
        while self.ordered or (wait_forwarded and self.in_flight is not None):
            event = await next_event(connection, deadline)
            if event is None:
                for item in [*self.ordered, *([self.in_flight] if self.in_flight else [])]:
                    self.violation(
                        f"no answer within {self.run.answer_timeout:g} s; expected {item.expect.describe()}", item
                    )
                await self.drop_connection(clean=False)
                return
            if isinstance(event, Message):
                self.on_message(event.text)
                continue
            what = (
                f"closed with {event.code} {event.reason!r}"
                if isinstance(event, Closed)
                else f"connection lost without a close frame ({event.how})"
            )
            outstanding = [*self.ordered, *([self.in_flight] if self.in_flight else [])]
            self.violation(f"{what} while {len(outstanding)} answers were due")
            for item in outstanding[:2]:
                self.violation(f"{what}; expected {item.expect.describe()}", item)
            await self.drop_connection(clean=isinstance(event, Closed))
            return

    def on_message(self, text: str) -> None:
        head = answer_head(text)
        if head is None:
            self.violation(f"gateway sent a frame that is no OCPP-J answer: {text[:200]!r}")
            return
        message_type, message_id = head
        flight = self.in_flight
        if flight is not None and message_id == flight.expect.message_id and message_type in (3, 4):
            self.in_flight = None
            self.judge(text, flight, forwarded=True)
            return
        # The gateway answers frames in the order it reads them, so an answer that is not the one
        # due next skipped the answers before it, or came from the earliest probe still pending.
        # "-1" names no frame: it is the likeliest wrong id for the answer due, not a sign it was skipped.
        match = next(
            (
                k
                for k, item in enumerate(self.ordered)
                if item.expect.message_id == message_id and (k == 0 or message_id != UNREADABLE_ID)
            ),
            None,
        )
        if match is not None:
            for _ in range(match):
                skipped = self.ordered.popleft()
                self.violation(f"no answer (a later one came first); expected {skipped.expect.describe()}", skipped)
            item = self.ordered.popleft()
            self.answered_seq = item.seq
            self.judge(text, item, forwarded=False)
            if item.probe is None:
                self.report.silent += len(self.unproven)
                self.unproven.clear()
            return
        due = self.ordered[0] if self.ordered else None
        earlier_silent = [i for i in self.unproven if (due is None or i.seq < due.seq) and i.seq > self.answered_seq]
        if earlier_silent:
            culprit = earlier_silent[0]
            self.unproven.remove(culprit)
            others = (
                f" (or one of the {len(earlier_silent) - 1} ignored probes after it)" if len(earlier_silent) > 1 else ""
            )
            self.violation(f"answered {text[:160]!r}{others}; expected {culprit.expect.describe()}", culprit)
        elif due is not None and due.probe is not None:
            self.answered_seq = due.seq
            self.ordered.popleft()
            problem, _ = judge_answer(text, due.expect)
            self.violation(f"{problem}: got {text[:160]!r}; expected {due.expect.describe()}", due)
        else:
            self.violation(f"unexpected frame {text[:160]!r}")

    def judge(self, text: str, item: _Outstanding, forwarded: bool) -> None:
        problem, kind = judge_answer(text, item.expect)
        if problem is not None:
            self.violation(f"{problem}: got {text[:160]!r}; expected {item.expect.describe()}", item)
            return
        if item.probe is None:
            return
        self.report.answered += 1
        if forwarded and not (kind in item.expect.codes and kind != "CALLRESULT"):
            self.report.csms_answers[kind] += 1
        else:
            self.report.gateway_errors[kind] += 1


def _id_in(data: bytes, message_id: str) -> bool:
    return message_id == UNREADABLE_ID or json.dumps(message_id).encode() in data


@dataclass
class _FuzzRun:
    host: str
    port: int
    path: str
    ssl_context: ssl.SSLContext | None
    max_message_size: int
    answer_timeout: float
    station_prefix: str
    report: FuzzReport = field(default_factory=FuzzReport)


async def fuzz_frames(
    url: str,
    frames: int,
    seed: int,
    *,
    connections: int = 6,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    answer_timeout: float = 35.0,
    deflate: bool = True,
    station_prefix: str = "FUZZ_",
) -> dict[str, Any]:
    """Send ``frames`` fuzzed probes to the gateway at ``url`` and judge every reaction.

    ``connections`` stations (``<station_prefix><n>``, versions in turn, every second one
    offering permessage-deflate when ``deflate``) share the probes; the probes are the same for
    the same seed and connection count. ``answer_timeout`` bounds every wait (keep it above the
    gateway's ``csms_response_timeout``); ``max_message_size`` must be the gateway's.
    """
    host, port, path, ssl_context = split_url(url)
    lanes = max(1, min(connections, frames or 1))
    shares = [frames // lanes + (1 if n < frames % lanes else 0) for n in range(lanes)]
    versions = [VERSIONS[n % len(VERSIONS)] for n in range(lanes)]

    def generate() -> list[list[Recipe]]:
        return [lane_recipes(shares[n], seed, n) for n in range(lanes)]

    recipes = await asyncio.to_thread(generate)  # hypothesis is CPU work: keep the event loop free
    run = _FuzzRun(host, port, path, ssl_context, max_message_size, answer_timeout, station_prefix)
    started = time.monotonic()
    workers = [_Lane(run, n, versions[n], deflate and n % 2 == 1) for n in range(lanes)]
    await asyncio.gather(
        *(
            lane.run_probes(lane_probes(versions[n], recipes[n], lane=n, max_message_size=max_message_size))
            for n, lane in enumerate(workers)
        )
    )
    seconds = time.monotonic() - started
    report = run.report
    return {
        "frames": report.frames,
        "answered": report.answered,
        "gateway_errors": dict(report.gateway_errors),
        "csms_answers": dict(report.csms_answers),
        "silent": report.silent,
        "closes": dict(report.closes),
        "violations": report.violations.first,
        "violation_count": report.violations.count,
        "seconds": round(seconds, 2),
        "frames_per_second": round(report.frames / seconds, 1) if seconds else 0.0,
        "wires": dict(report.wires),
        "reconnects": report.reconnects,
        "barriers": report.barriers,
        "connections": lanes,
    }


# 2. Handshake abuse.


@dataclass(frozen=True, slots=True)
class HandshakeCase:
    """One opening handshake attempt and the outcomes a correct gateway may give it.

    Outcomes: ``101`` (switched, with ``protocol`` when given), ``101+<code>`` (switched without a
    subprotocol, then closed with code), an HTTP status (``400``) or class (``4xx``), ``eof``
    (closed without a response). ``mode``: ``once`` writes ``request`` and reads the reply;
    ``stall`` writes it (a partial request) and waits for the gateway to give up; ``drip``
    writes it a byte at a time, too slowly to finish within the handshake timeout.
    """

    name: str
    request: bytes
    expect: frozenset[str]
    protocol: str | None = None
    mode: str = "once"
    key: str = ""


def outcome_ok(observed: str, expected: frozenset[str]) -> bool:
    """True when the ``observed`` outcome is one of ``expected`` (``4xx`` covers any 4xx status)."""
    if observed in expected:
        return True
    return len(observed) == 3 and observed.isdigit() and f"{observed[0]}xx" in expected


def handshake_cases(host: str, port: int, prefix: str = "/ocpp") -> list[HandshakeCase]:
    """The handshake abuse cases (pure), with the expectations of the README and RFC 6455."""
    cases: list[HandshakeCase] = []
    busy = {"503"}

    def case(
        name: str,
        path: str,
        expect: set[str],
        *,
        subprotocols: Iterable[str] = ("ocpp2.0.1",),
        protocol: str | None = None,
        drop: Iterable[str] = (),
        extra: Iterable[tuple[str, str]] = (),
        may_be_busy: bool = True,
    ) -> None:
        key = new_key()
        request = upgrade_request(host, port, path, key=key, subprotocols=subprotocols, drop=drop, extra=extra)
        outcomes = expect | busy if may_be_busy else expect
        cases.append(HandshakeCase(name, request, frozenset(outcomes), protocol, "once", key))

    for version in VERSIONS:
        case(
            f"valid_{version}",
            f"{prefix}/HS_OK_{version.replace('.', '')}",
            {"101"},
            subprotocols=[version],
            protocol=version,
            may_be_busy=False,
        )
    case("preference_order", f"{prefix}/HS_PREF", {"101"}, subprotocols=["ocpp2.1", "ocpp1.6"], protocol="ocpp2.1")
    case("id_48_chars", f"{prefix}/{'H' * MAX_STATION_ID_LENGTH}", {"101"}, protocol="ocpp2.0.1")
    case("id_49_chars", f"{prefix}/{'H' * (MAX_STATION_ID_LENGTH + 1)}", {"400"})
    case("id_1000_chars", f"{prefix}/{'H' * 1000}", {"400"})
    case("id_request_line_9000", f"{prefix}/{'H' * 9000}", {"4xx"}, may_be_busy=False)
    case("id_colon", f"{prefix}/HS:COLON", {"400"})
    case("id_colon_encoded", f"{prefix}/HS%3ACOLON", {"400"})
    case("id_nul_encoded", f"{prefix}/HS%00NUL", {"400"})
    case("id_newline_encoded", f"{prefix}/HS%0ANL", {"400"})
    case("id_del_encoded", f"{prefix}/HS%7FDEL", {"400"})
    case("id_bad_percent_zz", f"{prefix}/HS%zzBAD", {"400"})
    case("id_bad_percent_trailing", f"{prefix}/HS_BAD%", {"400"})
    case("id_bad_percent_short", f"{prefix}/HS_BAD%4", {"400"})
    case("id_percent_invalid_utf8", f"{prefix}/HS%ff%feBAD", {"400"})
    case("id_slash_encoded", f"{prefix}/HS%2FSLASH", {"400"})
    case("id_space_encoded_49", f"{prefix}/{'%20' * 49}", {"400"})
    case("id_percent_utf8_ok", f"{prefix}/HS_%C3%A9", {"101"}, protocol="ocpp2.0.1")
    case("path_dotdot", f"{prefix}/../HS_DOTDOT", {"101"}, protocol="ocpp2.0.1")
    case("path_trailing_slash", f"{prefix}/HS_TRAIL/", {"400"})
    case("path_double_slash", "//", {"400"})
    case("path_root", "/", {"400"})
    case("path_empty_id", f"{prefix}/", {"400"})
    case("path_query", f"{prefix}/HS_QUERY?a=1&b=%zz", {"101"}, protocol="ocpp2.0.1")
    case("path_fragment", f"{prefix}/HS_FRAG#frag", {"101", "400"})
    case("path_absolute_form", f"http://{host}:{port}{prefix}/HS_ABS", {"101", "4xx", "eof"})
    # "*" has no slash: the whole target is the last segment, and "*" is a valid identifierString.
    case("path_asterisk", "*", {"101", "400", "eof"})
    cases.append(
        HandshakeCase(
            "path_raw_non_ascii",
            upgrade_request(host, port, f"{prefix}/HS_RAW", key=new_key(), subprotocols=["ocpp2.0.1"]).replace(
                b"HS_RAW", b"HS_\xc3\xa9\xff"
            ),
            frozenset({"400", "eof"}),
        )
    )
    case("missing_upgrade", f"{prefix}/HS_NOUP", {"4xx"}, drop=["upgrade"])
    case("missing_connection", f"{prefix}/HS_NOCONN", {"4xx"}, drop=["connection"])
    case("missing_key", f"{prefix}/HS_NOKEY", {"4xx"}, drop=["sec-websocket-key"])
    case("bad_key", f"{prefix}/HS_BADKEY", {"4xx"}, drop=["sec-websocket-key"], extra=[("Sec-WebSocket-Key", "short")])
    case(
        "duplicate_key",
        f"{prefix}/HS_DUPKEY",
        {"4xx"},
        extra=[("Sec-WebSocket-Key", new_key())],
    )
    case("missing_version", f"{prefix}/HS_NOVER", {"4xx"}, drop=["sec-websocket-version"])
    case(
        "wrong_version",
        f"{prefix}/HS_BADVER",
        {"4xx"},
        drop=["sec-websocket-version"],
        extra=[("Sec-WebSocket-Version", "8")],
    )
    case(
        "duplicate_subprotocol_headers",
        f"{prefix}/HS_DUPPROTO",
        {"101"},
        subprotocols=["ocpp1.6"],
        extra=[("Sec-WebSocket-Protocol", "ocpp2.0.1")],
    )
    case(
        "repeated_subprotocol",
        f"{prefix}/HS_REPPROTO",
        {"101"},
        subprotocols=["ocpp2.0.1", "ocpp2.0.1"],
        protocol="ocpp2.0.1",
    )
    case("unknown_subprotocols_only", f"{prefix}/HS_UNKPROTO", {"101+1002"}, subprotocols=["ocpp9.9", "chat"])
    case("no_subprotocol", f"{prefix}/HS_NOPROTO", {"101+1002"}, subprotocols=[])
    case("subprotocol_wrong_case", f"{prefix}/HS_CASEPROTO", {"101+1002", "101"}, subprotocols=["OCPP2.0.1"])
    case(
        "empty_subprotocol_header",
        f"{prefix}/HS_EMPTYPROTO",
        {"101+1002", "4xx"},
        subprotocols=[],
        extra=[("Sec-WebSocket-Protocol", "")],
    )
    case(
        "garbage_authorization",
        f"{prefix}/HS_AUTH",
        {"101", "401"},
        extra=[("Authorization", "Basic !!!not-base64!!!")],
    )
    case(
        "long_header_line", f"{prefix}/HS_LONGHDR", {"4xx", "eof"}, extra=[("X-Fuzz", "a" * 10_000)], may_be_busy=False
    )
    case(
        "too_many_headers",
        f"{prefix}/HS_MANYHDR",
        {"4xx", "eof"},
        extra=[(f"X-F{i}", "x") for i in range(200)],
        may_be_busy=False,
    )
    garbage = random.Random(7).randbytes(600)
    cases += [
        HandshakeCase("garbage", garbage, frozenset({"eof", "4xx"})),
        HandshakeCase(
            "tls_client_hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64), frozenset({"eof", "4xx"})
        ),
        HandshakeCase("empty_lines", b"\r\n\r\n", frozenset({"eof", "4xx"})),
        HandshakeCase(
            "http_1_0",
            upgrade_request(host, port, f"{prefix}/HS_H10", key=new_key(), subprotocols=["ocpp2.0.1"]).replace(
                b"HTTP/1.1", b"HTTP/1.0"
            ),
            frozenset({"eof", "4xx", "505"}),
        ),
        HandshakeCase(
            "post_method",
            upgrade_request(host, port, f"{prefix}/HS_POST", key=new_key(), subprotocols=["ocpp2.0.1"]).replace(
                b"GET ", b"POST ", 1
            ),
            frozenset({"eof", "4xx"}),
        ),
        HandshakeCase(
            "request_body",
            upgrade_request(
                host,
                port,
                f"{prefix}/HS_BODY",
                key=new_key(),
                subprotocols=["ocpp2.0.1"],
                extra=[("Content-Length", "5")],
            )
            + b"hello",
            frozenset({"eof", "4xx"}),
        ),
        HandshakeCase(
            "bare_lf_lines",
            upgrade_request(host, port, f"{prefix}/HS_LF", key=new_key(), subprotocols=["ocpp2.0.1"]).replace(
                b"\r\n", b"\n"
            ),
            frozenset({"eof", "4xx", "timeout_close"}),
            mode="stall",
        ),
        HandshakeCase(
            "half_request",
            upgrade_request(host, port, f"{prefix}/HS_HALF", key=new_key(), subprotocols=["ocpp2.0.1"])[:60],
            frozenset({"timeout_close"}),
            mode="stall",
        ),
        HandshakeCase("silent_client", b"", frozenset({"timeout_close"}), mode="stall"),
        HandshakeCase(
            "drip_request",
            upgrade_request(host, port, f"{prefix}/HS_DRIP", key=new_key(), subprotocols=["ocpp2.0.1"]),
            frozenset({"timeout_close"}),
            mode="drip",
        ),
    ]
    return cases


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


# 3. Call flood.

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


__all__ = [
    "Expectation",
    "HandshakeCase",
    "Probe",
    "Recipe",
    "call_flood",
    "effective_expectation",
    "expect_message",
    "fuzz_frames",
    "generate_probes",
    "handshake_abuse",
    "handshake_cases",
    "judge_answer",
    "outcome_ok",
]
