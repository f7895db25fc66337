"""Real processes for the behave suite: the Kafka broker choice, and programs with their logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = ROOT / "scripts" / "kafka" / "kafka.sh"


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def samples(port: int, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric ``name`` on the status port ``port`` (a real Prometheus scrape)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


class Program:
    """One of our console programs, run as a real process with its log in a file."""

    def __init__(self, name: str, module: str, env: dict[str, str], log_dir: Path, args: tuple[str, ...] = ()) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, "--config", str(ROOT / "config.cfg"), *args],
            env={**os.environ, **env, "OCPPGW_LOGGING__FORMAT": "json"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needles: str | tuple[str, ...], timeout: float = 60.0) -> None:
        """Wait until the log holds ``needles`` (or one of them)."""
        wanted = (needles,) if isinstance(needles, str) else needles

        def seen() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            text = self.log_text()
            return any(needle in text for needle in wanted)

        wait_until(seen, timeout, f"{self.name} to log {wanted!r}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


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
        env = {**os.environ, "KAFKA_PORT": port}
        already = subprocess.run(["bash", str(KAFKA_SCRIPT), "status"], env=env, capture_output=True).returncode == 0
        if not already:
            subprocess.run(["bash", str(KAFKA_SCRIPT), "start"], env=env, check=True)

            def stop_local() -> None:
                subprocess.run(["bash", str(KAFKA_SCRIPT), "stop"], env=env, check=False)

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
        self.kafka_env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_BROKERS": "3", "KAFKA_SECURITY": "sasl_ssl"}
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        self.client_env_file = cache / "ocpp-gw" / f"kafka-data-{port}" / "client.env"
        self.client_env: dict[str, str] = {}

    def start(self) -> None:
        subprocess.run(["bash", str(KAFKA_SCRIPT), "start"], env=self.kafka_env, check=True)
        lines = self.client_env_file.read_text().splitlines()
        self.client_env = dict(line.split("=", 1) for line in lines if line.startswith("OCPPGW_") and "=" in line)

    def stop(self) -> None:
        subprocess.run(["bash", str(KAFKA_SCRIPT), "stop"], env=self.kafka_env, check=False)
