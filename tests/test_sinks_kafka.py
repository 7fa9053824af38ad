"""The Kafka sink against a real Apache Kafka broker (3.9.2, KRaft) on loopback, through
:func:`deliver`.

One broker for the module (``tests/kafka_broker.py``, from the jars ``scripts/fetch_kafka.py``
fetches; the module is skipped when they are not there), a fresh topic per test. Every test reads
back what the topic holds, partition by partition from offset 0, with a consumer, and compares
whole lists of records (key, value, headers) against the events sent: per partition in offset
order, and which partition each key is on (the one a Java producer picks: murmur2 of the key).
Failures are real: a record over the limit, a topic whose broker-side limit is lower, a port no
broker listens on, a topic that does not exist, the broker stopped between two calls.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from glue_replay.sinks.base import (
    Delivery,
    Event,
    Outcome,
    Rejection,
    RetryPolicy,
    SinkCallError,
    deliver,
)
from glue_replay.sinks.kafka import KafkaSink, parse_target
from kafka_broker import KafkaBroker, free_port, kafka_jars

POLICY = RetryPolicy(attempts=3, base_delay=0)
OCCURRED = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
PARTITIONS = 3
#: The delivery timeout of the tests where no broker answers: short, so three attempts are quick.
SHORT_TIMEOUT_MS = 1500


def event(aggregate_id: str, version: int, *, kind: str = "customer", pad: int = 0) -> Event:
    """Version ``version`` of ``kind`` ``aggregate_id``; ``pad`` characters make it bigger."""
    payload = json.dumps({"id": aggregate_id, "version": version, "note": "x" * pad})
    return Event(
        event_id=f"{kind}/{aggregate_id}/v{version}",
        aggregate_type=kind,
        aggregate_id=aggregate_id,
        event_type=f"{kind}.updated",
        payload=payload,
        occurred_at=OCCURRED,
        request_id="fix-42",
        replay_mode="targeted",
    )


#: A sink to measure events with (size_of needs no producer, so none is ever made).
_SIZER = KafkaSink("127.0.0.1:1/sizes")


def sized(aggregate_id: str, version: int, size: int) -> Event:
    """An event whose record is exactly ``size`` bytes as the sink counts them."""
    base = _SIZER.size_of(event(aggregate_id, version))
    padded = event(aggregate_id, version, pad=size - base)
    assert _SIZER.size_of(padded) == size
    return padded


# -- the broker and reading a topic back -----------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    jars = kafka_jars()
    if jars is None:
        pytest.skip("the Kafka broker's jars are not fetched: run scripts/fetch_kafka.py")
    with KafkaBroker(tmp_path_factory.mktemp("kafka"), jars) as running:
        yield running


_topics = itertools.count(1)


@pytest.fixture
def topic(broker: KafkaBroker) -> str:
    return broker.create_topic(f"events-{next(_topics)}", partitions=PARTITIONS)


@dataclass(frozen=True)
class Record:
    """A record as a consumer of the topic sees it (key, value and headers decoded)."""

    key: str
    value: str
    headers: tuple[tuple[str, str], ...]


def expected(sent: Event) -> Record:
    return Record(
        sent.aggregate_id,
        sent.envelope(),
        (
            ("event_id", sent.event_id),
            ("event_type", sent.event_type),
            ("aggregate_type", sent.aggregate_type),
        ),
    )


def read_topic(broker: KafkaBroker, topic: str) -> dict[int, list[Record]]:
    """Every record of every partition of ``topic``, in offset order: ``{partition: records}``."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "glue-replay-tests",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {p: end_offset(consumer, TopicPartition(topic, p)) for p in partitions}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: dict[int, list[Record]] = {p: [] for p in partitions}
        deadline = time.monotonic() + 30
        while sum(len(r) for r in records.values()) < sum(ends.values()):
            assert time.monotonic() < deadline, f"read {records} of {ends}"
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            headers = tuple((name, value.decode()) for name, value in message.headers() or [])
            records[message.partition()].append(
                Record(message.key().decode(), message.value().decode(), headers)
            )
        return records
    finally:
        consumer.close()


def end_offset(consumer: Consumer, partition: TopicPartition) -> int:
    """The partition's high watermark (the offset its next record gets), asked again while a
    just-restarted broker is not yet its leader."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return int(consumer.get_watermark_offsets(partition, timeout=10)[1])
        except KafkaException as exc:
            if time.monotonic() > deadline or exc.args[0].name() not in (
                "NOT_LEADER_FOR_PARTITION",
                "LEADER_NOT_AVAILABLE",
            ):
                raise
            time.sleep(0.2)


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` (the Java clients' default partitioner), as an unsigned int."""
    m, length = 0x5BD1E995, len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = (int.from_bytes(data[i : i + 4], "little") * m) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length - length % 4
    if length % 4 == 3:
        h ^= data[tail + 2] << 16
    if length % 4 >= 2:
        h ^= data[tail + 1] << 8
    if length % 4 >= 1:
        h = ((h ^ data[tail]) * m) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def java_partition(key: str, partitions: int = PARTITIONS) -> int:
    """The partition a Java producer picks for ``key``: ``toPositive(murmur2(key)) % n``."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def by_partition(sent: Iterable[Event]) -> dict[int, list[Record]]:
    """What the topic must hold after ``sent`` was delivered in this order."""
    records: dict[int, list[Record]] = {p: [] for p in range(PARTITIONS)}
    for e in sent:
        records[java_partition(e.aggregate_id)].append(expected(e))
    return records


def per_key(held: dict[int, list[Record]]) -> dict[str, list[str]]:
    """The ``event_id`` headers of each key's records, in offset order (a key is on one
    partition, so this is the order a consumer reads them in)."""
    keys: dict[str, list[str]] = {}
    for records in held.values():
        for record in records:
            keys.setdefault(record.key, []).append(dict(record.headers)["event_id"])
    return keys


def delivered(*events: Event, attempts: int = 1) -> list[Outcome]:
    return [Outcome(e.event_id, Delivery.DELIVERED, attempts) for e in events]


@dataclass
class Sleeps:
    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def test_murmur2_is_kafkas() -> None:
    # What org.apache.kafka.common.utils.Utils.murmur2 (kafka-clients 3.9.2) answers, as Java
    # ints: keys of 2, 3, 4 and 6 bytes, so every tail length is covered.
    signed = {
        key: h - (1 << 32) if h >= 1 << 31 else h
        for key in (b"21", b"abc", b"abcd", b"foobar")
        for h in [murmur2(key)]
    }
    assert signed == {
        b"21": -973932308,
        b"abc": 479470107,
        b"abcd": -1323649548,
        b"foobar": -790332482,
    }


# -- 1. delivery, order per key, the record format -------------------------------------------------

#: Five aggregates with 4 to 8 versions each (30 events), in delivery order as the outbox hands
#: them over: per aggregate oldest first, aggregates interleaved.
VERSIONS = {"7": 8, "8": 4, "9": 6, "10": 5, "11": 7}
HISTORY = {key: [event(key, v) for v in range(1, n + 1)] for key, n in VERSIONS.items()}
INTERLEAVED = [
    e
    for step in itertools.zip_longest(*HISTORY.values())
    for e in reversed(step)  # 11 first, then 10, 9, 8, 7 in each step
    if e is not None
]


def test_each_aggregate_arrives_in_order_on_its_keys_partition(
    broker: KafkaBroker, topic: str
) -> None:
    sink = KafkaSink(f"{broker.bootstrap}/{topic}")
    sleeps = Sleeps()

    report = deliver(INTERLEAVED, sink, POLICY, sleep=sleeps)
    sink.close()

    # Round k holds the k-th version of every aggregate that has one: 8 rounds, one call each.
    rounds = [
        [HISTORY[key][k] for key in ("11", "10", "9", "8", "7") if k < VERSIONS[key]]
        for k in range(8)
    ]
    assert report.outcomes == delivered(*itertools.chain(*rounds))
    assert report.calls == 8
    assert report.call_bytes == [sum(sink.size_of(e) for e in r) for r in rounds]
    assert sleeps.delays == []
    # Per partition, in offset order: each key's versions 1..n in order, on the partition a Java
    # producer would pick for that key (and the five keys do use all three partitions).
    assert sorted({java_partition(key) for key in VERSIONS}) == [0, 1, 2]
    held = read_topic(broker, topic)
    assert held == by_partition(list(itertools.chain(*rounds)))
    assert per_key(held) == {key: [e.event_id for e in history] for key, history in HISTORY.items()}


def test_what_a_kafka_record_holds(broker: KafkaBroker, topic: str) -> None:
    """The wire format, spelled out once: key, the envelope as value, three headers."""
    sink = KafkaSink(f"{broker.bootstrap}/{topic}")
    assert deliver([event("9", 1)], sink, POLICY).outcomes == delivered(event("9", 1))
    sink.close()

    envelope = (
        '{"event_id":"customer/9/v1","aggregate_type":"customer","aggregate_id":"9",'
        '"event_type":"customer.updated","occurred_at":"2026-11-27T08:30:00.000Z",'
        '"request_id":"fix-42","replay_mode":"targeted",'
        '"payload":{"id": "9", "version": 1, "note": ""}}'
    )
    record = Record(
        "9",
        envelope,
        (
            ("event_id", "customer/9/v1"),
            ("event_type", "customer.updated"),
            ("aggregate_type", "customer"),
        ),
    )
    holds: dict[int, list[Record]] = {p: [] for p in range(PARTITIONS)}
    holds[java_partition("9")] = [record]
    assert read_topic(broker, topic) == holds
    assert sink.size_of(event("9", 1)) == len("9") + len(envelope) + sum(
        len(name) + len(value) for name, value in record.headers
    )


# -- 2. batching -----------------------------------------------------------------------------------


def test_a_round_is_cut_into_calls_of_500_records(broker: KafkaBroker, topic: str) -> None:
    events = [event(f"c{i}", 1) for i in range(1200)]
    sink = KafkaSink(f"{broker.bootstrap}/{topic}")

    report = deliver(events, sink, POLICY)
    sink.close()

    sizes = [sink.size_of(e) for e in events]
    assert max(sizes) * 500 < KafkaSink.limits.max_call_bytes  # the record count binds here
    assert report.calls == 3
    assert report.call_bytes == [sum(sizes[:500]), sum(sizes[500:1000]), sum(sizes[1000:])]
    assert report.outcomes == delivered(*events)
    assert read_topic(broker, topic) == by_partition(events)


def test_a_round_is_cut_into_calls_of_1_mib(broker: KafkaBroker, topic: str) -> None:
    # 200,000 bytes each: five make 1,000,000 bytes, a sixth would pass 1,048,576.
    events = [sized(f"big{i}", 1, 200_000) for i in range(12)]
    sink = KafkaSink(f"{broker.bootstrap}/{topic}")

    report = deliver(events, sink, POLICY)
    sink.close()

    assert report.calls == 3
    assert report.call_bytes == [1_000_000, 1_000_000, 400_000]
    assert report.outcomes == delivered(*events)
    assert read_topic(broker, topic) == by_partition(events)


# -- 3. records a call cannot or may not send ------------------------------------------------------


def test_a_record_over_the_limit_is_dead_and_its_aggregate_held(
    broker: KafkaBroker, topic: str
) -> None:
    # The largest record the limit lets through reaches the topic; one byte more never is sent.
    largest = sized("1", 1, 1_000_000)
    a1, a2, a3 = event("2", 1), sized("2", 2, 1_000_001), event("2", 3)
    b1, b2 = event("3", 1), event("3", 2)
    sink = KafkaSink(f"{broker.bootstrap}/{topic}")

    report = deliver([largest, a1, b1, a2, b2, a3], sink, POLICY)
    sink.close()

    assert report.outcomes == [
        *delivered(largest, a1, b1),
        Outcome(
            a2.event_id,
            Delivery.DEAD,
            0,
            f"1000001 bytes is over kafka:{topic}'s 1000000 bytes per record",
        ),
        *delivered(b2),
        Outcome(
            a3.event_id,
            Delivery.HELD,
            reason=f"held: event {a2.event_id} of aggregate 2 is dead-lettered",
        ),
    ]
    assert read_topic(broker, topic) == by_partition([largest, a1, b1, b2])


def test_a_record_the_topic_refuses_is_dead_at_once(broker: KafkaBroker) -> None:
    """The broker's own limit (a topic with ``max.message.bytes`` below the sink's): the broker
    answers MSG_SIZE_TOO_LARGE for that record, which no retry fixes; the others of the call
    are written."""
    topic = broker.create_topic("small-records", config={"max.message.bytes": "10000"})
    small, large, later = event("4", 1), sized("5", 1, 20_000), event("5", 2)
    sink = KafkaSink(f"{broker.bootstrap}/{topic}")

    report = deliver([small, large, later], sink, POLICY)
    sink.close()

    assert report.outcomes == [
        *delivered(small),
        Outcome(
            large.event_id,
            Delivery.DEAD,
            1,
            f"kafka:{topic} refused it 1 times: MSG_SIZE_TOO_LARGE: Broker: Message size too large",
        ),
        Outcome(
            later.event_id,
            Delivery.HELD,
            reason=f"held: event {large.event_id} of aggregate 5 is dead-lettered",
        ),
    ]
    assert report.calls == 1
    assert read_topic(broker, topic) == by_partition([small])


def test_a_topic_the_cluster_does_not_have_fails_the_call(broker: KafkaBroker) -> None:
    sink = KafkaSink(f"{broker.bootstrap}/no-such-topic", delivery_timeout_ms=SHORT_TIMEOUT_MS)
    first, second = event("6", 1), event("6", 2)

    report = deliver([first, second], sink, POLICY)
    sink.close()

    reason = (
        f"topic no-such-topic is not on {broker.bootstrap} "
        "(UNKNOWN_TOPIC_OR_PART: Broker: Unknown topic or partition)"
    )
    assert report.outcomes == [
        Outcome(
            first.event_id, Delivery.DEAD, 1, f"kafka:no-such-topic refused it 1 times: {reason}"
        ),
        Outcome(
            second.event_id,
            Delivery.HELD,
            reason=f"held: event {first.event_id} of aggregate 6 is dead-lettered",
        ),
    ]
    topics = broker.admin().list_topics(timeout=10).topics
    assert "no-such-topic" not in topics  # and the producer did not create it


# -- 4. no broker answers --------------------------------------------------------------------------


def test_an_unreachable_broker_fails_the_call_and_is_retried(topic: str) -> None:
    port = free_port()  # nothing listens there
    sink = KafkaSink(f"127.0.0.1:{port}/{topic}", delivery_timeout_ms=SHORT_TIMEOUT_MS)
    first, second, other = event("7", 1), event("7", 2), event("8", 1)

    with pytest.raises(SinkCallError) as raised:
        sink.put([first, other])
    reason = (
        f"no broker of 127.0.0.1:{port} acknowledged within 1500 ms "
        "(_MSG_TIMED_OUT: Local: Message timed out; last client error: _TRANSPORT: "
        f"127.0.0.1:{port}/bootstrap: Connect to ipv4#127.0.0.1:{port} failed: "
        "Connection refused (after "
    )
    assert raised.value.retryable
    assert raised.value.reason.startswith(reason), raised.value.reason

    sleeps = Sleeps()
    started = time.monotonic()
    report = deliver([first, other, second], sink, POLICY, sleep=sleeps)
    sink.close()

    assert [(o.event_id, o.delivery, o.attempts) for o in report.outcomes] == [
        (first.event_id, Delivery.DEAD, 3),
        (other.event_id, Delivery.DEAD, 3),
        (second.event_id, Delivery.HELD, 0),
    ]
    for outcome in report.outcomes[:2]:
        assert outcome.reason is not None
        assert outcome.reason.startswith(f"kafka:{topic} refused it 3 times: {reason}")
    assert report.calls == 3
    assert sleeps.delays == [0.0, 0.0]
    # Three calls of one delivery timeout each, no more: a call never waits past it.
    assert 3 * 1.5 <= time.monotonic() - started < 3 * 1.5 + 5


class StopsTheBroker(KafkaSink):
    """The real sink; the broker is stopped once its ``calls``-th call came back."""

    def __init__(self, target: str, broker: KafkaBroker, calls: int, **options: Any) -> None:
        super().__init__(target, **options)
        self.broker, self.calls, self.made = broker, calls, 0

    def put(self, events: Sequence[Event]) -> list[Rejection]:
        rejections = super().put(events)
        self.made += 1
        if self.made == self.calls:
            self.broker.stop()
        return rejections


def test_a_broker_stopped_mid_way_fails_the_next_calls(broker: KafkaBroker, topic: str) -> None:
    sink = StopsTheBroker(
        f"{broker.bootstrap}/{topic}", broker, calls=1, delivery_timeout_ms=SHORT_TIMEOUT_MS
    )
    sleeps = Sleeps()
    try:
        report = deliver(INTERLEAVED, sink, POLICY, sleep=sleeps)
    finally:
        broker.start()  # the next tests need it, whatever happened here

    firsts = [HISTORY[key][0] for key in ("11", "10", "9", "8", "7")]
    seconds = [HISTORY[key][1] for key in ("11", "10", "9", "8", "7")]
    assert [(o.event_id, o.delivery, o.attempts) for o in report.outcomes] == [
        *[(e.event_id, Delivery.DELIVERED, 1) for e in firsts],
        *[(e.event_id, Delivery.DEAD, 3) for e in seconds],
        *[
            (e.event_id, Delivery.HELD, 0)
            for k in range(2, 8)
            for key in ("11", "10", "9", "8", "7")
            if k < VERSIONS[key]
            for e in [HISTORY[key][k]]
        ],
    ]
    dead_reason = (
        f"kafka:{topic} refused it 3 times: no broker of {broker.bootstrap} acknowledged within "
        "1500 ms ("
    )
    for outcome in report.outcomes[5:10]:
        assert outcome.reason is not None
        assert outcome.reason.startswith(dead_reason), outcome.reason
    assert report.calls == 4
    assert sleeps.delays == [0.0, 0.0]
    assert read_topic(broker, topic) == by_partition(firsts)

    # The broker is back: the same sink (its producer reconnects) sends the rest, in order.
    rest = [e for e in INTERLEAVED if e not in firsts]
    again = deliver(rest, sink, POLICY)
    sink.close()
    assert [o.delivery for o in again.outcomes] == [Delivery.DELIVERED] * len(rest)
    held = read_topic(broker, topic)
    assert held == by_partition([*firsts, *rest])
    assert per_key(held) == {key: [e.event_id for e in history] for key, history in HISTORY.items()}


# -- 5. the target ---------------------------------------------------------------------------------


def test_a_target_names_the_brokers_and_the_topic() -> None:
    sink = KafkaSink("broker-1:9092,broker-2:9093/orders.v1")
    assert (sink.bootstrap_servers, sink.topic, sink.description) == (
        "broker-1:9092,broker-2:9093",
        "orders.v1",
        "kafka:orders.v1",
    )
    assert parse_target("[::1]:9092/t") == ("[::1]:9092", "t")
    for bad in ("orders", "broker-1/orders", "broker-1:9092/", "b:9092/bad topic", "b:9092/.."):
        with pytest.raises(ValueError, match="accepted: <host:port>"):
            parse_target(bad)
    sink.close()  # never opened a producer: nothing to close


def test_size_of_counts_the_key_value_and_headers() -> None:
    e = event("é", 1)  # two bytes in UTF-8
    headers = len("event_id") + len(e.event_id.encode()) + len("event_type")
    headers += len(e.event_type) + len("aggregate_type") + len(e.aggregate_type)
    assert _SIZER.size_of(e) == 2 + len(e.envelope().encode()) + headers
