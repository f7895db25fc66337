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

Modules, each importing only those listed before it:

- :mod:`.oracle`: the rules probes are judged by, and judging the gateway's answers.
- :mod:`.framing`: RFC 6455 frame encoding and permessage-deflate.
- :mod:`.tally`: violations counted, the first few described.
- :mod:`.mutations`: valid base frames, hostile values and the mutations.
- :mod:`.recipes`: recipes (base, mutations, wire form), drawn by hypothesis for a seed.
- :mod:`.probes`: a recipe made into a probe with its expectation, and its bytes on the wire.
- :mod:`.client`: the raw handshake and WebSocket client.
- :mod:`.lane`: 1. fuzzing frames, one station connection probing and judging.
- :mod:`.fuzz`: 1. fuzzing frames, the driver sharing probes among lanes (:func:`fuzz_frames`).
- :mod:`.handshakes`: 2. the handshake cases (pure); :mod:`.handshake_io` runs them (:func:`handshake_abuse`).
- :mod:`.flood`: 3. the call flood (:func:`call_flood`).

This package re-exports the names chaos/run.py and tests/test_abuse.py use, so that
``from chaos import abuse`` and ``abuse.<name>`` keep working.
"""

from __future__ import annotations

from .client import accept_key, upgrade_request
from .flood import call_flood, flood_answer_kind
from .framing import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, Deflate, apply_mask, encode_frame
from .fuzz import fuzz_frames
from .handshake_io import handshake_abuse
from .handshakes import HandshakeCase, handshake_cases, outcome_ok
from .lane import _FuzzRun, _Lane, _Outstanding
from .mutations import MUTATIONS, base_frames
from .oracle import UNREADABLE_ID, VERSIONS, Expectation, answer, expect_message, judge_answer, silent, strict_json
from .probes import (
    VIOLATIONS,
    Probe,
    build_probe,
    effective_expectation,
    generate_probes,
    probe_wire_bytes,
    ws_violation,
)
from .recipes import RECIPE_POOL, WIRE_KINDS, Recipe, draw_recipes

# The private names are the fuzz lane's internals, which tests/test_abuse.py drives directly.
__all__ = [
    "MUTATIONS",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_TEXT",
    "RECIPE_POOL",
    "UNREADABLE_ID",
    "VERSIONS",
    "VIOLATIONS",
    "WIRE_KINDS",
    "Deflate",
    "Expectation",
    "HandshakeCase",
    "Probe",
    "Recipe",
    "_FuzzRun",
    "_Lane",
    "_Outstanding",
    "accept_key",
    "answer",
    "apply_mask",
    "base_frames",
    "build_probe",
    "call_flood",
    "draw_recipes",
    "effective_expectation",
    "encode_frame",
    "expect_message",
    "flood_answer_kind",
    "fuzz_frames",
    "generate_probes",
    "handshake_abuse",
    "handshake_cases",
    "judge_answer",
    "outcome_ok",
    "probe_wire_bytes",
    "silent",
    "strict_json",
    "upgrade_request",
    "ws_violation",
]
