"""The CSMS SDK: what a CSMS written on this gateway needs, with the Kafka details kept inside.

- :class:`Csms`, a worker of the CSMS consumer group on ``messages_in``: answers station CALLs with
  handlers registered per action and OCPP version, hands connection events to its callbacks, commits
  a record only after Kafka acknowledged the answers up to it, and replaces a consumer that stops
  making progress.
- :class:`CsmsClient`: starts calls to stations through the route table (:meth:`CsmsClient.send_call`)
  and follows what arrives on ``messages_in`` from the moment it starts (answers, connection events).

Records are read with :func:`ocpp_gw.core.envelope.decode_in_record` and answers written with
:func:`~ocpp_gw.core.envelope.out_record`. The README's "Write your own CSMS" has an example.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import inspect
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from .cli import SHUTDOWN_TIMEOUT, base_parser, bounded, install_stop_handlers, run_program
from .clock import utc_now
from .config import Config, KafkaConfig
from .consumer_watch import ConsumerWatch, stop_quietly
from .core.envelope import EnvelopeError, InRecord, decode_in_record, out_record
from .core.frames import Call, CallError, CallResult
from .core.protocol import MAX_ERROR_DESCRIPTION_LENGTH, Fault, MessageType, OcppVersion, error_code
from .kafka_clients import check_access, make_consumer, make_producer
from .kafka_topics import ensure_topics, partitions_of
from .metrics import CsmsMetrics
from .publisher import RecoveringProducer
from .routes import RouteBook, StationOffline, publish_to_station
from .status import StatusServer

__all__ = [
    "CallErrorReceived",
    "CallTimeout",
    "Csms",
    "CsmsClient",
    "InRecord",
    "OcppVersion",
    "Response",
    "StationCall",
    "StationOffline",
    "to_payload",
    "utc_now",
]

log = logging.getLogger(__name__)

Payload = dict[str, Any]


class DataclassInstance(Protocol):
    """A dataclass instance, such as the ``ocpp`` package's ``call_result.BootNotification(...)``."""

    __dataclass_fields__: ClassVar[dict[str, Any]]


Response = Mapping[str, Any] | DataclassInstance
"""A payload: a mapping as it goes on the wire, or a dataclass of the ``ocpp`` package."""


@dataclass(frozen=True, slots=True)
class StationCall:
    """A station's CALL, as a handler gets it."""

    station_id: str
    version: OcppVersion
    action: str
    payload: Payload
    message_id: str
    record: InRecord
    """The whole ``messages_in`` record: gateway, time received, correlation id."""


Handler = Callable[[StationCall], Response | Awaitable[Response]]
ConnectionHandler = Callable[[InRecord], Awaitable[None] | None]
H = TypeVar("H", bound=Handler)
C = TypeVar("C", bound=ConnectionHandler)


def to_payload(response: object) -> Payload:
    """The wire payload of ``response``: a mapping as it is, an ``ocpp`` dataclass in camelCase without its
    None fields (the ``ocpp`` package's own helpers, imported only when one is used)."""
    if isinstance(response, dict):
        return response
    if isinstance(response, Mapping):
        return dict(response)
    if dataclasses.is_dataclass(response) and not isinstance(response, type):
        from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case

        payload: Payload = snake_to_camel_case(remove_nones(serialize_as_dict(response)))
        return payload
    raise TypeError(f"a payload is a dict or a dataclass, not {type(response).__name__}")


def _call_error(version: OcppVersion, message_id: str, fault: Fault, description: str) -> list[Any]:
    return [
        MessageType.CALLERROR,
        message_id,
        error_code(version, fault),
        description[:MAX_ERROR_DESCRIPTION_LENGTH],
        {},
    ]


COMMIT_INTERVAL_MS = 200
"""How often answered offsets are committed (and how long a poll waits for records)."""


@dataclass
class _Batch:
    """Records read together and the deliveries of their answers."""

    records: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    answers: list[asyncio.Future[Any]]


class _Assignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """Notes the partitions of ``messages_in`` the worker owns and says "csms ready" when it gets them."""

    def __init__(self, csms: Csms) -> None:
        self.csms = csms

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.csms.partitions = sorted(tp.partition for tp in assigned)
        self.csms.log.info("csms ready", extra={"partitions": self.csms.partitions})


class Csms:
    """A CSMS worker: answers the station CALLs on ``messages_in`` with the registered handlers.

    Stateless, so run as many as ``messages_in`` has partitions; they share a consumer group. Reading
    goes on while answers are on their way; offsets are committed only once Kafka acknowledged the
    answers to everything before them, so a crash answers again rather than loses (the gateway drops
    the duplicates). An action without a handler gets the version's NotImplemented CALLERROR, a
    handler that raises an InternalError one, and a record that is not an envelope is logged and skipped.
    Building one does no I/O: register handlers at import time, then :meth:`run` (or :meth:`main`).
    """

    def __init__(self, *, logger: logging.Logger | None = None) -> None:
        self.log = logger or log
        self.metrics = CsmsMetrics()
        self.metrics.ready.set_function(lambda: int(self.ready()))
        self.partitions: list[int] = []
        """The ``messages_in`` partitions this worker owns."""
        self._handlers: dict[tuple[OcppVersion | None, str], Handler] = {}
        self._connection_handlers: list[ConnectionHandler] = []
        self._kafka = KafkaConfig()
        self._settings: dict[str, Any] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: RecoveringProducer | None = None
        self._watch: ConsumerWatch | None = None
        self._reading: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def on(self, action: str, *versions: OcppVersion | str) -> Callable[[H], H]:
        """Register the decorated function as the handler of ``action`` for ``versions`` (none: every version).

        It gets a :class:`StationCall` and returns the response payload (see :data:`Response`); it may be a
        coroutine function. A handler for the record's own version wins over one for every version.
        """
        keys: list[OcppVersion | None] = [OcppVersion(version) for version in versions] or [None]

        def register(handler: H) -> H:
            for version in keys:
                self._handlers[(version, action)] = handler
            return handler

        return register

    def on_connection(self, handler: C) -> C:
        """Register the decorated function for the ``connected`` and ``disconnected`` records this worker
        reads: in order with the station's frames, each record by one worker of the group."""
        self._connection_handlers.append(handler)
        return handler

    async def answer(self, record: InRecord) -> list[Any] | None:
        """The OCPP-J answer to a station's CALL; None for every other record (there is nothing to answer)."""
        call = record.frame
        if record.origin != "station" or not isinstance(call, Call) or call.send:
            return None
        version = record.protocol
        handler = self._handlers.get((version, call.action)) or self._handlers.get((None, call.action))
        if handler is None:
            description = f"{call.action[:200]} is not implemented by this CSMS"
            return _call_error(version, call.message_id, Fault.NOT_IMPLEMENTED, description)
        try:
            response: object = handler(
                StationCall(record.station_id, version, call.action, call.payload, call.message_id, record)
            )
            if inspect.isawaitable(response):
                response = await response
            return [MessageType.CALLRESULT, call.message_id, to_payload(response)]
        except Exception:
            self.log.exception("handler failed", extra={"station_id": record.station_id, "action": call.action})
            return _call_error(version, call.message_id, Fault.INTERNAL, f"{call.action[:200]} handler failed")

    def ready(self) -> bool:
        """It owns partitions of ``messages_in`` and its consumer is not behind without moving."""
        return bool(self.partitions) and self._watch is not None and self._watch.passing

    def main(self, argv: list[str] | None = None, program: str = "csms") -> int:
        """Run as a program until SIGINT or SIGTERM and return its exit status: ``--config PATH`` (default
        ./config.cfg; ``OCPPGW_`` variables override it), logging as ``[logging]`` says, see :meth:`serve`."""
        args = base_parser(program, "A CSMS worker built on ocpp_gw.sdk.").parse_args(argv)

        async def serve(config: Config, args: argparse.Namespace) -> int:
            stop = asyncio.Event()
            install_stop_handlers(stop)
            await check_access(config.kafka)
            await self.serve(config, stop)
            return 0

        return run_program(program, args, serve)

    async def serve(self, config: Config, stop: asyncio.Event) -> None:
        """:meth:`run` with a program's settings (``[kafka]``, ``[csms] auto_offset_reset``) and its status
        port: ``/healthz``, ``/readyz`` and ``/metrics`` on ``[csms] status_host`` and ``status_port`` (0: none)."""
        settings = config.csms
        async with StatusServer(settings.status_host, settings.status_port, self.metrics.registry, self.ready):
            await self.run(config.kafka, stop, auto_offset_reset=settings.auto_offset_reset)

    async def run(
        self,
        kafka: KafkaConfig,
        stop: asyncio.Event | None = None,
        *,
        group_id: str | None = None,
        auto_offset_reset: str = "earliest",
    ) -> None:
        """Answer until ``stop`` is set (without one, until cancelled): create the topics if they are missing,
        join ``group_id`` (default ``[kafka] csms_consumer_group``) and read ``messages_in``."""
        self._kafka, self._stop = kafka, stop or asyncio.Event()
        self._settings = {
            "group_id": group_id or kafka.csms_consumer_group,
            "auto_offset_reset": auto_offset_reset,
            "enable_auto_commit": False,
            "request_timeout_ms": kafka.request_timeout_ms,
        }
        await ensure_topics(kafka, kafka.in_messages_topic, kafka.out_messages_topic)
        self._producer = RecoveringProducer(kafka)
        self._consumer = make_consumer(kafka, **self._settings)
        self._watch = ConsumerWatch(
            "messages_in", kafka, self._current_consumer, self._replace_consumer, self.metrics.consumers_replaced
        )
        await self._producer.start()
        await self._start_reading()
        self._watch.start()
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                assert self._reading is not None
                reading = self._reading
                await asyncio.wait((reading, stopping), return_when=asyncio.FIRST_COMPLETED)
                if reading.done() and not reading.cancelled() and self._reading is reading:
                    reading.result()  # the loop ended by itself: a bug or a lasting Kafka error; stop
        finally:
            stopping.cancel()
            await self._watch.stop()
            if self._reading is not None:
                await bounded(self._reading, "answer what was read")
            await bounded(self._producer.stop(), "stop producer")
            await bounded(self._current_consumer().stop(), "leave consumer group")

    def _current_consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "the worker is not running"
        return self._consumer

    async def _start_reading(self) -> None:
        consumer = self._current_consumer()
        await consumer.start()
        consumer.subscribe([self._kafka.in_messages_topic], listener=_Assignment(self))
        self._reading = asyncio.create_task(self._read(consumer, self._stop), name="read-messages_in")

    async def _replace_consumer(self) -> None:
        """Leave a consumer that stopped making progress; a new one rejoins the group and reads again from
        the committed offsets (answers given twice are dropped by the gateway)."""
        if self._reading is not None:
            self._reading.cancel()
        await stop_quietly(self._current_consumer())
        self._consumer = make_consumer(self._kafka, **self._settings)
        await self._start_reading()

    async def _read(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        batches_in_flight: deque[_Batch] = deque()
        next_commit = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=COMMIT_INTERVAL_MS)
            if batches:
                deliveries = [await self._handle(record) for records in batches.values() for record in records]
                batches_in_flight.append(_Batch(batches, [d for d in deliveries if d is not None]))
            if batches_in_flight and loop.time() >= next_commit:
                next_commit = loop.time() + COMMIT_INTERVAL_MS / 1000
                await self._commit_answered(consumer, batches_in_flight)
        await self._commit_answered(consumer, batches_in_flight, wait=True)

    async def _commit_answered(self, consumer: AIOKafkaConsumer, batches: deque[_Batch], wait: bool = False) -> None:
        """Commit the offsets of the oldest batches whose answers Kafka has acknowledged, in order.

        Reading goes on while answers are in flight; a batch with a failed answer is read again
        (the gateway drops the answers that turn out to be duplicates).
        """
        offsets: dict[TopicPartition, int] = {}
        try:
            while batches and (wait or all(f.done() for f in batches[0].answers)):
                batch = batches.popleft()
                results = await asyncio.gather(*batch.answers, return_exceptions=True)
                if any(isinstance(r, BaseException) for r in results):
                    self.log.error("answers not acknowledged; reading their records again")
                    first: dict[TopicPartition, int] = {}
                    for later in (batch, *batches):
                        for tp, records in later.records.items():
                            first[tp] = min(first.get(tp, records[0].offset), records[0].offset)
                    for tp, offset in first.items():
                        consumer.seek(tp, offset)
                    batches.clear()
                    break
                offsets.update({tp: records[-1].offset + 1 for tp, records in batch.records.items()})
            if offsets:
                await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as error:
            self.log.warning("rebalance while committing; the records will be read again", extra={"error": repr(error)})

    async def _handle(self, consumed: ConsumerRecord[bytes, bytes]) -> asyncio.Future[Any] | None:
        """Decode one record and act on it; the delivery of its answer, if it has one."""
        try:
            record = decode_in_record(consumed.key, consumed.value, consumed.headers)
        except EnvelopeError as error:
            self.metrics.skipped.inc()
            self.log.warning(
                "skipping unreadable record",
                extra={"partition": consumed.partition, "offset": consumed.offset, "error": str(error)},
            )
            return None
        if record.kind != "frame":
            await self._tell_connection_handlers(record)
            return None
        reply = await self.answer(record)
        return None if reply is None else await self._send(record, reply)

    async def _tell_connection_handlers(self, record: InRecord) -> None:
        for handler in self._connection_handlers:
            try:
                told = handler(record)
                if inspect.isawaitable(told):
                    await told
            except Exception:
                self.log.exception(
                    "connection handler failed", extra={"station_id": record.station_id, "kind": record.kind}
                )

    async def _send(self, record: InRecord, reply: list[Any]) -> asyncio.Future[Any]:
        """Publish ``reply`` on the record's reply partition, with its correlation id."""
        station_id, action = record.station_id, record.action or "?"
        try:
            value = out_record(reply, record.protocol)
        except TypeError as error:
            self.log.error("handler answer is not JSON", extra={"station_id": station_id, "error": str(error)})
            reply = _call_error(record.protocol, reply[1], Fault.INTERNAL, f"{action[:200]} handler failed")
            value = out_record(reply, record.protocol)
        self.log.info(
            "answering",
            extra={
                "station_id": station_id,
                "action": record.action,
                "message_id": reply[1],
                "correlation_id": record.correlation_id,
            },
        )
        self.metrics.answered.labels(action, "CALLRESULT" if reply[0] == MessageType.CALLRESULT else reply[2]).inc()
        headers = [] if record.correlation_id is None else [("correlation_id", record.correlation_id.encode())]
        topic, key = self._kafka.out_messages_topic, station_id.encode()
        assert self._producer is not None
        try:
            future: asyncio.Future[Any] = await self._producer.send(
                topic, value=value, key=key, partition=record.reply_partition, headers=headers
            )
        except AssertionError:
            self.log.warning(
                "unknown reply partition; answering by key", extra={"reply_partition": record.reply_partition}
            )
            future = await self._producer.send(topic, value=value, key=key, headers=headers)
        except KafkaError as error:
            # Not skipped: the failed delivery makes the worker read this record again and answer it then.
            self.log.error(
                "answer refused by Kafka; will answer again", extra={"station_id": station_id, "error": repr(error)}
            )
            future = asyncio.get_running_loop().create_future()
            future.set_exception(error)
        return future


class CallTimeout(TimeoutError):
    """No answer to a call within its timeout."""


class CallErrorReceived(Exception):
    """A call was answered with a CALLERROR: the station's, or the gateway's (``origin`` "gateway") when
    the station did not answer in time, was not connected, or had too many calls waiting."""

    def __init__(self, record: InRecord) -> None:
        assert isinstance(record.frame, CallError)
        self.record = record
        self.code, self.description, self.details = record.frame.code, record.frame.description, record.frame.details
        self.origin = record.origin
        super().__init__(f"{self.code}: {self.description}")


class CsmsClient:
    """Starts calls to stations, and follows ``messages_in`` from the moment it starts.

    It reads every partition without a consumer group, so each client sees every answer and event.
    Use it as ``async with CsmsClient(kafka) as client:``.
    """

    def __init__(self, kafka: KafkaConfig) -> None:
        self.kafka = kafka
        self._routes: RouteBook | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reading: asyncio.Task[None] | None = None
        self._answers: dict[tuple[str, str], asyncio.Future[InRecord]] = {}
        self._listeners: list[Callable[[InRecord], None]] = []
        self._followers: set[asyncio.Queue[InRecord]] = set()

    async def __aenter__(self) -> CsmsClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Load the route table and start reading ``messages_in`` at its end."""
        kafka = self.kafka
        self._routes = RouteBook(kafka)
        self._consumer = make_consumer(kafka, enable_auto_commit=False)
        self._producer = make_producer(kafka)
        try:
            await self._routes.start()
            await self._consumer.start()
            await self._producer.start()
            topic = kafka.in_messages_topic
            partitions = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
            self._consumer.assign(partitions)
            await self._consumer.seek_to_end(*partitions)
            for partition in partitions:
                await self._consumer.position(partition)  # fixes the end now: what comes later is read
        except BaseException:
            await self.stop()
            raise
        self._reading = asyncio.create_task(self._read(self._consumer), name="client-read-messages_in")

    async def stop(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        for client in (self._producer, self._consumer, self._routes):
            if client is not None:
                with contextlib.suppress(KafkaError, TimeoutError, OSError):
                    await asyncio.wait_for(client.stop(), SHUTDOWN_TIMEOUT)

    async def send_call(self, station_id: str, action: str, payload: Response, timeout: float = 35.0) -> Payload:
        """Call ``action`` on the station and return the payload of its CALLRESULT.

        Raises :class:`StationOffline` (no route), :class:`CallErrorReceived` (a CALLERROR) or
        :class:`CallTimeout` (no answer within ``timeout`` seconds of Kafka taking the call).
        """
        message_id = str(uuid.uuid4())
        key = (station_id, message_id)
        answer = self._answers[key] = asyncio.get_running_loop().create_future()
        try:
            await self.publish_call(station_id, action, payload, message_id)
            try:
                record = await asyncio.wait_for(answer, timeout)
            except TimeoutError:
                raise CallTimeout(f"no answer from {station_id} to {action} within {timeout:g} s") from None
        finally:
            self._answers.pop(key, None)
        if isinstance(record.frame, CallResult):
            return record.frame.payload
        raise CallErrorReceived(record)

    async def publish_call(self, station_id: str, action: str, payload: Response, message_id: str | None = None) -> str:
        """Publish a CALL on the station's route without waiting for its answer (it reaches the :meth:`listen`
        callbacks); returns its message id. Raises :class:`StationOffline` when the station has no route."""
        if self._producer is None or self._routes is None:
            raise RuntimeError("start the client first")
        message_id = message_id or str(uuid.uuid4())
        frame = [MessageType.CALL, message_id, action, to_payload(payload)]
        await publish_to_station(self._producer, self.kafka, self._routes, station_id, frame)
        return message_id

    def listen(self, callback: Callable[[InRecord], None]) -> None:
        """Have ``callback`` called with every record read from now on: frames, answers and events."""
        self._listeners.append(callback)

    def events(self) -> AsyncIterator[InRecord]:
        """The ``connected`` and ``disconnected`` records of every station from now on, as they come."""
        queue: asyncio.Queue[InRecord] = asyncio.Queue()
        self._followers.add(queue)
        return self._follow(queue)

    async def _follow(self, queue: asyncio.Queue[InRecord]) -> AsyncIterator[InRecord]:
        try:
            while True:
                yield await queue.get()
        finally:
            self._followers.discard(queue)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=200)
            except KafkaError as error:
                log.warning("reading messages_in failed; trying again", extra={"error": repr(error)})
                await asyncio.sleep(0.2)
                continue
            for records in batches.values():
                for consumed in records:
                    try:
                        record = decode_in_record(consumed.key, consumed.value, consumed.headers)
                    except EnvelopeError as error:
                        log.warning(
                            "skipping unreadable record", extra={"offset": consumed.offset, "error": str(error)}
                        )
                        continue
                    self._deliver(record)

    def _deliver(self, record: InRecord) -> None:
        frame = record.frame
        if isinstance(frame, CallResult) or (isinstance(frame, CallError) and not frame.to_result):
            answer = self._answers.get((record.station_id, frame.message_id))
            if answer is not None and not answer.done():
                answer.set_result(record)
        elif record.kind != "frame":
            for queue in self._followers:
                queue.put_nowait(record)
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:
                log.exception("record listener failed", extra={"station_id": record.station_id})
