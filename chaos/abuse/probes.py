"""Probes: a recipe turned into a message, its expectation, and the bytes that carry it on the wire.

Pure: :func:`build_probe` applies a recipe's mutations to a base frame and asks the oracle what a
correct gateway does with the result; :func:`ws_violation` gives raw frames that break (or
legitimately use) RFC 6455; :func:`probe_wire_bytes` frames a probe as text, binary, fragments,
compressed or a deflate bomb.
"""

from __future__ import annotations

import os
import random
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .framing import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RSV1,
    Deflate,
    close_payload,
    encode_frame,
)
from .mutations import STRUCTURE_MUTATIONS, _mutate_structure, _mutate_text, base_frames, dump_json
from .oracle import DEFAULT_MAX_MESSAGE_SIZE, Expectation, close, expect_message, silent
from .recipes import Recipe, draw_recipes, wire_kind


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
