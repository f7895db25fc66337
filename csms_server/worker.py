"""The reference CSMS worker: the handler table of ``handlers.py`` served by the SDK's worker.

Everything about Kafka (the ``csms_server`` consumer group, answers on the reply partition, offsets
committed only after Kafka acknowledged the answers, the consumer replaced when it stops making
progress, unreadable records logged and skipped) is :class:`ocpp_gw.sdk.Csms`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from ocpp_gw.config import Config, CsmsConfig
from ocpp_gw.core.envelope import decode_in_record
from ocpp_gw.sdk import Csms, StationCall

from .handlers import HANDLERS, Handler, Payload, Request

log = logging.getLogger("csms_server")


def reference_csms(settings: CsmsConfig) -> Csms:
    """A worker answering with every handler of the table, under the ``csms_server`` logger."""
    csms = Csms(logger=log)
    for (version, action), handler in HANDLERS.items():
        csms.on(action, version)(_with_settings(handler, settings))
    return csms


def _with_settings(handler: Handler, settings: CsmsConfig) -> Callable[[StationCall], Payload]:
    def handle(call: StationCall) -> Payload:
        return handler(Request(call.station_id, call.version, call.action, call.payload, settings))

    return handle


class CsmsWorker:
    """``csms-server``: the reference handlers, its status port and the ``[csms]`` settings."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.csms = reference_csms(config.csms)
        self.metrics = self.csms.metrics

    async def run(self, stop: asyncio.Event) -> None:
        await self.csms.serve(self.config, stop)


def answer(document: dict[str, Any], settings: CsmsConfig) -> list[Any] | None:
    """The reference CSMS's answer to a ``messages_in`` value given as its JSON object (for tests), or None.

    Fields that only say where a record came from may be left out; they get placeholders before the
    value is decoded like any record.
    """
    frame = document.get("frame")
    head = dict(zip(("message_type", "message_id"), frame, strict=False)) if isinstance(frame, list) else {}
    value = {"v": 1, "gateway_id": "", "received_at": "", "late": False, **head, **document}
    record = decode_in_record(str(value.get("station_id")).encode(), orjson.dumps(value), ())
    return asyncio.run(reference_csms(settings).answer(record))
