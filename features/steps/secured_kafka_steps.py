"""Steps against the secured three-node cluster: stations through it, and programs it refuses."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from behave import given, then, when
from behave.runner import Context
from steps.ocpp_steps import _open
from support.kafka import read_until
from support.processes import Program

from ocpp_gw.config import KafkaConfig, load_config
from ocpp_gw.kafka_clients import make_admin
from ocpp_gw.kafka_topics import topic_settings
from testing.harness import ROOT, gateway_env

SECURED_GATEWAY_PORT = 19100


def secured_kafka(context: Context) -> KafkaConfig:
    return load_config(ROOT / "config.cfg", context.secured_cluster.client_env).kafka


@given('a charging station "{station_id}" with subprotocol "{subprotocol}" through the secured cluster')
def step_secured_station(context: Context, station_id: str, subprotocol: str) -> None:
    station = _open(context, f"ws://127.0.0.1:{SECURED_GATEWAY_PORT}/ocpp", station_id, [subprotocol])
    assert station.protocol == subprotocol, station.protocol


@then(
    'the secured cluster\'s messages_in holds the BootNotification of "{station_id}", on 3 replicas with 2 in sync'
    " at least"
)
def step_replicated(context: Context, station_id: str) -> None:
    kafka = secured_kafka(context)

    def booted(records: list[dict[str, Any]]) -> bool:
        return any(r.get("action") == "BootNotification" for r in records)

    read_until(kafka, kafka.in_messages_topic, station_id, booted)
    partitions, min_insync = asyncio.run(_replication(kafka))
    assert all(len(p["replicas"]) == 3 and len(p["isr"]) >= 2 for p in partitions), partitions
    assert min_insync == "2", min_insync
    assert topic_settings(3, compacted=False)["min.insync.replicas"] == "2"


async def _replication(kafka: KafkaConfig) -> tuple[list[dict[str, Any]], str]:
    admin = make_admin(kafka)
    await admin.start()
    try:
        [topic] = await admin.describe_topics([kafka.in_messages_topic])
        [described] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, kafka.in_messages_topic)])
        entries = {entry[0]: entry[1] for entry in described.resources[0][4]}
        return topic["partitions"], entries["min.insync.replicas"]
    finally:
        await admin.close()


def _start_refused_gateway(context: Context, settings: dict[str, str]) -> None:
    env = {**gateway_env(context.secured_cluster.client_env, 19101, 0), **settings}
    context.refused = Program(f"refused-gateway-{len(settings)}", "ocpp_gw", env, context.log_dir)
    context.secured_programs.append(context.refused)


@when('a gateway starts on the secured cluster with the setting "{name}" = "{value}"')
def step_refused_setting(context: Context, name: str, value: str) -> None:
    _start_refused_gateway(context, {name: value})


@when("a gateway starts on the secured cluster trusting only another CA")
def step_refused_ca(context: Context) -> None:
    _start_refused_gateway(context, {"OCPPGW_KAFKA__SSL_CAFILE": str(context.pki / "ca.pem")})


@then('it exits with status {code:d} and a line saying "{needle}", no traceback and no password')
def step_refused(context: Context, code: int, needle: str) -> None:
    program = context.refused
    assert program.wait(60) == code, program.tail()
    text = program.log_text()
    assert needle in text, text
    assert "Traceback" not in text, text
    assert context.secured_cluster.client_env["OCPPGW_KAFKA__SASL_PASSWORD"] not in text
    assert "not-the-password-123" not in text, text
    assert sum(1 for line in text.splitlines() if needle in line) == 1, text
