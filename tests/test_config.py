"""Configuration: typed keys, one environment naming rule, one-line errors naming the key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ocpp_gw.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.cfg"
    path.write_text(text)
    return path


def test_the_shipped_config_loads_with_its_documented_values() -> None:
    config = load_config(ROOT / "config.cfg", {})
    assert config.kafka.in_messages_topic == "messages_in" and config.kafka.out_messages_topic == "messages_out"
    assert config.kafka.ocpp_gw_consumer_group == "ocpp_gateways" and config.kafka.csms_consumer_group == "csms_server"
    assert config.ocpp_gateway.subprotocols == ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")


def uncommented_keys(text: str) -> list[str]:
    """The keys of an INI text that no comment explains.

    A key needs a comment line directly above it, or shares the comment of the key directly above
    it (a group of keys under one comment, as sasl_mechanism, sasl_username and sasl_password). A
    key sharing a comment must be mentioned in it: a part of its name (split at "_") and a word of
    the comment start one with the other, the shorter at least 3 letters long ("user" for
    sasl_username, "handshakes" for handshake_rate_per_address, "key" for ssl_keyfile).
    """
    missing: list[str] = []
    comment: list[str] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("#"):
            comment = [*comment, line] if previous.startswith("#") else [line]
        elif _is_key(line):
            key = line.partition("=")[0].strip()
            shares = _is_key(previous) and _mentions(comment, key)
            if not previous.startswith("#") and not shares:
                missing.append(key)
        else:
            comment = []
        previous = line
    return missing


def _is_key(line: str) -> bool:
    return "=" in line and not line.startswith(("#", "["))


def _mentions(comment: list[str], key: str) -> bool:
    words = set(re.findall(r"[a-z0-9]+", " ".join(comment).lower()))
    return any(
        min(len(part), len(word)) >= 3 and (word.startswith(part) or part.startswith(word))
        for part in key.lower().split("_")
        for word in words
    )


def test_every_shipped_key_has_a_comment() -> None:
    assert uncommented_keys((ROOT / "config.cfg").read_text()) == []


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("[s]\n# Where to listen.\nport = 1\n", []),
        ("[s]\nport = 1\n", ["port"]),
        ("# Where to listen.\n\nport = 1\n", ["port"]),
        ("# Where to listen.\nport = 1\nhost = a\n", ["host"]),
        ("# Vendor and model of the station.\nvendor = a\nmodel = b\n", []),
        ("# SASL user and password.\nsasl_username = a\nsasl_password = b\nlinger_ms = 0\n", ["linger_ms"]),
        ("# Host and port.\nhost = a\n# Timeout.\ntimeout = 1\nport = 2\n", ["port"]),
    ],
)
def test_a_key_right_after_another_needs_a_comment_that_names_it(text: str, missing: list[str]) -> None:
    assert uncommented_keys(text) == missing


def test_environment_overrides_any_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[kafka]\nservers = a:1\n")
    config = load_config(
        path, {"OCPPGW_KAFKA__SERVERS": "b:2,c:3", "OCPPGW_OCPP_GATEWAY__LISTENING_PORT": "9100", "HOME": "/"}
    )
    assert config.kafka.bootstrap_servers == ["b:2", "c:3"] and config.ocpp_gateway.listening_port == 9100


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[kafka]\nbogus = 1\n", {}, "unknown key bogus in [kafka]"),
        ("[nope]\n", {}, "unknown section [nope]"),
        ("[kafka]\nnum_partitions = many\n", {}, "[kafka] num_partitions: expected int"),
        ("", {"OCPPGW_KAFKA__NUM_PARTITIONS": "0"}, "[kafka] num_partitions: must be between 1"),
        ("", {"OCPPGW_NOPE__X": "1"}, "OCPPGW_NOPE__X: no such config section"),
        ("", {"OCPPGW_KAFKA__NOPE": "1"}, "unknown key nope in [kafka]"),
        ("[ocpp_gateway]\nsubprotocols = ocpp1.5\n", {}, "[ocpp_gateway] subprotocols"),
        ("[ocpp_gateway]\nduplicate_connection = maybe\n", {}, "[ocpp_gateway] duplicate_connection: must be one of"),
        ("[ocpp_gateway]\ncompression_window_bits = 8\n", {}, "[ocpp_gateway] compression_window_bits: must be"),
        ("[ocpp_gateway]\ncompression_mem_level = 10\n", {}, "[ocpp_gateway] compression_mem_level: must be"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=None) as raised:
        load_config(write(tmp_path, text), env)
    assert message in str(raised.value)


@pytest.mark.parametrize("module", ["ocpp_gw", "csms_server", "charge_station"])
def test_programs_report_config_errors_in_one_line_without_traceback(tmp_path: Path, module: str) -> None:
    for config in (tmp_path / "missing.cfg", write(tmp_path, "[kafka]\nbogus = 1\n")):
        done = subprocess.run(
            [sys.executable, "-m", module, "--config", str(config)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
