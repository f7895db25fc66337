"""Configuration: typed keys, one environment naming rule, one-line errors naming the key."""

from __future__ import annotations

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


def test_every_shipped_key_has_a_comment() -> None:
    lines = (ROOT / "config.cfg").read_text().splitlines()
    for index, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            previous = lines[index - 1]
            assert previous.startswith("#") or "=" in previous, f"key without a comment: {line}"


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
