"""What probes are made of: valid base frames per OCPP version, hostile values, and the mutations.

Pure and seeded: each mutation takes its own ``random.Random``, so the same recipe gives the same
bytes. :class:`Raw` lets a frame carry JSON text that ``json.dumps`` cannot produce (huge or
non-finite numbers, lone surrogates).
"""

from __future__ import annotations

import json
import random
from typing import Any


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
