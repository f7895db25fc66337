"""Prometheus metrics of the gateway (names listed in the README), in a registry of their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MESSAGE_TYPES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR", 5: "CALLRESULTERROR", 6: "SEND"}

CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015})
"""The close codes RFC 6455 §7.4.1 and the IANA registry define; each gets its own label."""


def close_code_label(code: int) -> str:
    """A fixed set of labels for close codes: a station chooses codes 3000-4999 freely, and each
    would otherwise be a new metric series."""
    if code in CLOSE_CODES:
        return str(code)
    if 3000 <= code <= 3999:
        return "3xxx"
    if 4000 <= code <= 4999:
        return "4xxx"
    return "other"


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connected = Gauge("ocpp_gw_connected_stations", "Stations connected now", ["protocol"], registry=r)
        self.opened = Counter(
            "ocpp_gw_connections_opened_total", "Station connections accepted", ["protocol"], registry=r
        )
        self.closed = Counter(
            "ocpp_gw_connections_closed_total",
            "Station connections ended, by WebSocket close code",
            ["code"],
            registry=r,
        )
        self.refused = Counter(
            "ocpp_gw_handshakes_refused_total", "Handshakes refused, by reason", ["reason"], registry=r
        )
        self.frames = Counter(
            "ocpp_gw_frames_total",
            "OCPP-J frames passed on, by direction and message type",
            ["direction", "message_type"],
            registry=r,
        )
        self.callerrors = Counter(
            "ocpp_gw_callerrors_generated_total",
            "CALLERRORs the gateway wrote itself, by error code",
            ["code"],
            registry=r,
        )
        self.events = Counter(
            "ocpp_gw_session_events_total",
            "Rejections, drops, timeouts and other session events, by kind",
            ["event"],
            registry=r,
        )
        self.timeouts = Counter(
            "ocpp_gw_call_timeouts_total", "Calls answered by the gateway after a timeout", ["direction"], registry=r
        )
        self.round_trip = Histogram(
            "ocpp_gw_call_round_trip_seconds",
            "Station CALL to the CSMS's answer, through Kafka, as the gateway sees it",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.produce_latency = Histogram(
            "ocpp_gw_kafka_produce_seconds",
            "Time from handing a record to the producer to Kafka's acknowledgement",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5),
            registry=r,
        )
        self.produce_errors = Counter("ocpp_gw_kafka_produce_errors_total", "Records Kafka did not take", registry=r)
        self.records_in = Counter(
            "ocpp_gw_csms_records_total", "messages_out records read, by what became of them", ["outcome"], registry=r
        )
        self.rebalances = Counter("ocpp_gw_rebalances_total", "messages_out partition assignments", registry=r)
        self.partitions = Gauge("ocpp_gw_owned_partitions", "messages_out partitions this instance owns", registry=r)
        self.csms_queue = Gauge("ocpp_gw_csms_call_queue_depth", "CSMS CALLs waiting for their turn", registry=r)
        self.publish_queue = Gauge("ocpp_gw_publish_queue_depth", "Records waiting for the producer", registry=r)
        self.unsent_records = Gauge(
            "ocpp_gw_kafka_unsent_records",
            "Records not yet handed to Kafka: queued, or kept for another attempt after Kafka did not take them",
            registry=r,
        )
        self.unsent_bytes = Gauge("ocpp_gw_kafka_unsent_bytes", "Bytes of those records", registry=r)
        self.kept_records = Gauge(
            "ocpp_gw_kafka_kept_records", "Records Kafka did not take that wait for another attempt", registry=r
        )
        self.consumers_replaced = Counter(
            "ocpp_gw_kafka_consumers_replaced_total",
            "messages_out consumers replaced after they stopped making progress",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "ocpp_gw_consumer_lag", "messages_out records not yet read, all partitions", registry=r
        )
        self.ready = Gauge("ocpp_gw_ready", "1 when the instance is ready for stations", registry=r)
        self.draining = Gauge("ocpp_gw_draining", "1 while the instance drains", registry=r)


class CsmsMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.answered = Counter(
            "ocpp_csms_calls_answered_total",
            "Station CALLs answered, by action and result",
            ["action", "result"],
            registry=r,
        )
        self.skipped = Counter("ocpp_csms_records_skipped_total", "Records that could not be read", registry=r)
        self.consumers_replaced = Counter(
            "ocpp_csms_kafka_consumers_replaced_total",
            "messages_in consumers replaced after they stopped making progress",
            registry=r,
        )
        self.ready = Gauge("ocpp_csms_ready", "1 when the worker owns partitions of messages_in", registry=r)
