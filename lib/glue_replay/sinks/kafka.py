"""The Kafka sink: one topic, the aggregate id as the record key, every record acknowledged by all
in-sync replicas before a ``put`` returns.

    kafka:broker-1:9092,broker-2:9092/orders   ->   KafkaSink("broker-1:9092,broker-2:9092/orders")

What a consumer of the topic receives, per event:

- key: the ``aggregate_id`` (UTF-8), so an aggregate's events land on one partition, in order;
- value: the event's envelope (:meth:`~glue_replay.sinks.base.Event.envelope`, UTF-8 JSON);
- headers ``event_id``, ``event_type`` and ``aggregate_type`` (UTF-8), so a consumer can route or
  deduplicate without parsing the value.

The client is confluent-kafka (librdkafka), imported only when a producer is made, on first use.
Partitions are chosen with ``murmur2_random``, the partitioner of the Java clients, so a key lands
on the partition any Java producer (Kafka Connect, Streams) picks for it, not on librdkafka's own
CRC32 choice.

**One ``put`` is one call**: the events are handed to the producer and ``flush`` waits for the
broker's answer to every one of them (``acks=all``). Each record's delivery report is mapped on
its own: a broker error a later call may not get (not the partition leader, a request that timed
out, too few in-sync replicas) is a retryable :class:`~glue_replay.sinks.base.Rejection`, one no
retry fixes (a record too large for the topic, authorization) is not. A call in which no event
reached a broker (none reachable, every one timed out) raises a retryable
:class:`~glue_replay.sinks.base.SinkCallError`; one sent to a topic the cluster does not have
raises one that is not retryable.

**Retries belong to** :func:`~glue_replay.sinks.base.deliver`, as for the AWS adapters: the
producer makes one attempt per record (``retries=0``) and the idempotent producer is off. Per-key
order holds without it: ``deliver`` sends an aggregate's next event only in a later round, after
the call holding its previous event came back accepted, so at most one event per key is ever in
flight. Idempotence would only dedupe the producer's *own* resends, which this producer never
makes; a record whose acknowledgement was lost (a timeout after the broker wrote it) is sent again
by ``deliver`` and arrives twice, as with every sink here: consumers deduplicate on the
``event_id`` header.

No SASL or TLS yet: the brokers are reached over PLAINTEXT, so there is no secret to hold or log.
Reasons and logs name the topic and the bootstrap servers, nothing else.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from typing import Any

from glue_replay.sinks.base import BatchLimits, Event, Rejection, Sink, SinkCallError

log = logging.getLogger(__name__)

#: How long a call waits for the broker's acknowledgement of each record (librdkafka's
#: ``message.timeout.ms``, default 300 s): then the record fails with ``_MSG_TIMED_OUT``.
DEFAULT_DELIVERY_TIMEOUT_MS = 30_000
#: What ``flush`` waits beyond the delivery timeout before the call gives up on the producer
#: (it should never need to: librdkafka fails every record by the delivery timeout).
_FLUSH_MARGIN_S = 10.0

#: librdkafka's errors of a record no broker answered for: when every record of a call ends with
#: one of these, the call failed as a whole (:class:`SinkCallError`).
UNANSWERED_ERRORS = frozenset(
    {
        "_MSG_TIMED_OUT",
        "_TIMED_OUT",
        "_TIMED_OUT_QUEUE",
        "_TRANSPORT",
        "_ALL_BROKERS_DOWN",
        "_RESOLVE",
        "_PURGE_QUEUE",
        "_PURGE_INFLIGHT",
    }
)
#: Per-record errors (``KafkaError.name()``) a later call may not get: the Java client's
#: ``RetriableException`` kinds a producer meets, and the unanswered ones. Everything else
#: (``MSG_SIZE_TOO_LARGE``, ``RECORD_LIST_TOO_LARGE``, ``INVALID_RECORD``,
#: ``TOPIC_AUTHORIZATION_FAILED``, ``CLUSTER_AUTHORIZATION_FAILED``, ``POLICY_VIOLATION``, ...) is
#: not retried. confluent-kafka's ``KafkaError.retriable()`` is always ``False`` in a delivery
#: report, so the kinds are listed here.
RETRYABLE_ERRORS = UNANSWERED_ERRORS | frozenset(
    {
        "CORRUPT_MESSAGE",
        "UNKNOWN_TOPIC_OR_PART",
        "LEADER_NOT_AVAILABLE",
        "NOT_LEADER_FOR_PARTITION",
        "REQUEST_TIMED_OUT",
        "BROKER_NOT_AVAILABLE",
        "NETWORK_EXCEPTION",
        "NOT_ENOUGH_REPLICAS",
        "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        "KAFKA_STORAGE_ERROR",
        "FENCED_LEADER_EPOCH",
        "UNKNOWN_LEADER_EPOCH",
        "THROTTLING_QUOTA_EXCEEDED",
        "_UNKNOWN_TOPIC",
        "_QUEUE_FULL",
    }
)
#: The errors of a record sent to a topic the cluster does not have.
UNKNOWN_TOPIC_ERRORS = frozenset({"UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC"})
#: How much of an error message a reason keeps (reasons land in the ledger).
_MAX_MESSAGE = 300

#: A Kafka topic name: 1 to 249 of these characters (``Topic.validate`` in the Java clients).
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_BROKER = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}")
ACCEPTED_TARGET = "<host:port>[,<host:port>...]/<topic>, e.g. broker-1:9092,broker-2:9092/orders"


def parse_target(target: str) -> tuple[str, str]:
    """``"b1:9092,b2:9092/orders"`` -> ``("b1:9092,b2:9092", "orders")``; anything else raises
    :class:`ValueError` saying what is accepted."""
    servers, slash, topic = target.rpartition("/")
    brokers = servers.split(",")
    if not slash or not all(_BROKER.fullmatch(broker) for broker in brokers):
        raise ValueError(f"{target!r} is not a Kafka target; accepted: {ACCEPTED_TARGET}")
    if not _TOPIC.fullmatch(topic) or topic in (".", ".."):
        raise ValueError(
            f"{topic!r} is not a Kafka topic name (1 to 249 of A-Z a-z 0-9 . _ -); "
            f"accepted: {ACCEPTED_TARGET}"
        )
    return servers, topic


def producer_config(
    bootstrap_servers: str, *, delivery_timeout_ms: int = DEFAULT_DELIVERY_TIMEOUT_MS
) -> dict[str, Any]:
    """The librdkafka settings of the sink's producer (see the module docstring for why)."""
    return {
        "bootstrap.servers": bootstrap_servers,
        "client.id": "glue-replay",
        "acks": "all",
        "enable.idempotence": False,
        # One attempt per record and call: deliver() owns retries.
        "retries": 0,
        "message.timeout.ms": delivery_timeout_ms,
        "request.timeout.ms": min(30_000, delivery_timeout_ms),
        # A topic missing from the cluster's metadata for this long fails its records with
        # UNKNOWN_TOPIC_OR_PART (default 30 s: past the delivery timeout, they would only time
        # out, and the call would read as "no broker answered").
        "topic.metadata.propagation.max.ms": min(10_000, delivery_timeout_ms // 2),
        "partitioner": "murmur2_random",
        # Above KafkaSink's 1,000,000 bytes per record plus librdkafka's framing of a record
        # (its default, 1,000,000, would refuse a record at the limit before sending it).
        "message.max.bytes": KafkaSink.limits.max_call_bytes,
        "compression.type": "none",
    }


def record_headers(event: Event) -> list[tuple[str, bytes]]:
    """The headers of ``event``'s record, in this order."""
    return [
        ("event_id", event.event_id.encode()),
        ("event_type", event.event_type.encode()),
        ("aggregate_type", event.aggregate_type.encode()),
    ]


class KafkaSink(Sink):
    """Produce to one topic; ``target`` is ``host:port[,host:port...]/topic``.

    ``producer``: a confluent-kafka ``Producer`` to use instead of one made from
    :func:`producer_config` on first use (the sink closes only a producer it made).
    ``delivery_timeout_ms``: how long a call waits for the broker's acknowledgements.
    """

    # Chosen figures, not a protocol's hard caps (a Kafka "call" is one flush, which librdkafka
    # sends as ProduceRequests to the partitions' leaders):
    # - 1,000,000 bytes per record (key + value + header names and values, see size_of): below
    #   the broker's default per-batch limit, message.max.bytes = 1,048,588 (topic setting
    #   max.message.bytes; Kafka broker configs), with room for the record batch's framing
    #   (61 bytes of header, a few varints per record and header). A topic set lower refuses
    #   bigger records with MSG_SIZE_TOO_LARGE, which is not retried.
    # - 1 MiB per call: the producer's request size (message.max.bytes, set to 1,048,576 in
    #   producer_config), so a call's records never exceed what one request may carry, and
    #   what a failed call sends again stays small. Any record within the per-record limit fits
    #   a call alone.
    # - 500 records per call: a bound on what one flush waits for (as Kinesis PutRecords' 500).
    limits = BatchLimits(max_records=500, max_call_bytes=1_048_576, max_record_bytes=1_000_000)

    def __init__(
        self,
        target: str,
        *,
        producer: Any = None,
        delivery_timeout_ms: int = DEFAULT_DELIVERY_TIMEOUT_MS,
    ) -> None:
        self.target = target
        self.bootstrap_servers, self.topic = parse_target(target)
        self.description = f"kafka:{self.topic}"
        self.delivery_timeout_ms = delivery_timeout_ms
        self._producer = producer
        self._owns_producer = producer is None
        #: The last error librdkafka reported for the client as a whole (``error_cb``): why no
        #: broker answered, for the reason of a failed call.
        self._client_error: str | None = None

    @property
    def producer(self) -> Any:
        if self._producer is None:
            from confluent_kafka import Producer

            config = producer_config(
                self.bootstrap_servers, delivery_timeout_ms=self.delivery_timeout_ms
            )
            self._producer = Producer(config, error_cb=self._on_client_error, logger=log)
        return self._producer

    def _on_client_error(self, error: Any) -> None:
        # "1/1 brokers are down" says less than the connection error before it: keep that one.
        if error.name() != "_ALL_BROKERS_DOWN" or self._client_error is None:
            self._client_error = f"{error.name()}: {error.str()}"

    def size_of(self, event: Event) -> int:
        """The record's key, value and header names and values, in bytes: what librdkafka
        counts against ``message.max.bytes``, less its framing."""
        size = len(event.aggregate_id.encode()) + len(event.envelope().encode())
        return size + sum(len(name) + len(value) for name, value in record_headers(event))

    def put(self, events: Sequence[Event]) -> list[Rejection]:
        from confluent_kafka import KafkaException

        producer = self.producer
        self._client_error = None
        reports: dict[int, Any] = {}

        def delivered(index: int, error: Any, _message: Any) -> None:
            reports[index] = error

        refused: dict[int, Rejection] = {}
        for index, event in enumerate(events):
            try:
                producer.produce(
                    self.topic,
                    value=event.envelope().encode(),
                    key=event.aggregate_id.encode(),
                    headers=record_headers(event),
                    on_delivery=functools.partial(delivered, index),
                )
            except BufferError:
                refused[index] = Rejection(event.event_id, "_QUEUE_FULL: the producer's queue")
            except KafkaException as exc:
                # Refused before sending (librdkafka checks size and topic locally).
                refused[index] = self._rejection(event, exc.args[0])
        self._wait(producer)
        rejections: list[Rejection] = []
        errors: set[str] = set()
        for index, event in enumerate(events):
            if index in refused:
                rejections.append(refused[index])
                errors.add("refused")
            elif index not in reports:
                # Never seen: librdkafka reports every record it took. Sending it again is safer.
                rejections.append(Rejection(event.event_id, "the producer reported nothing"))
                errors.add("unreported")
            elif reports[index] is not None:
                rejections.append(self._rejection(event, reports[index]))
                errors.add(str(reports[index].name()))
        if len(rejections) == len(events) > 0:
            self._raise_for_call(errors, rejections[0].reason)
        return rejections

    def _raise_for_call(self, errors: set[str], first_reason: str) -> None:
        """Every record of the call failed: raise when they failed for one cause of the call as
        a whole. No broker answered: retryable. The topic is not on the cluster (after the
        ``topic.metadata.propagation.max.ms`` wait): not retryable, as for a missing queue or
        stream of the AWS sinks."""
        if errors <= UNANSWERED_ERRORS:
            reason = (
                f"no broker of {self.bootstrap_servers} acknowledged within "
                f"{self.delivery_timeout_ms} ms ({first_reason}"
            )
            if self._client_error:
                reason += f"; last client error: {self._client_error}"
            raise SinkCallError(_clip(reason + ")"), retryable=True)
        if errors <= UNKNOWN_TOPIC_ERRORS:
            raise SinkCallError(
                _clip(f"topic {self.topic} is not on {self.bootstrap_servers} ({first_reason})"),
                retryable=False,
            )

    def _wait(self, producer: Any) -> None:
        """Wait for every record's delivery report; if the producer still holds some after the
        delivery timeout and a margin, purge them, which reports them as ``_PURGE_*``."""
        left = producer.flush(self.delivery_timeout_ms / 1000 + _FLUSH_MARGIN_S)
        if left:
            log.warning("%s: %d records unanswered after flush, purging", self.description, left)
            producer.purge(in_queue=True, in_flight=True)
            producer.flush(_FLUSH_MARGIN_S)

    def _rejection(self, event: Event, error: Any) -> Rejection:
        name = str(error.name())
        return Rejection(event.event_id, _clip(f"{name}: {error.str()}"), name in RETRYABLE_ERRORS)

    def close(self) -> None:
        if self._owns_producer and self._producer is not None:
            # put() flushes every call, so nothing is left to send; close() frees librdkafka's
            # threads and connections now rather than when the object is collected.
            self._producer.flush(self.delivery_timeout_ms / 1000)
            close = getattr(self._producer, "close", None)
            if callable(close):
                close()
            self._producer = None


def _clip(text: str) -> str:
    """``text`` on one line and at most ``_MAX_MESSAGE`` long."""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else f"{text[: _MAX_MESSAGE - 3]}..."
