"""What the console knows, built from the records it reads: stations, their timelines and meter values.

Pure and bounded: :class:`ConsoleModel` is fed decoded records with their Kafka timestamps (the clock
is the records' own), keeps at most ``max_stations`` stations (disconnected ones leave first),
``timeline_entries`` entries per station and ``timeline_bytes`` of frames over all stations, and
remembers which stations changed and which entries are new until the web layer takes them.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Literal

from ocpp_gw.core.frames import Call, CallError, CallResult, Frame
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.core.routing import Route
from ocpp_gw.sdk import InRecord

from .facts import Transaction, boot_info, connector_status, register_meter_values, register_wh, short

Direction = Literal["in", "out", "event"]
"""in: station (or the gateway for it) to CSMS; out: CSMS to station; event: connection events."""

MAX_FRAME_TEXT = 16_384
"""Characters of a frame kept for the timeline; longer frames are cut and marked."""
MAX_PENDING = 64
"""Calls per station and direction remembered while they wait for their answer (for round-trip times),
and answers read before their call."""
MAX_CONNECTORS = 64
"""Connector statuses kept per station (the ids are the station's to choose)."""
ENTRY_OVERHEAD = 200
"""Bytes an entry costs besides its frame text, for the timeline budget."""
MAX_FRESH = 5_000
"""New entries kept for the live pages between two takes (a slow take loses the oldest; pages reload)."""


@dataclass(slots=True)
class Entry:
    """One line of a station's timeline."""

    seq: int
    station_id: str
    time_ms: int
    direction: Direction
    kind: str
    """call, send, result, error, connected or disconnected."""
    action: str | None = None
    message_id: str | None = None
    rtt_ms: int | None = None
    error_code: str | None = None
    by_gateway: bool = False
    """A CALLERROR the gateway wrote for the station (a timeout, a refused frame), not the station's own."""
    late: bool = False
    text: str = ""
    truncated: bool = False
    gone: bool = False
    """Dropped from its station's timeline (the byte budget's queue skips it)."""

    @property
    def size(self) -> int:
        """Bytes, near enough: Python keeps ASCII text in one byte per character, other text in up to four."""
        text = self.text
        return (len(text) if text.isascii() else 4 * len(text)) + ENTRY_OVERHEAD

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "station_id": self.station_id,
            "time_ms": self.time_ms,
            "direction": self.direction,
            "kind": self.kind,
            "action": self.action,
            "message_id": self.message_id,
            "rtt_ms": self.rtt_ms,
            "error_code": self.error_code,
            "by_gateway": self.by_gateway,
            "late": self.late,
            "text": self.text,
            "truncated": self.truncated,
        }


@dataclass(slots=True)
class Pending:
    """A call waiting for its answer: when it was written, its action, and a 1.6 StartTransaction's meterStart."""

    time_ms: int
    action: str
    meter_start: Any = None


Facts = dict[str, Any]
"""What the console reads in a CSMS answer: its ``status`` and ``transactionId``, if any."""


@dataclass(slots=True)
class Station:
    station_id: str
    protocol: str = ""
    gateway_id: str = ""
    connected: bool = False
    connected_since: str = ""
    last_seen_ms: int = 0
    boot: dict[str, str] = field(default_factory=dict)
    connectors: dict[str, str] = field(default_factory=dict)
    transaction: Transaction | None = None
    timeline: deque[Entry] = field(default_factory=deque)
    pending: dict[Direction, OrderedDict[str, Pending]] = field(
        default_factory=lambda: {"in": OrderedDict(), "out": OrderedDict()}
    )
    early: OrderedDict[str, tuple[Entry, Facts]] = field(default_factory=OrderedDict)
    """Answers read before their call (the two topics are read side by side), by message id."""

    def summary(self) -> dict[str, Any]:
        transaction = self.transaction
        return {
            "id": self.station_id,
            "protocol": self.protocol,
            "gateway": self.gateway_id,
            "connected": self.connected,
            "connected_since": self.connected_since,
            "last_seen_ms": self.last_seen_ms,
            "boot": self.boot,
            "connectors": self.connectors,
            "transaction": None
            if transaction is None
            else {
                "id": transaction.transaction_id,
                "active": transaction.active,
                "energy_wh": round(transaction.energy_wh, 1),
            },
        }


class ConsoleModel:
    """Stations and timelines from ``messages_in``, ``messages_out`` and ``station_routes``."""

    def __init__(self, max_stations: int = 10_000, timeline_entries: int = 200, timeline_bytes: int = 32 << 20):
        self.max_stations = max_stations
        self.timeline_entries = timeline_entries
        self.timeline_bytes = timeline_bytes
        self.stations: OrderedDict[str, Station] = OrderedDict()
        """Least recently seen first."""
        self._offline: OrderedDict[str, None] = OrderedDict()
        """The disconnected stations, the first to leave when there are too many."""
        self.changed: set[str] = set()
        self.fresh: list[Entry] = []
        self._order: deque[Entry] = deque()
        """Every kept entry oldest first, for the byte budget, with up to as many gone ones."""
        self._gone = 0
        self._bytes = 0
        self._seq = itertools.count(1)

    def take_changes(self) -> tuple[list[dict[str, Any]], list[Entry]]:
        """The summaries of stations changed and the entries added since the last call."""
        summaries = [self.stations[s].summary() for s in sorted(self.changed) if s in self.stations]
        fresh, self.fresh, self.changed = self.fresh, [], set()
        return summaries, fresh

    def station_view(self, station_id: str) -> dict[str, Any] | None:
        station = self.stations.get(station_id)
        if station is None:
            return None
        return {
            "station": station.summary(),
            "timeline": [entry.to_json() for entry in sorted(station.timeline, key=_written)],
            "transaction": self.transaction_view(station_id),
        }

    def transaction_view(self, station_id: str) -> dict[str, Any] | None:
        """The station's current (or last) transaction with its meter points, for the chart."""
        station = self.stations.get(station_id)
        transaction = station.transaction if station is not None else None
        return None if transaction is None else transaction.to_json()

    # What the console reads.

    def observe_route(self, station_id: str, route: Route | None) -> None:
        """A ``station_routes`` record: the station's current connection, or none (a tombstone)."""
        if route is None:
            station = self.stations.get(station_id)
            if station is not None and station.connected:
                self._set_connected(station, False)
                self.changed.add(station_id)
            return
        station = self._station(station_id, None)
        self._set_connected(station, True)
        station.gateway_id = route.gateway_id
        station.protocol = route.protocol
        station.connected_since = route.connected_at

    def observe_in(self, record: InRecord, time_ms: int) -> None:
        """A ``messages_in`` record: a station's frame, a CALLERROR the gateway wrote, or a connection event."""
        station = self._station(record.station_id, time_ms)
        station.protocol = record.protocol.value
        if record.kind == "connected":
            self._set_connected(station, True)
            station.gateway_id, station.connected_since = record.gateway_id, record.received_at
            self._add(
                station, Entry(0, station.station_id, time_ms, "event", "connected", text=record.remote_address or "")
            )
            return
        if record.kind == "disconnected":
            if record.gateway_id == station.gateway_id:
                self._set_connected(station, False)
            reason = f"{record.close_code} {record.close_reason or ''}".strip()
            self._add(station, Entry(0, station.station_id, time_ms, "event", "disconnected", text=reason))
            return
        frame = record.frame
        assert frame is not None
        entry = self._frame_entry(station, frame, "in", time_ms, record.action)
        entry.by_gateway = record.origin == "gateway"
        entry.late = record.late
        self._add(station, entry)

    def observe_out(self, station_id: str, frame: Frame, time_ms: int) -> None:
        """A ``messages_out`` record: the CSMS's answer to a station's call, or its own call."""
        station = self._station(station_id, time_ms)
        self._add(station, self._frame_entry(station, frame, "out", time_ms, None))

    # Inside.

    def _station(self, station_id: str, time_ms: int | None) -> Station:
        station = self.stations.get(station_id)
        if station is None:
            self._make_room()
            station = self.stations[station_id] = Station(station_id)
            self._offline[station_id] = None
        else:
            self.stations.move_to_end(station_id)
        if time_ms is not None:
            station.last_seen_ms = max(station.last_seen_ms, time_ms)
        self.changed.add(station_id)
        return station

    def _set_connected(self, station: Station, connected: bool) -> None:
        station.connected = connected
        if connected:
            self._offline.pop(station.station_id, None)
        else:
            self._offline[station.station_id] = None

    def _make_room(self) -> None:
        """Forget stations until one more fits: disconnected ones first, else the least recently seen."""
        while len(self.stations) >= self.max_stations:
            victim = next(iter(self._offline)) if self._offline else next(iter(self.stations))
            gone = self.stations.pop(victim)
            self._offline.pop(victim, None)
            while gone.timeline:
                self._drop(gone.timeline.popleft())
            self.changed.discard(victim)

    def _frame_entry(
        self, station: Station, frame: Frame, direction: Direction, time_ms: int, action: str | None
    ) -> Entry:
        text = frame.text
        entry = Entry(0, station.station_id, time_ms, direction, "call", message_id=frame.message_id)
        entry.text, entry.truncated = text[:MAX_FRAME_TEXT], len(text) > MAX_FRAME_TEXT
        if isinstance(frame, Call):
            entry.kind, entry.action = ("send" if frame.send else "call"), frame.action
            self._understand_call(station, frame.action, frame.payload, time_ms)
            if frame.send:
                return entry
            asked = Pending(time_ms, frame.action, frame.payload.get("meterStart"))
            early = station.early.pop(frame.message_id, None)
            if early is not None and early[0].direction != direction:
                self._complete(station, asked, *early)
                self._readd(early[0])
                return entry
            waiting = station.pending[direction]
            waiting[frame.message_id] = asked
            while len(waiting) > MAX_PENDING:
                waiting.popitem(last=False)
            return entry
        if isinstance(frame, CallError):
            entry.kind, entry.error_code = "error", frame.code
        else:
            entry.kind = "result"
        entry.action = action
        facts: Facts = {}
        if isinstance(frame, CallResult) and direction == "out":
            facts = {key: frame.payload[key] for key in ("status", "transactionId") if key in frame.payload}
        answered: Pending | None = station.pending["out" if direction == "in" else "in"].pop(frame.message_id, None)
        if answered is not None:
            self._complete(station, answered, entry, facts)
        else:
            station.early[frame.message_id] = (entry, facts)
            while len(station.early) > MAX_PENDING:
                station.early.popitem(last=False)
        return entry

    def _complete(self, station: Station, asked: Pending, entry: Entry, facts: Facts) -> None:
        """Pair an answer with its call: its action, the round trip, and what a CSMS answer says."""
        entry.action = entry.action or asked.action
        entry.rtt_ms = max(0, entry.time_ms - asked.time_ms)
        if facts:
            self._understand_answer(station, asked, facts)

    def _readd(self, entry: Entry) -> None:
        """Tell the pages again about an entry that changed (they replace it by its ``seq``)."""
        if not entry.gone:
            self.fresh.append(entry)
            self.changed.add(entry.station_id)

    def _add(self, station: Station, entry: Entry) -> None:
        entry.seq = next(self._seq)
        station.timeline.append(entry)
        self._order.append(entry)
        self._bytes += entry.size
        self.fresh.append(entry)
        while len(station.timeline) > self.timeline_entries:
            self._drop(station.timeline.popleft())
        while self._bytes > self.timeline_bytes:
            oldest = self._order.popleft()
            if oldest.gone:
                self._gone -= 1
                continue
            owner = self.stations.get(oldest.station_id)
            if (
                owner is not None and owner.timeline and owner.timeline[0] is oldest
            ):  # a station's entries leave in order
                owner.timeline.popleft()
            oldest.gone = True
            self._bytes -= oldest.size
        if self._gone > len(self._order) // 2:
            self._order = deque(entry for entry in self._order if not entry.gone)
            self._gone = 0
        if len(self.fresh) > MAX_FRESH:
            del self.fresh[:-MAX_FRESH]

    def _drop(self, entry: Entry) -> None:
        entry.gone = True
        self._gone += 1
        self._bytes -= entry.size

    def _understand_call(self, station: Station, action: str, payload: dict[str, Any], time_ms: int) -> None:
        """What a station's CALL says about it: boot information, connector status, meter values."""
        version = station.protocol
        try:
            if action == "BootNotification":
                station.boot = boot_info(payload, version)
            elif action == "StatusNotification":
                key, status = connector_status(payload, version)
                if key in station.connectors or len(station.connectors) < MAX_CONNECTORS:
                    station.connectors[key] = status
            elif action == "MeterValues" and version == OcppVersion.V16.value:
                transaction = station.transaction
                if (
                    transaction
                    and transaction.active
                    and str(payload.get("transactionId")) == transaction.transaction_id
                ):
                    register_meter_values(transaction, payload.get("meterValue"), time_ms)
            elif action == "StopTransaction" and station.transaction is not None:
                transaction = station.transaction
                if str(payload.get("transactionId")) == transaction.transaction_id:
                    register_wh(transaction, payload.get("meterStop"), time_ms)
                    transaction.active = False
            elif action == "TransactionEvent":
                self._transaction_event(station, payload, time_ms)
        except (AttributeError, TypeError, ValueError, KeyError, ArithmeticError):
            return

    def _transaction_event(self, station: Station, payload: dict[str, Any], time_ms: int) -> None:
        transaction_id = str(payload["transactionInfo"]["transactionId"])
        transaction = station.transaction
        if transaction is None or transaction.transaction_id != transaction_id:
            if payload.get("eventType") != "Started" and transaction is not None and transaction.active:
                return
            transaction = station.transaction = Transaction(transaction_id, time_ms)
        register_meter_values(transaction, payload.get("meterValue"), time_ms)
        if payload.get("eventType") == "Ended":
            transaction.active = False

    def _understand_answer(self, station: Station, asked: Pending, facts: Facts) -> None:
        """What the CSMS's answer to a station call says: the boot verdict, a 1.6 transaction's id."""
        if asked.action == "BootNotification":
            station.boot = {**station.boot, "status": short(facts.get("status", ""))}
        elif asked.action == "StartTransaction" and "transactionId" in facts:
            transaction = station.transaction = Transaction(short(facts["transactionId"]), asked.time_ms)
            register_wh(transaction, asked.meter_start, asked.time_ms)


def _written(entry: Entry) -> tuple[int, int]:
    """Timelines are shown in the order records were written; the topics are read side by side."""
    return entry.time_ms, entry.seq
