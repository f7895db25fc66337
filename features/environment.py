"""Starts the real system for the behave suite: a Kafka broker, the reference CSMS and two gateways.

- ``gateway``: the normal path, stations -> gateway -> Kafka -> CSMS -> Kafka -> gateway.
- ``lonely gateway``: a gateway on its own topics that no CSMS reads, with 2 s timeouts, so the
  timeout paths can be shown end to end on the real broker.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from behave.model import Feature, Scenario
from behave.runner import Context

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for ``testing``
sys.path.insert(0, str(Path(__file__).resolve().parent))

from steps.hardening_steps import HARDENING_ENV
from steps.operations_steps import start_ops_gateway
from steps.secured_kafka_steps import SECURED_GATEWAY_PORT
from support.cluster import Cluster
from support.pki import make_pki
from support.processes import Broker, Program, SecuredCluster

from ocpp_gw.core.credentials import StationCredentials, hash_password
from ocpp_gw.credential_store import FileCredentials
from testing.harness import csms_env, gateway_env

GATEWAY_PORT = 19000
GATEWAY_STATUS_PORT = 19009
LONELY_GATEWAY_PORT = 19001
LONELY_TIMEOUT = 2.0
SECURED_PORTS = {1: 19201, 2: 19202, 3: 19203}
STRICT_ENFORCE = {
    f"OCPPGW_OCPP_GATEWAY__STRICT_{kind}": "enforce"
    for kind in ("STATION_CALLS", "STATION_RESULTS", "CSMS_CALLS", "CSMS_RESULTS")
} | {"OCPPGW_OCPP_GATEWAY__STATION_MESSAGE_RATE": "100", "OCPPGW_OCPP_GATEWAY__STATION_MESSAGE_BURST": "100"}
CREDENTIALS_TOPIC = "station_credentials"


def station_password(station_id: str) -> str:
    """The password the credentials fixture gives ``station_id`` (for CP_KEY16 an OCPP 1.6
    AuthorizationKey: 40 hex characters, including FF and 00 bytes)."""
    if station_id == "CP_KEY16":
        return "0001020304050607FFFFFFCCCCCCCCCCCCCCCC00"
    return f"{station_id}-password-0123456789"


def before_all(context: Context) -> None:
    context.log_dir = Path(tempfile.mkdtemp(prefix="ocpp-gw-behave-"))
    context.broker = Broker()
    context.broker.start()
    context.kafka_servers = context.broker.servers
    base = {"OCPPGW_KAFKA__SERVERS": context.broker.servers}
    context.programs = []
    context.pki = make_pki(context.log_dir / "pki")
    context.credentials_file = context.log_dir / "credentials"
    for station_id, profile in (("CP_P1", 1), ("CP_P2", 2)):
        FileCredentials(context.credentials_file).write(
            station_id, StationCredentials(hash_password(station_password(station_id)), profile)
        )
    FileCredentials(context.credentials_file).write("CP_TLS3", StationCredentials(None, 3))
    for station_id in ("CP_NOPIN", "CP_FILE", "CP_KEY16"):
        FileCredentials(context.credentials_file).write(
            station_id, StationCredentials(hash_password(station_password(station_id)))
        )
    secured = {
        "OCPPGW_OCPP_GATEWAY__EXTRA_LISTENERS": ",".join(f"127.0.0.1:{port}/{p}" for p, port in SECURED_PORTS.items()),
        "OCPPGW_OCPP_GATEWAY__TLS_CERT_FILE": str(context.pki / "server.pem"),
        "OCPPGW_OCPP_GATEWAY__TLS_KEY_FILE": str(context.pki / "server.key"),
        "OCPPGW_OCPP_GATEWAY__TLS_CA_FILE": str(context.pki / "ca.pem"),
        "OCPPGW_OCPP_GATEWAY__CREDENTIALS_FILE": str(context.credentials_file),
        "OCPPGW_OCPP_GATEWAY__CREDENTIALS_TOPIC": CREDENTIALS_TOPIC,
        "OCPPGW_OCPP_GATEWAY__OPERATOR_NAME": "Test Operator",
    }
    context.secured_env = {**base, **secured}
    try:
        csms = Program("csms", "csms_server", csms_env(base, 19019), context.log_dir)
        context.programs.append(csms)
        gateway_settings = gateway_env(context.secured_env, GATEWAY_PORT, GATEWAY_STATUS_PORT, "gw-main")
        gateway = Program("gateway", "ocpp_gw", gateway_settings, context.log_dir)
        context.programs.append(gateway)
        context.lonely_topics = ("lonely_in", "lonely_out")
        lonely_kafka = {
            **base,
            "OCPPGW_KAFKA__IN_MESSAGES_TOPIC": context.lonely_topics[0],
            "OCPPGW_KAFKA__OUT_MESSAGES_TOPIC": context.lonely_topics[1],
            "OCPPGW_KAFKA__ROUTES_TOPIC": "lonely_routes",
            "OCPPGW_KAFKA__OCPP_GW_CONSUMER_GROUP": "lonely_gateways",
        }
        lonely_settings = gateway_env(
            lonely_kafka,
            LONELY_GATEWAY_PORT,
            19008,
            "gw-lonely",
            csms_response_timeout=str(LONELY_TIMEOUT),
            station_response_timeout=str(LONELY_TIMEOUT),
        )
        lonely = Program("lonely-gateway", "ocpp_gw", lonely_settings, context.log_dir)
        context.programs.append(lonely)
        for program, needle in ((gateway, "gateway ready"), (lonely, "gateway ready"), (csms, "csms ready")):
            program.wait_for_log(needle, timeout=90)
    except BaseException as error:
        print(f"behave set-up failed: {error!r}", file=sys.stderr)
        for program in context.programs:
            print(f"--- {program.name} log ---\n{program.tail()}", file=sys.stderr)
        _stop_all(context)
        raise
    context.gateway_url = f"ws://127.0.0.1:{GATEWAY_PORT}/ocpp"
    context.lonely_gateway_url = f"ws://127.0.0.1:{LONELY_GATEWAY_PORT}/ocpp"
    context.lonely_timeout = LONELY_TIMEOUT


def before_feature(context: Context, feature: Feature) -> None:
    if "secured_kafka" not in feature.tags:
        return
    context.secured_cluster = SecuredCluster()
    context.secured_cluster.start()
    env = context.secured_cluster.client_env
    csms = Program("secured-csms", "csms_server", csms_env(env, 19119), context.log_dir)
    gateway_settings = gateway_env(env, SECURED_GATEWAY_PORT, 19109, "gw-secured")
    gateway = Program("secured-gateway", "ocpp_gw", gateway_settings, context.log_dir)
    context.secured_programs = [csms, gateway]
    try:
        for program, needle in ((gateway, "gateway ready"), (csms, "csms ready")):
            program.wait_for_log(needle, timeout=120)
    except BaseException:
        for program in context.secured_programs:
            print(f"--- {program.name} log ---\n{program.tail()}", file=sys.stderr)
        after_feature(context, feature)
        raise


def after_feature(context: Context, feature: Feature) -> None:
    if "secured_kafka" not in feature.tags:
        return
    for program in getattr(context, "secured_programs", []):
        program.stop()
    context.secured_programs = []
    context.secured_cluster.stop()


def before_scenario(context: Context, scenario: Scenario) -> None:
    context.stations = {}
    context.target_station = None
    if "ops" in scenario.effective_tags:
        start_ops_gateway(context)
    if "strict" in scenario.effective_tags:
        start_ops_gateway(context, STRICT_ENFORCE)
    if "hardening" in scenario.effective_tags:
        start_ops_gateway(context, HARDENING_ENV)
    if "cluster" in scenario.effective_tags:
        partitions = 2 if "two_partitions" in scenario.effective_tags else 6
        context.cluster = Cluster(context.kafka_servers, 3, context.log_dir, partitions)
        context.cluster.wait_ready()


def after_scenario(context: Context, scenario: Scenario) -> None:
    for station in getattr(context, "stations", {}).values():
        station.close()
    context.stations = {}
    for program, _, _ in getattr(context, "simulators", {}).values():
        program.stop()
    context.simulators = {}
    ops = getattr(context, "ops", None)
    if ops is not None:
        ops.stop()
        context.ops = None
    cluster = getattr(context, "cluster", None)
    if cluster is not None:
        cluster.stop()
        context.cluster = None


def after_all(context: Context) -> None:
    _stop_all(context)


def _stop_all(context: Context) -> None:
    failed = []
    for program in reversed(getattr(context, "programs", [])):
        code = program.stop()
        if code not in (0, None):
            failed.append(f"{program.name} exited with {code}:\n{program.tail()}")
    context.broker.stop()
    if failed:
        raise AssertionError("\n".join(failed))
