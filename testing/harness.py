"""Real processes for the behave suite, the fault suite and the benchmarks, in one place.

A :class:`Process` runs one of the repository's programs (``python -m <module>``) with its output in a
log file; the functions around it wait for conditions with a deadline, probe the status port
(``/readyz``, ``/metrics``), build a gateway's or a CSMS's ``OCPPGW_*`` environment and drive
``scripts/kafka/kafka.sh``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = ROOT / "scripts" / "kafka" / "kafka.sh"
FLEET_FROM_ONE_ADDRESS = {
    "max_connections_per_address": "0",
    "max_handshakes_per_address": "0",
    "handshake_rate_per_address": "0",
}
"""Gateway settings for a simulated fleet that connects from 127.0.0.1, as it would through a load balancer."""


class TimedOut(AssertionError, TimeoutError):
    """A condition not met by its deadline: a failed step to behave, a ``TimeoutError`` to the runners."""


class Exited(AssertionError, RuntimeError):
    """A program ended while it was waited on."""


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> float:
    """Poll ``condition`` until it holds; the seconds it took. Raises :class:`TimedOut` naming ``what``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimedOut(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started


async def await_until(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1, blocking: bool = False
) -> float:
    """:func:`wait_until` for an event loop. A ``blocking`` condition (an HTTP probe) runs in a thread,
    so the loop's other tasks keep going."""
    started = time.monotonic()
    while not (await asyncio.to_thread(condition) if blocking else condition()):
        if time.monotonic() - started > timeout:
            raise TimedOut(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)
    return time.monotonic() - started


def http_status(port: int, path: str, timeout: float = 5.0) -> int:
    """The HTTP status ``path`` on 127.0.0.1:``port`` answers; ``OSError`` when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def ready(port: int) -> bool:
    """Whether the status port ``port`` answers ``/readyz`` with 200."""
    try:
        return http_status(port, "/readyz", timeout=2) == 200
    except OSError:
        return False


def wait_ready(port: int, timeout: float) -> float:
    """Poll ``/readyz`` on ``port`` until it answers 200; the seconds it took."""
    return wait_until(lambda: ready(port), timeout, f"/readyz on port {port}", interval=0.1)


def metric_samples(port: int, name: str, timeout: float = 5.0) -> list[tuple[dict[str, str], float]]:
    """The samples of metric ``name`` on the status port ``port``: a real Prometheus scrape."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as response:
        text = response.read().decode()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def topics_env(prefix: str, suffix: str, gateways: str = "gateways") -> dict[str, str]:
    """Topics and consumer groups of a run's own (``{prefix}_in_{suffix}`` and so on), so runs do not meet."""
    return {
        "OCPPGW_KAFKA__IN_MESSAGES_TOPIC": f"{prefix}_in_{suffix}",
        "OCPPGW_KAFKA__OUT_MESSAGES_TOPIC": f"{prefix}_out_{suffix}",
        "OCPPGW_KAFKA__ROUTES_TOPIC": f"{prefix}_routes_{suffix}",
        "OCPPGW_KAFKA__OCPP_GW_CONSUMER_GROUP": f"{prefix}_{gateways}_{suffix}",
        "OCPPGW_KAFKA__CSMS_CONSUMER_GROUP": f"{prefix}_csms_{suffix}",
    }


def gateway_env(
    kafka: Mapping[str, str], port: int, status_port: int, instance_id: str | None = None, **settings: str
) -> dict[str, str]:
    """A gateway's environment: ``kafka`` (servers, topics and any other ``OCPPGW_*`` given whole), its
    listening and status ports, its instance id, and ``settings`` of ``[ocpp_gateway]`` by key."""
    return {
        **kafka,
        "OCPPGW_OCPP_GATEWAY__LISTENING_PORT": str(port),
        "OCPPGW_OCPP_GATEWAY__STATUS_PORT": str(status_port),
        **({} if instance_id is None else {"OCPPGW_OCPP_GATEWAY__INSTANCE_ID": instance_id}),
        **{f"OCPPGW_OCPP_GATEWAY__{key.upper()}": value for key, value in settings.items()},
    }


def csms_env(kafka: Mapping[str, str], status_port: int, **settings: str) -> dict[str, str]:
    """A CSMS's environment: ``kafka`` as for :func:`gateway_env`, its status port and ``[csms]`` settings."""
    return {
        **kafka,
        "OCPPGW_CSMS__STATUS_PORT": str(status_port),
        **{f"OCPPGW_CSMS__{key.upper()}": value for key, value in settings.items()},
    }


def kafka_sh(env: Mapping[str, str], *args: str, check: bool = True, quiet: bool = False) -> int:
    """Run ``scripts/kafka/kafka.sh`` (start, stop, status, kill, resume...) with ``env`` (``KAFKA_PORT``...)
    over this process's environment; its exit code. ``quiet`` keeps its output out of the terminal."""
    command = ["bash", str(KAFKA_SCRIPT), *args]
    return subprocess.run(command, env={**os.environ, **env}, check=check, capture_output=quiet).returncode


def ensure_local_kafka(port: int, quiet: bool = False) -> bool:
    """Start kafka.sh's local broker on ``port`` unless one runs there; whether this call started it."""
    env = {"KAFKA_PORT": str(port)}
    if kafka_sh(env, "status", check=False, quiet=True) == 0:
        return False
    kafka_sh(env, "start", quiet=quiet)
    return True


def kafka_data_dir(port: int) -> Path:
    """Where kafka.sh keeps the broker it started on ``port``: settings, pid file, logs."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "ocpp-gw" / f"kafka-data-{port}"


def kafka_client_env(port: int) -> dict[str, str]:
    """The ``OCPPGW_KAFKA__...`` client settings kafka.sh wrote for the broker it started on ``port``."""
    lines = (kafka_data_dir(port) / "client.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.startswith("OCPPGW_") and "=" in line)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time process ``pid`` has used, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Process:
    """``python -m <module>`` run from the repository root, its output in ``<log_dir>/<name>.log``
    (appended to, or started afresh)."""

    def __init__(
        self,
        name: str,
        module: str,
        env: Mapping[str, str],
        log_dir: Path,
        args: Sequence[str] = (),
        append: bool = False,
    ) -> None:
        self.name = name
        self.killed = False
        """Whether it was told to end (:meth:`kill`, :meth:`stop`); an end otherwise is a crash."""
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "a" if append else "w")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    @property
    def exit_code(self) -> int | None:
        """The exit code, or None while it runs."""
        return self.popen.poll()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise :class:`Exited`, with the log's tail, if it has ended."""
        if self.popen.poll() is not None:
            raise Exited(f"{self.name} exited with {self.popen.returncode} (log {self.log_path}):\n{self.tail()}")

    def wait_for_log(self, needles: str | tuple[str, ...], timeout: float = 60.0) -> None:
        """Wait until the log holds ``needles`` (or one of them)."""
        wanted = (needles,) if isinstance(needles, str) else needles

        def seen() -> bool:
            ended = self.popen.poll() is not None  # before the read, so its last lines count
            if any(needle in self.log_text() for needle in wanted):
                return True
            if ended:
                self.check_alive()
            return False

        wait_until(seen, timeout, f"{self.name} to log {wanted!r}")

    def wait_ready(self, status_port: int, timeout: float = 90.0) -> None:
        """Poll the program's ``/readyz`` until it answers 200."""

        def up() -> bool:
            self.check_alive()
            return ready(status_port)

        wait_until(up, timeout, f"{self.name}'s /readyz", interval=0.1)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.popen.pid)

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def send_signal(self, number: signal.Signals) -> None:
        self.popen.send_signal(number)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end; the exit code (``subprocess.TimeoutExpired`` after ``timeout``)."""
        return self.popen.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, as the fault suite causes one."""
        self.killed = True
        self.popen.kill()
        self.popen.wait()

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds; the exit code."""
        self.killed = True
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode
