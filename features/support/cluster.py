"""A cluster of gateway instances and a CSMS on topics of their own, started fresh for a scenario."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from testing.harness import csms_env, gateway_env, metric_samples, topics_env, wait_until

from .processes import Program

CLUSTER_BASE_PORT = 19100


def latest_partitions(log_text: str) -> list[int] | None:
    """The partitions the gateway's latest assignment log line names, or None before any."""
    latest = None
    for line in log_text.splitlines():
        if '"partitions"' in line and ("partitions assigned" in line or "owns no messages_out partition" in line):
            latest = json.loads(line)["partitions"]
    return latest


class Cluster:
    def __init__(self, servers: str, size: int, log_dir: Path, partitions: int = 6) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.in_topic, self.out_topic, self.routes_topic = (
            f"c_in_{suffix}",
            f"c_out_{suffix}",
            f"c_routes_{suffix}",
        )
        self.servers = servers
        kafka = {
            "OCPPGW_KAFKA__SERVERS": servers,
            **topics_env("c", suffix),
            "OCPPGW_KAFKA__NUM_PARTITIONS": str(partitions),
        }
        base = csms_env(kafka, CLUSTER_BASE_PORT + 20)
        self.csms = Program(f"cluster-csms-{suffix}", "csms_server", base, log_dir)
        self.gateways: list[Program] = []
        self.status_ports: list[int] = []
        self.urls: list[str] = []
        for index in range(size):
            port = CLUSTER_BASE_PORT + index
            env = gateway_env(base, port, CLUSTER_BASE_PORT + 10 + index, f"gw-{index + 1}")
            self.status_ports.append(CLUSTER_BASE_PORT + 10 + index)
            self.gateways.append(Program(f"cluster-gw{index + 1}-{suffix}", "ocpp_gw", env, log_dir))
            self.urls.append(f"ws://127.0.0.1:{port}/ocpp")
        self.killed: set[int] = set()
        self.partitions = partitions

    def wait_ready(self) -> None:
        """Wait for the CSMS, and until the gateways' latest assignments split the partitions between them."""
        self.csms.wait_for_log("csms ready", timeout=90)
        for gateway in self.gateways:
            gateway.wait_for_log(("gateway ready", "gateway listening"), timeout=90)

        def settled() -> bool:
            owned = [latest_partitions(g.log_text()) for g in self.gateways]
            if any(o is None for o in owned):
                return False
            flat = [p for o in owned for p in o or []]
            return sorted(flat) == list(range(self.partitions))

        wait_until(settled, 60, "the gateways' assignments to cover every partition once")

    def kill(self, index: int) -> None:
        self.gateways[index].kill()
        self.killed.add(index)

    def alive(self) -> list[int]:
        return [i for i in range(len(self.gateways)) if i not in self.killed]

    def records_read(self) -> list[dict[str, float]]:
        """Each live gateway's ``ocpp_gw_csms_records_total`` by outcome, scraped from its /metrics."""
        return [
            {
                labels["outcome"]: value
                for labels, value in metric_samples(self.status_ports[i], "ocpp_gw_csms_records_total")
            }
            for i in self.alive()
        ]

    def stop(self) -> None:
        for program in [*self.gateways, self.csms]:
            program.stop()
