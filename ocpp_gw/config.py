"""Configuration shared by the three programs: one INI file, every key typed and checked.

Each section is a frozen dataclass; a key's type is its default's type, and ``choices`` limits a
string. Any key can be overridden by an environment variable named
``OCPPGW_<SECTION>__<KEY>`` in upper case (``OCPPGW_KAFKA__SERVERS``,
``OCPPGW_OCPP_GATEWAY__LISTENING_PORT``), so one file serves several instances. An unknown
section, key or variable, or a value of the wrong type, is a :class:`ConfigError` naming it.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

ENV_PREFIX = "OCPPGW_"


class ConfigError(Exception):
    """A configuration problem, reported as one line."""


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be between {low} and {high}, got {value}")


def _choice(default: str, *choices: str) -> Any:
    return field(default=default, metadata={"choices": choices})


def tls_pairs(cert_files: str, key_files: str) -> list[tuple[str, str]]:
    """(certificate, key) paths from comma-separated lists paired in order: none, one, or two (an RSA and an
    ECDSA certificate, for the cipher suites of OCPP 2.0.1 A00.FR.318/.421)."""
    names = "[ocpp_gateway] tls_cert_file and tls_key_file"
    certs, keys = _paths(cert_files), _paths(key_files)
    if any(not path for path in certs + keys):
        raise ConfigError(f"{names}: empty path in {cert_files!r} or {key_files!r}")
    if len(certs) != len(keys):
        raise ConfigError(f"{names}: one key per certificate, in the same order; got {len(certs)} and {len(keys)}")
    if len(certs) > 2:
        raise ConfigError(f"{names}: at most two pairs (one RSA, one ECDSA), got {len(certs)}")
    return list(zip(certs, keys, strict=True))


def _paths(text: str) -> list[str]:
    return [item.strip() for item in text.split(",")] if text.strip() else []


@dataclass(frozen=True)
class KafkaConfig:
    servers: str = "127.0.0.1:9092"
    in_messages_topic: str = "messages_in"
    out_messages_topic: str = "messages_out"
    routes_topic: str = "station_routes"
    ocpp_gw_consumer_group: str = "ocpp_gateways"
    csms_consumer_group: str = "csms_server"
    num_partitions: int = 8
    replica_factor: int = 0
    linger_ms: int = 0
    fetch_min_bytes: int = 1
    fetch_max_wait_ms: int = 500
    request_timeout_ms: int = 10000
    security_protocol: str = _choice("PLAINTEXT", "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
    sasl_mechanism: str = _choice("SCRAM-SHA-512", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True
    unsent_max_records: int = 100_000
    unsent_max_bytes: int = 256 * 2**20
    stall_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not self.bootstrap_servers:
            raise ConfigError("[kafka] servers: give at least one host:port")
        _check_range("[kafka] num_partitions", self.num_partitions, 1, 10000)
        _check_range("[kafka] replica_factor", self.replica_factor, 0, 100)
        _check_range("[kafka] unsent_max_records", self.unsent_max_records, 1, 10_000_000)
        _check_range("[kafka] unsent_max_bytes", self.unsent_max_bytes, 2**20, 2**40)
        if self.stall_seconds <= 0:
            raise ConfigError("[kafka] stall_seconds: must be positive")
        if self.uses_sasl and not (self.sasl_username and self.sasl_password):
            raise ConfigError(
                f"[kafka] sasl_username and sasl_password: needed with security_protocol {self.security_protocol}"
                " (the password can come from OCPPGW_KAFKA__SASL_PASSWORD)"
            )
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ConfigError("[kafka] ssl_certfile and ssl_keyfile: give both or neither")
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path and not os.access(path, os.R_OK):
                raise ConfigError(f"[kafka] {name}: cannot read {path}")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def bootstrap_servers(self) -> list[str]:
        return [server.strip() for server in self.servers.split(",") if server.strip()]


@dataclass(frozen=True)
class GatewayConfig:
    subprotocols: tuple[str, ...] = ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")
    listening_host: str = "127.0.0.1"
    listening_port: int = 9000
    instance_id: str = ""
    csms_response_timeout: float = 30.0
    station_response_timeout: float = 30.0
    csms_queue_size: int = 16
    duplicate_connection: str = _choice("replace", "replace", "reject")
    max_message_size: int = 1048576
    ping_interval: float = 60.0
    ping_timeout: float = 30.0
    security_profile: int = 0
    extra_listeners: tuple[str, ...] = ()
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_ca_file: str = ""
    credentials_file: str = ""
    credentials_topic: str = ""
    allow_unknown_stations: bool = False
    username_must_match: bool = True
    cert_identity: str = _choice("cn", "cn", "san")
    operator_name: str = ""
    status_host: str = "127.0.0.1"
    status_port: int = 9100
    max_connections: int = 20000
    handshake_rate: float = 500.0
    max_connections_per_address: int = 1000
    max_handshakes_per_address: int = 64
    handshake_rate_per_address: float = 50.0
    send_queue_bytes: int = 8_388_608
    station_message_rate: float = 20.0
    station_message_burst: int = 50
    rate_limit_action: str = _choice("callerror", "callerror", "close")
    compression: bool = True
    compression_window_bits: int = 12
    compression_mem_level: int = 5
    handshake_timeout: float = 10.0
    drain_rate: float = 200.0
    drain_timeout: float = 60.0
    strict_station_calls: str = _choice("log", "off", "log", "enforce")
    strict_station_results: str = _choice("log", "off", "log", "enforce")
    strict_csms_calls: str = _choice("enforce", "off", "log", "enforce")
    strict_csms_results: str = _choice("log", "off", "log", "enforce")
    strict_allow_additional_properties: bool = False
    strict_lenient_formats: bool = False

    def __post_init__(self) -> None:
        known = ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")
        unknown = [name for name in self.subprotocols if name not in known]
        if unknown or not self.subprotocols:
            raise ConfigError(f"[ocpp_gateway] subprotocols: choose from {', '.join(known)}, got {unknown}")
        _check_range("[ocpp_gateway] listening_port", self.listening_port, 0, 65535)
        _check_range("[ocpp_gateway] csms_queue_size", self.csms_queue_size, 0, 100000)
        # A record carries up to two frames (a station answer and the CSMS call it answers) in 4 MiB.
        _check_range("[ocpp_gateway] max_message_size", self.max_message_size, 1024, 2_000_000)
        _check_range("[ocpp_gateway] max_connections_per_address", self.max_connections_per_address, 0, 1_000_000)
        _check_range("[ocpp_gateway] max_handshakes_per_address", self.max_handshakes_per_address, 0, 1_000_000)
        if self.handshake_rate_per_address < 0:
            raise ConfigError("[ocpp_gateway] handshake_rate_per_address: must be 0 (no limit) or more")
        _check_range("[ocpp_gateway] compression_window_bits", self.compression_window_bits, 9, 15)
        _check_range("[ocpp_gateway] compression_mem_level", self.compression_mem_level, 1, 9)
        if self.send_queue_bytes < self.max_message_size:
            raise ConfigError("[ocpp_gateway] send_queue_bytes: must be at least max_message_size")
        for name in ("csms_response_timeout", "station_response_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"[ocpp_gateway] {name}: must be positive")
        for name in ("handshake_rate", "station_message_rate", "drain_rate", "handshake_timeout", "drain_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"[ocpp_gateway] {name}: must be positive")
        _check_range("[ocpp_gateway] station_message_burst", self.station_message_burst, 1, 1_000_000)
        listeners, tls_cert_pairs = self.listeners, self.tls_cert_pairs
        if any(profile >= 2 for _, _, profile in listeners) and not tls_cert_pairs:
            raise ConfigError("[ocpp_gateway] tls_cert_file and tls_key_file: needed by a profile 2 or 3 listener")
        if any(profile == 3 for _, _, profile in listeners) and not self.tls_ca_file:
            raise ConfigError("[ocpp_gateway] tls_ca_file: needed by a profile 3 listener")

    @property
    def listeners(self) -> list[tuple[str, int, int]]:
        """(host, port, security profile) of every station listener, the main one first."""
        _check_range("[ocpp_gateway] security_profile", self.security_profile, 0, 3)
        result = [(self.listening_host, self.listening_port, self.security_profile)]
        for item in self.extra_listeners:
            address, _, profile = item.rpartition("/")
            host, _, port = address.rpartition(":")
            if not (host and port.isdigit() and profile in ("0", "1", "2", "3")):
                raise ConfigError(f"[ocpp_gateway] extra_listeners: expected host:port/profile, got {item!r}")
            result.append((host, int(port), int(profile)))
        return result

    @property
    def tls_cert_pairs(self) -> list[tuple[str, str]]:
        """(certificate, key) paths of the TLS listeners: one pair, or an RSA and an ECDSA one."""
        return tls_pairs(self.tls_cert_file, self.tls_key_file)

    @property
    def gateway_id(self) -> str:
        return self.instance_id or f"{socket.gethostname()}-{self.listening_port}"


@dataclass(frozen=True)
class CsmsConfig:
    status_host: str = "127.0.0.1"
    status_port: int = 9101
    heartbeat_interval: int = 300
    auto_offset_reset: str = _choice("earliest", "earliest", "latest")
    boot_policy: str = _choice("accept", "accept", "allow_list", "pending")
    allowed_stations: tuple[str, ...] = ()
    call_timeout: float = 35.0


@dataclass(frozen=True)
class ChargeStationConfig:
    gateway_url: str = "ws://127.0.0.1:9000/ocpp"
    station_id: str = "CP_1"
    protocol: str = _choice("ocpp2.0.1", "ocpp1.6", "ocpp2.0.1", "ocpp2.1")
    vendor: str = "OpenVendor"
    model: str = "SimCharger"
    heartbeats: int = 0
    password: str = ""
    charge_seconds: float = 30.0
    meter_interval: float = 5.0
    reconnect_base: float = 1.0
    reconnect_max: float = 60.0
    id_pattern: str = "CP_{n}"

    def __post_init__(self) -> None:
        if "{n" not in self.id_pattern:
            raise ConfigError(f"[charge_station] id_pattern: must contain {{n}}, got {self.id_pattern!r}")
        if self.meter_interval <= 0 or self.reconnect_base <= 0:
            raise ConfigError("[charge_station] meter_interval and reconnect_base: must be positive")
        if not self.gateway_url.startswith(("ws://", "wss://")):
            raise ConfigError(
                f"[charge_station] gateway_url: must start with ws:// or wss://, got {self.gateway_url!r}"
            )


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ConsoleConfig:
    """``csms-server console``: where the web console listens, who may use it, and what it remembers."""

    host: str = "127.0.0.1"
    port: int = 8080
    token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    history_seconds: int = 900
    max_stations: int = 10_000
    timeline_entries: int = 200
    timeline_bytes: int = 32 * 2**20
    max_viewers: int = 16

    def __post_init__(self) -> None:
        _check_range("[console] port", self.port, 1, 65535)
        if bool(self.username) != bool(self.password):
            raise ConfigError("[console] username and password: set both or neither")
        if not self.local and not (self.token or self.password):
            raise ConfigError(
                f"[console] host {self.host} is reachable from other machines: set a token, or username and password"
            )
        for name in ("history_seconds", "max_stations", "timeline_entries", "timeline_bytes", "max_viewers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"[console] {name}: must be at least 1")

    @property
    def local(self) -> bool:
        """Bound to this machine only: then, and only then, no credentials are needed."""
        return self.host in LOOPBACK_HOSTS


@dataclass(frozen=True)
class LoggingConfig:
    level: str = _choice("INFO", "DEBUG", "INFO", "WARNING", "ERROR")
    format: str = _choice("auto", "auto", "json", "text")


@dataclass(frozen=True)
class RuntimeConfig:
    event_loop: str = _choice("uvloop", "uvloop", "asyncio")


@dataclass(frozen=True)
class Config:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    ocpp_gateway: GatewayConfig = field(default_factory=GatewayConfig)
    csms: CsmsConfig = field(default_factory=CsmsConfig)
    charge_station: ChargeStationConfig = field(default_factory=ChargeStationConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


T = TypeVar("T")


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path``, apply ``OCPPGW_`` environment overrides and check every value."""
    environ = os.environ if environ is None else environ
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from error
    except configparser.Error as error:
        raise ConfigError(f"{path}: {error.message.splitlines()[0]}") from error
    sections: dict[str, type[Any]] = get_type_hints(Config)
    raw: dict[str, dict[str, str]] = {name: {} for name in sections}
    for section in parser.sections():
        if section not in sections:
            raise ConfigError(f"{path}: unknown section [{section}]")
        raw[section].update(parser[section])
    for variable, value in environ.items():
        if variable.startswith(ENV_PREFIX):
            section, key = _parse_variable(variable, sections)
            raw[section][key] = value
    values = {name: _build(section_type, name, raw[name], str(path)) for name, section_type in sections.items()}
    return Config(**values)


def _parse_variable(variable: str, sections: Mapping[str, Any]) -> tuple[str, str]:
    section, sep, key = variable[len(ENV_PREFIX) :].partition("__")
    section, key = section.lower(), key.lower()
    if not sep or section not in sections:
        raise ConfigError(f"{variable}: no such config section; use {ENV_PREFIX}<SECTION>__<KEY>")
    return section, key


def _build(section_type: type[T], section: str, raw: Mapping[str, str], path: str) -> T:
    fields = {f.name: f for f in dataclasses.fields(section_type)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, text in raw.items():
        if key not in fields:
            raise ConfigError(f"{path}: unknown key {key} in [{section}]")
        values[key] = _convert(fields[key], text.strip(), f"[{section}] {key}")
    return section_type(**values)


def _convert(spec: dataclasses.Field[Any], text: str, name: str) -> Any:
    default = spec.default
    choices = spec.metadata.get("choices")
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
                raise ValueError
            return lowered in ("true", "yes", "on", "1")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(item.strip() for item in text.split(",") if item.strip())
    except ValueError:
        raise ConfigError(f"{name}: expected {type(default).__name__}, got {text!r}") from None
    if choices and text not in choices:
        raise ConfigError(f"{name}: must be one of {', '.join(choices)}, got {text!r}")
    return text
