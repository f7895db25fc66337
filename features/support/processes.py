"""Real processes for the behave suite: the Kafka broker choice, and programs with their logs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from testing.harness import ROOT, Process, ensure_local_kafka, kafka_client_env, kafka_sh


class Program(Process):
    """One of our console programs as the suite runs them: the repository's config.cfg, JSON logs,
    and its log appended to ``<log_dir>/<name>.log``."""

    def __init__(self, name: str, module: str, env: dict[str, str], log_dir: Path, args: tuple[str, ...] = ()) -> None:
        env = {**env, "OCPPGW_LOGGING__FORMAT": "json"}
        super().__init__(name, module, env, log_dir, ("--config", str(ROOT / "config.cfg"), *args), append=True)


class Broker:
    """The Kafka the tests use, in the order the project promises.

    1. servers given in the environment (``OCPPGW_KAFKA__SERVERS``);
    2. testcontainers' Kafka where a Docker engine answers;
    3. the local broker from Maven Central's jars (``scripts/kafka/kafka.sh``).
    """

    def __init__(self) -> None:
        self.servers = ""
        self.kind = ""
        self._stop: Callable[[], None] = lambda: None

    def start(self) -> None:
        given = os.environ.get("OCPPGW_KAFKA__SERVERS")
        if given:
            self.servers, self.kind = given, "given"
            return
        if _docker_answers():
            from testcontainers.kafka import KafkaContainer

            container = KafkaContainer().with_kraft()
            container.start()
            self.servers, self.kind = container.get_bootstrap_server(), "testcontainers"
            self._stop = container.stop
            return
        port = os.environ.get("TEST_KAFKA_PORT", "19092")
        if ensure_local_kafka(int(port)):

            def stop_local() -> None:
                kafka_sh({"KAFKA_PORT": port}, "stop", check=False)

            self._stop = stop_local
        self.servers, self.kind = f"127.0.0.1:{port}", "local"

    def stop(self) -> None:
        self._stop()


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


class SecuredCluster:
    """Three Kafka nodes with SASL_SSL (SCRAM-SHA-512) listeners and a CA made on the spot, from kafka.sh."""

    def __init__(self, port: int = 19192) -> None:
        self.port = port
        self.kafka_env = {"KAFKA_PORT": str(port), "KAFKA_BROKERS": "3", "KAFKA_SECURITY": "sasl_ssl"}
        self.client_env: dict[str, str] = {}

    def start(self) -> None:
        kafka_sh(self.kafka_env, "start")
        self.client_env = kafka_client_env(self.port)

    def stop(self) -> None:
        kafka_sh(self.kafka_env, "stop", check=False)
