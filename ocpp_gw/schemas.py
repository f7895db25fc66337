"""Reads the official OCPP JSON schemas from the installed ``ocpp`` package (for strict mode)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ocpp

from .core.protocol import OcppVersion

SCHEMA_FOLDERS = {OcppVersion.V16: "v16", OcppVersion.V201: "v201", OcppVersion.V21: "v21"}


def load_ocpp_schemas(versions: tuple[OcppVersion, ...]) -> dict[tuple[OcppVersion, str], dict[str, Any]]:
    base = Path(ocpp.__file__).parent
    return {
        (version, path.stem): json.loads(path.read_text())
        for version in versions
        for path in sorted((base / SCHEMA_FOLDERS[version] / "schemas").glob("*.json"))
    }
