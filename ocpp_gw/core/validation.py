"""Strict mode: payloads checked against the official OCPP JSON schemas, compiled once.

The schemas come from the installed ``ocpp`` package (``ocpp_gw.schemas`` reads them; nothing is
copied into this project) and are compiled with fastjsonschema. A failed check becomes the
version's own error code (OCPP-J 1.6 §4.2.3 with its errata spelling, 2.0.1 and 2.1 §4.3); the
table is in the README.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import fastjsonschema

from .protocol import OcppVersion

Schemas = Mapping[tuple[OcppVersion, str], dict[str, Any]]
"""Schemas by version and file stem (``BootNotification``, ``BootNotificationRequest``, ``...Response``)."""


class StrictMode(enum.Enum):
    OFF = "off"
    LOG = "log"
    ENFORCE = "enforce"


@dataclass(frozen=True)
class StrictPolicy:
    """What strict mode does per direction and message kind, and which vendor quirks it forgives."""

    station_calls: StrictMode = StrictMode.LOG
    station_results: StrictMode = StrictMode.LOG
    csms_calls: StrictMode = StrictMode.ENFORCE
    csms_results: StrictMode = StrictMode.LOG
    allow_additional_properties: bool = False
    lenient_formats: bool = False

    @property
    def active(self) -> bool:
        modes = (self.station_calls, self.station_results, self.csms_calls, self.csms_results)
        return any(mode is not StrictMode.OFF for mode in modes)


@dataclass(frozen=True, slots=True)
class Violation:
    """A payload that failed its schema: the version's error code and a readable description."""

    code: str
    description: str


_V16_CODES = {
    "required": "ProtocolError",
    "additionalProperties": "FormationViolation",
    "type": "TypeConstraintViolation",
    "minItems": "OccurenceConstraintViolation",
    "maxItems": "OccurenceConstraintViolation",
}
_V2_CODES = {
    "required": "OccurrenceConstraintViolation",
    "additionalProperties": "FormatViolation",
    "type": "TypeConstraintViolation",
    "minItems": "OccurrenceConstraintViolation",
    "maxItems": "OccurrenceConstraintViolation",
}
PROPERTY_CONSTRAINT = "PropertyConstraintViolation"
"""Every other keyword (enum, maxLength, pattern, minimum, format, ...) limits a value."""


def violation_code(version: OcppVersion, rule: str | None) -> str:
    table = _V16_CODES if version is OcppVersion.V16 else _V2_CODES
    return table.get(rule or "", PROPERTY_CONSTRAINT)


Check = Callable[[Any], Any]


class PayloadValidator:
    """Every request and response schema given, each compiled on its first use.

    Compiling all of them takes seconds (about 9 ms each, 387 for the three versions), which every
    start, rolling restart and scale-out would wait for; a station's first message of an action pays
    its schema's compile once instead. Only the actions the versions define are ever compiled.
    """

    def __init__(self, schemas: Schemas, policy: StrictPolicy) -> None:
        self.policy = policy
        self._schemas: dict[tuple[bool, OcppVersion, str], dict[str, Any]] = {}
        for (version, name), schema in schemas.items():
            if name.endswith("Response"):
                self._schemas[(False, version, name.removesuffix("Response"))] = schema
            else:
                self._schemas[(True, version, name.removesuffix("Request"))] = schema
        self._checks: dict[tuple[bool, OcppVersion, str], Check] = {}

    def _check(self, request: bool, version: OcppVersion, action: str) -> Check | None:
        key = (request, version, action)
        check = self._checks.get(key)
        if check is None:
            schema = self._schemas.get(key)
            if schema is None:
                return None
            check = self._checks[key] = fastjsonschema.compile(self._prepare(schema))
        return check

    def _prepare(self, schema: dict[str, Any]) -> dict[str, Any]:
        schema = copy.deepcopy(schema)
        schema.pop("$id", None)
        if self.policy.allow_additional_properties or self.policy.lenient_formats:
            _loosen(schema, self.policy.allow_additional_properties, self.policy.lenient_formats)
        return schema

    def verdict(
        self, kind: str, version: OcppVersion, action: str, payload: Any, request: bool
    ) -> tuple[StrictMode, Violation | None]:
        """The mode for ``kind`` (``station_calls``, ...) and, unless it is off, the payload's violation:
        of the request schema of ``action``, or of its response schema."""
        mode: StrictMode = getattr(self.policy, kind)
        if mode is StrictMode.OFF:
            return mode, None
        check = self.check_request if request else self.check_response
        return mode, check(version, action, payload)

    def check_request(self, version: OcppVersion, action: str, payload: Any) -> Violation | None:
        check = self._check(True, version, action)
        if check is None:
            return Violation("NotImplemented", f"{action} is not an OCPP {version.value} action")
        return _run(check, version, payload)

    def check_response(self, version: OcppVersion, action: str, payload: Any) -> Violation | None:
        check = self._check(False, version, action)
        return None if check is None else _run(check, version, payload)


def _run(check: Check, version: OcppVersion, payload: Any) -> Violation | None:
    try:
        check(payload)
    except fastjsonschema.JsonSchemaValueException as error:
        return Violation(violation_code(version, error.rule), error.message[:255])
    return None


def _loosen(node: Any, additional: bool, formats: bool) -> None:
    """Drop ``additionalProperties: false`` and/or ``format`` everywhere in a schema."""
    if isinstance(node, dict):
        if additional and node.get("additionalProperties") is False:
            del node["additionalProperties"]
        if formats and isinstance(node.get("format"), str):
            del node["format"]
        for value in node.values():
            _loosen(value, additional, formats)
    elif isinstance(node, list):
        for value in node:
            _loosen(value, additional, formats)
