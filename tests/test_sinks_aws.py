"""The AWS sinks against a real ``moto_server`` on loopback, through :func:`deliver`.

Every test sends through the real HTTP path (boto3 -> moto_server) and reads back what arrived at
the destination: Kinesis records shard by shard, SQS messages (SNS topics and the EventBridge bus
deliver to SQS queues subscribed to them). Arrivals are compared as whole lists per aggregate
against the events sent, never as counts.

Partial failures are injected with botocore event handlers on the sink's own client: the chosen
entries are *removed from the request* before it is sent (so moto never stores them) and a failed
result is put back at their place in the answer. Marking entries failed in an answer moto already
accepted would make the read-back see them twice, which no real partial failure does.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from glue_replay.sinks import open_sink, parse_sink
from glue_replay.sinks.aws import EventBridgeSink, KinesisSink, SnsSink, SqsSink
from glue_replay.sinks.base import (
    Delivery,
    Event,
    Outcome,
    RetryPolicy,
    Sink,
    deliver,
)
from moto_process import free_port, running_moto_server

REGION = "eu-west-1"
ACCOUNT = "123456789012"
POLICY = RetryPolicy(attempts=3, base_delay=0)
OCCURRED = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
EVENT_URN = "urn:glue-replay:event:"


def event(
    aggregate_id: str, version: int, *, kind: str = "customer", pad: int = 0, event_id: str = ""
) -> Event:
    """Version ``version`` of ``kind`` ``aggregate_id``; ``pad`` characters make it bigger."""
    payload = json.dumps({"id": aggregate_id, "version": version, "note": "x" * pad})
    return Event(
        event_id=event_id or f"{kind}/{aggregate_id}/v{version}",
        aggregate_type=kind,
        aggregate_id=aggregate_id,
        event_type=f"{kind}.updated",
        payload=payload,
        occurred_at=OCCURRED,
        request_id="fix-42",
        replay_mode="targeted",
    )


# -- moto_server -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    """One event as its destination holds it.

    ``key``: the Kinesis partition key or the FIFO ``MessageGroupId`` (``None`` where the API has
    no ordering key); ``event_id``: from the SQS/SNS message attribute, the EventBridge resource or
    the Kinesis envelope; ``body``: the record data, the message body, or EventBridge's ``detail``
    (as sorted JSON); ``meta``: the other attributes a consumer sees (see ``expected``).
    """

    key: str | None
    event_id: str
    body: str
    meta: tuple[str, ...] = ()


class Aws:
    """Clients on the server, and the destinations the tests create and read back."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.kinesis = boto3.client("kinesis")
        self.sqs = boto3.client("sqs")
        self.sns = boto3.client("sns")
        self.events = boto3.client("events")
        self._names = itertools.count(1)

    def name(self, prefix: str) -> str:
        return f"{prefix}{next(self._names)}"

    # Kinesis
    def new_stream(self, shards: int = 2) -> str:
        name = self.name("stream")
        self.kinesis.create_stream(StreamName=name, ShardCount=shards)
        return name

    def stream_arn(self, name: str) -> str:
        return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"

    def read_stream(self, name: str) -> dict[str, list[Arrival]]:
        """Every record of every shard, in sequence order: ``{shard id: arrivals}``."""
        shards: dict[str, list[Arrival]] = {}
        for shard in self.kinesis.list_shards(StreamName=name)["Shards"]:
            iterator = self.kinesis.get_shard_iterator(
                StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            arrivals = shards.setdefault(shard["ShardId"], [])
            while True:
                answer = self.kinesis.get_records(ShardIterator=iterator, Limit=10_000)
                for record in answer["Records"]:
                    data = record["Data"].decode()
                    arrivals.append(
                        Arrival(record["PartitionKey"], json.loads(data)["event_id"], data)
                    )
                if not answer["Records"]:
                    break
                iterator = answer["NextShardIterator"]
        return shards

    # SQS
    def new_queue(self, fifo: bool = False) -> str:
        if fifo:
            return str(
                self.sqs.create_queue(
                    QueueName=f"{self.name('queue')}.fifo", Attributes={"FifoQueue": "true"}
                )["QueueUrl"]
            )
        return str(self.sqs.create_queue(QueueName=self.name("queue"))["QueueUrl"])

    def queue_arn(self, url: str) -> str:
        return str(
            self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
        )

    def drain(self, url: str) -> list[dict[str, Any]]:
        """Every message of the queue in the order SQS hands them out (each deleted once read, so
        a FIFO group is not blocked by messages in flight)."""
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )

    def read_queue(self, url: str) -> list[Arrival]:
        arrivals = []
        for message in self.drain(url):
            attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
            system = message["Attributes"]
            meta: tuple[str, ...] = (attributes["event_type"], attributes["aggregate_type"])
            if "MessageDeduplicationId" in system:
                meta += (system["MessageDeduplicationId"],)
            arrivals.append(
                Arrival(system.get("MessageGroupId"), attributes["event_id"], message["Body"], meta)
            )
        return arrivals

    # SNS, delivered raw to a queue subscribed to the topic
    def new_topic(self, fifo: bool = False) -> tuple[str, str]:
        name = self.name("topic") + (".fifo" if fifo else "")
        attributes = {"FifoTopic": "true"} if fifo else {}
        topic = str(self.sns.create_topic(Name=name, Attributes=attributes)["TopicArn"])
        queue = self.new_queue(fifo)
        self.sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=self.queue_arn(queue),
            Attributes={"RawMessageDelivery": "true"},
        )
        return topic, queue

    # EventBridge: a bus whose one rule sends every glue-replay event to a queue
    def new_bus(self) -> tuple[str, str]:
        bus = self.name("bus")
        self.events.create_event_bus(Name=bus)
        queue = self.new_queue()
        self.events.put_rule(
            Name="all-glue-replay",
            EventBusName=bus,
            EventPattern=json.dumps({"source": [{"prefix": "glue-replay."}]}),
        )
        self.events.put_targets(
            Rule="all-glue-replay",
            EventBusName=bus,
            Targets=[{"Id": "queue", "Arn": self.queue_arn(queue)}],
        )
        return bus, queue

    def read_bus_queue(self, url: str) -> list[Arrival]:
        arrivals = []
        for message in self.drain(url):
            received = json.loads(message["Body"])
            (resource,) = received["resources"]
            assert resource.startswith(EVENT_URN)
            arrivals.append(
                Arrival(
                    None,
                    resource.removeprefix(EVENT_URN),
                    json.dumps(received["detail"], sort_keys=True),
                    (received["source"], received["detail-type"]),
                )
            )
        return arrivals


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    """One ``moto_server`` for the module, in its own process on a free loopback port, and an
    environment pointing boto3 at it (fake credentials, no profile or config file)."""
    home = tmp_path_factory.mktemp("aws")
    env = pytest.MonkeyPatch()
    with running_moto_server(home) as endpoint:
        try:
            for name in [name for name in os.environ if name.startswith("AWS_")]:
                env.delenv(name)
            env.setenv("AWS_ENDPOINT_URL", endpoint)
            env.setenv("AWS_DEFAULT_REGION", REGION)
            env.setenv("AWS_ACCESS_KEY_ID", "testing")
            env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            env.setenv("AWS_CONFIG_FILE", str(home / "config"))
            env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
            yield Aws(endpoint)
        finally:
            env.undo()


# -- destinations ----------------------------------------------------------------------------------


@dataclass
class Destination:
    """A fresh destination of one kind: the sink that sends to it, how to read it back, and what
    a consumer of it sees of an event."""

    kind: str
    sink: Sink
    read: Callable[[], list[Arrival]]

    def expected(self, sent: Event) -> Arrival:
        if self.kind == "kinesis":
            return Arrival(sent.aggregate_id, sent.event_id, sent.envelope())
        if self.kind in ("sqs", "sns"):
            return Arrival(None, sent.event_id, sent.envelope(), (sent.event_type, "customer"))
        if self.kind in ("sqs-fifo", "sns-fifo"):
            dedup = sent.event_id
            if " " in dedup:  # SQS/SNS take no spaces there: the adapter sends its sha256
                dedup = hashlib.sha256(dedup.encode()).hexdigest()
            return Arrival(
                sent.aggregate_id,
                sent.event_id,
                sent.envelope(),
                (sent.event_type, "customer", dedup),
            )
        assert self.kind == "eventbridge"
        detail = json.dumps(json.loads(sent.payload), sort_keys=True)
        return Arrival(None, sent.event_id, detail, ("glue-replay.customer", sent.event_type))


def make_destination(aws: Aws, kind: str) -> Destination:
    """``kind``'s destination, its sink opened from a sink URI as the publisher does."""
    if kind == "kinesis":
        stream = aws.new_stream()

        def read_stream() -> list[Arrival]:
            return [a for shard in aws.read_stream(stream).values() for a in shard]

        # By ARN: the stream's name is the other spelling, used by the other Kinesis tests.
        return Destination(
            kind, open_sink(parse_sink(f"kinesis:{aws.stream_arn(stream)}")), read_stream
        )
    if kind in ("sqs", "sqs-fifo"):
        queue = aws.new_queue(fifo=kind == "sqs-fifo")
        # The FIFO queue by ARN (resolved with GetQueueUrl), the standard one by URL.
        target = aws.queue_arn(queue) if kind == "sqs-fifo" else queue
        return Destination(
            kind, open_sink(parse_sink(f"sqs:{target}")), lambda: aws.read_queue(queue)
        )
    if kind in ("sns", "sns-fifo"):
        topic, queue = aws.new_topic(fifo=kind == "sns-fifo")
        return Destination(
            kind, open_sink(parse_sink(f"sns:{topic}")), lambda: aws.read_queue(queue)
        )
    assert kind == "eventbridge"
    # moto delivers to a rule's targets only with its ``events`` extra (jsonpath-ng) installed.
    pytest.importorskip("jsonpath_ng", reason="moto_server needs jsonpath-ng to run bus rules")
    bus, queue = aws.new_bus()
    bus_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}"
    return Destination(
        kind, open_sink(parse_sink(f"eventbridge:{bus_arn}")), lambda: aws.read_bus_queue(queue)
    )


def per_aggregate(arrivals: Sequence[Arrival], sent: Sequence[Event]) -> dict[str, list[Arrival]]:
    """``arrivals`` by the aggregate of their event, in arrival order (``?`` for an unknown one)."""
    aggregate_of = {e.event_id: e.aggregate_id for e in sent}
    grouped: dict[str, list[Arrival]] = {}
    for arrival in arrivals:
        grouped.setdefault(aggregate_of.get(arrival.event_id, "?"), []).append(arrival)
    return grouped


def delivered(*events: Event, attempts: int = 1) -> list[Outcome]:
    return [Outcome(e.event_id, Delivery.DELIVERED, attempts) for e in events]


@dataclass
class Sleeps:
    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


# -- 1. every sink delivers, in order per aggregate ----------------------------------------------

C7 = [event("7", 1), event("7", 2), event("7", 3)]
C8 = event("8", 1)
# Its event id has spaces, which a FIFO MessageDeduplicationId does not take.
C9 = event("9", 1, event_id="customer/9/v1 (replayed)")
#: In delivery order, as the outbox hands them over: per aggregate, oldest first.
SMALL = [C7[0], C8, C7[1], C9, C7[2]]

KINDS = ["kinesis", "sqs", "sqs-fifo", "sns", "sns-fifo", "eventbridge"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_sink_delivers_each_aggregate_in_order(aws: Aws, kind: str) -> None:
    destination = make_destination(aws, kind)
    sleeps = Sleeps()

    report = deliver(SMALL, destination.sink, POLICY, sleep=sleeps)

    # Round 1 holds the first event of each aggregate, rounds 2 and 3 customer 7's later ones.
    assert report.outcomes == delivered(C7[0], C8, C9, C7[1], C7[2])
    size = destination.sink.size_of
    assert report.calls == 3
    assert report.call_bytes == [size(C7[0]) + size(C8) + size(C9), size(C7[1]), size(C7[2])]
    assert sleeps.delays == []
    assert per_aggregate(destination.read(), SMALL) == {
        "7": [destination.expected(e) for e in C7],
        "8": [destination.expected(C8)],
        "9": [destination.expected(C9)],
    }


def test_what_a_kinesis_record_and_an_sqs_message_hold(aws: Aws) -> None:
    """The wire format, spelled out once: the envelope with the payload embedded as JSON."""
    kinesis, fifo = make_destination(aws, "kinesis"), make_destination(aws, "sqs-fifo")
    deliver([C9], kinesis.sink, POLICY)
    deliver([C9], fifo.sink, POLICY)

    envelope = (
        '{"event_id":"customer/9/v1 (replayed)","aggregate_type":"customer","aggregate_id":"9",'
        '"event_type":"customer.updated","occurred_at":"2026-11-27T08:30:00.000Z",'
        '"request_id":"fix-42","replay_mode":"targeted",'
        '"payload":{"id": "9", "version": 1, "note": ""}}'
    )
    assert kinesis.read() == [Arrival("9", "customer/9/v1 (replayed)", envelope)]
    assert fifo.read() == [
        Arrival(
            "9",
            "customer/9/v1 (replayed)",
            envelope,
            (
                "customer.updated",
                "customer",
                hashlib.sha256(b"customer/9/v1 (replayed)").hexdigest(),
            ),
        )
    ]


@pytest.mark.parametrize("kind", ["sqs-fifo", "sns-fifo"])
def test_a_fifo_destination_takes_a_resent_event_once(aws: Aws, kind: str) -> None:
    destination = make_destination(aws, kind)

    first = deliver(SMALL, destination.sink, POLICY)
    again = deliver(SMALL, destination.sink, POLICY)

    # Both sends are accepted; the queue drops the second within its deduplication window.
    assert first.outcomes == again.outcomes == delivered(C7[0], C8, C9, C7[1], C7[2])
    assert per_aggregate(destination.read(), SMALL) == {
        "7": [destination.expected(e) for e in C7],
        "8": [destination.expected(C8)],
        "9": [destination.expected(C9)],
    }


def test_eventbridge_sends_the_payload_as_detail_and_the_event_id_as_a_resource(aws: Aws) -> None:
    """What ``PutEvents`` carries, as sent over HTTP (this needs no rule on the bus)."""
    bus = aws.name("bus")
    aws.events.create_event_bus(Name=bus)
    sink = EventBridgeSink(bus)
    bodies: list[Any] = []

    def capture(request: Any, **_: Any) -> None:
        bodies.append(json.loads(request.body))

    sink.client.meta.events.register("before-send.eventbridge.PutEvents", capture)

    report = deliver([C8, C9], sink, POLICY)

    assert report.outcomes == delivered(C8, C9)
    assert bodies == [
        {
            "Entries": [
                {
                    "Source": "glue-replay.customer",
                    "DetailType": "customer.updated",
                    "Detail": '{"id": "8", "version": 1, "note": ""}',
                    "Resources": ["urn:glue-replay:event:customer/8/v1"],
                    "EventBusName": bus,
                },
                {
                    "Source": "glue-replay.customer",
                    "DetailType": "customer.updated",
                    "Detail": '{"id": "9", "version": 1, "note": ""}',
                    "Resources": ["urn:glue-replay:event:customer/9/v1 (replayed)"],
                    "EventBusName": bus,
                },
            ]
        }
    ]


# -- 2. batching limits ----------------------------------------------------------------------------


def test_size_of_counts_what_each_api_counts() -> None:
    sent = event("7", 1)
    envelope = len(sent.envelope().encode())
    attributes = (
        len("event_id") + len("String") + len("customer/7/v1")
        + len("event_type") + len("String") + len("customer.updated")
        + len("aggregate_type") + len("String") + len("customer")
    )  # fmt: skip

    assert KinesisSink("s").size_of(sent) == envelope + len("7")
    assert SqsSink("https://q/1/q").size_of(sent) == envelope + attributes
    assert SnsSink("arn:aws:sns:eu-west-1:1:t").size_of(sent) == envelope + attributes
    assert EventBridgeSink("bus").size_of(sent) == (
        len("glue-replay.customer")
        + len("customer.updated")
        + len(sent.payload)
        + len("urn:glue-replay:event:customer/7/v1")
    )
    assert attributes == 87


def test_kinesis_takes_500_records_per_call(aws: Aws) -> None:
    stream = aws.new_stream()
    sink = KinesisSink(stream)
    # 1,200 aggregates of one event each: one round, cut by the 500 records a call takes.
    sent = [event(f"{n:04d}", 1) for n in range(1200)]
    size = len(sent[0].envelope()) + len("0000")
    assert {sink.size_of(e) for e in sent} == {size}

    report = deliver(sent, sink, POLICY)

    assert report.calls == 3
    assert report.call_bytes == [500 * size, 500 * size, 200 * size]
    assert report.outcomes == delivered(*sent)
    shards = aws.read_stream(stream)
    arrivals = [arrival for shard in shards.values() for arrival in shard]
    assert sorted(arrivals, key=lambda a: a.event_id) == [
        Arrival(e.aggregate_id, e.event_id, e.envelope()) for e in sent
    ]
    # The stream has 2 shards and the partition keys spread over both.
    assert len(shards) == 2
    assert all(shards.values())


@pytest.mark.parametrize("kind", ["sqs", "sns", "eventbridge"])
def test_batch_apis_take_10_entries_per_call(aws: Aws, kind: str) -> None:
    destination = make_destination(aws, kind)
    sent = [event(f"{n:02d}", 1) for n in range(25)]
    size = destination.sink.size_of(sent[0])
    assert {destination.sink.size_of(e) for e in sent} == {size}

    report = deliver(sent, destination.sink, POLICY)

    assert report.calls == 3
    assert report.call_bytes == [10 * size, 10 * size, 5 * size]
    assert report.outcomes == delivered(*sent)
    assert sorted(destination.read(), key=lambda a: a.event_id) == [
        destination.expected(e) for e in sent
    ]


@pytest.mark.parametrize(
    ("kind", "pad", "per_call"),
    [
        # 1 MiB a call: three events of ~300 KB fit, the fourth starts a call.
        ("sqs", 300_000, 3),
        ("eventbridge", 300_000, 3),
        # 256 KiB a call: two events of ~100 KB fit, the third starts a call.
        ("sns", 100_000, 2),
    ],
)
def test_a_call_is_cut_when_its_bytes_would_exceed_the_limit(
    aws: Aws, kind: str, pad: int, per_call: int
) -> None:
    destination = make_destination(aws, kind)
    limit = destination.sink.limits.max_call_bytes
    sent = [event(f"{n}", 1, pad=pad) for n in range(per_call + 1)]
    size = destination.sink.size_of(sent[0])
    assert {destination.sink.size_of(e) for e in sent} == {size}
    assert per_call * size <= limit < (per_call + 1) * size

    report = deliver(sent, destination.sink, POLICY)

    assert report.calls == 2
    assert report.call_bytes == [per_call * size, size]
    assert report.outcomes == delivered(*sent)
    assert destination.read() == [destination.expected(e) for e in sent]


@pytest.mark.parametrize("kind", ["kinesis", "sqs", "sns", "eventbridge"])
def test_an_event_over_the_record_limit_is_dead_and_holds_its_aggregate(
    aws: Aws, kind: str
) -> None:
    destination = make_destination(aws, kind)
    sink = destination.sink
    limit = sink.limits.max_record_bytes
    small_first, too_big, held = event("7", 1), event("7", 2, pad=limit), event("7", 3)
    others = [event("8", 1), event("8", 2)]
    sent = [small_first, others[0], too_big, others[1], held]

    report = deliver(sent, sink, POLICY)

    assert report.outcomes == [
        *delivered(small_first, others[0]),
        Outcome(
            "customer/7/v2",
            Delivery.DEAD,
            0,
            f"{sink.size_of(too_big)} bytes is over {sink.description}'s {limit} bytes per record",
        ),
        *delivered(others[1]),
        Outcome(
            "customer/7/v3",
            Delivery.HELD,
            0,
            "held: event customer/7/v2 of aggregate 7 is dead-lettered",
        ),
    ]
    assert sink.size_of(too_big) > limit
    assert per_aggregate(destination.read(), sent) == {
        "7": [destination.expected(small_first)],
        "8": [destination.expected(e) for e in others],
    }


# -- 3. partial failures, injected on the real HTTP path -------------------------------------------


@dataclass
class Failure:
    code: str
    message: str
    #: In how many calls the event fails (a big number: always).
    times: int
    sender_fault: bool = False


class _Raw:
    """The body of a response botocore did not receive over HTTP."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


class FailEntries:
    """Makes chosen events fail in the calls of ``client`` (Kinesis ``PutRecords`` or SQS
    ``SendMessageBatch``) as the API reports a partial failure.

    ``provide-client-params`` removes the failing entries from the request, so moto never stores
    them; ``after-call`` puts a failed result for each into moto's real answer (at its position
    for Kinesis, in ``Failed`` under its entry ``Id`` for SQS). A call whose every entry fails is
    not sent (the APIs refuse an empty batch): ``before-call`` answers it with no result, and
    ``after-call`` fills in the failures as for any other call.
    """

    def __init__(self, client: Any, failures: dict[str, Failure]) -> None:
        self.remaining = {event_id: failure.times for event_id, failure in failures.items()}
        self.failures = failures
        self.kinesis = client.meta.service_model.service_name == "kinesis"
        operation = "kinesis.PutRecords" if self.kinesis else "sqs.SendMessageBatch"
        self.entries_key = "Records" if self.kinesis else "Entries"
        client.meta.events.register(f"provide-client-params.{operation}", self.choose)
        client.meta.events.register(f"before-call.{operation}", self.skip_if_all_fail)
        client.meta.events.register(f"after-call.{operation}", self.add_failures)

    def event_id(self, entry: dict[str, Any]) -> str:
        if self.kinesis:
            return str(json.loads(entry["Data"])["event_id"])
        return str(entry["MessageAttributes"]["event_id"]["StringValue"])

    def choose(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        entries = params[self.entries_key]
        failing = []
        for index, entry in enumerate(entries):
            event_id = self.event_id(entry)
            if self.remaining.get(event_id, 0) > 0:
                self.remaining[event_id] -= 1
                failing.append((index, entry, self.failures[event_id]))
        context["failing"] = failing
        context["all_fail"] = len(failing) == len(entries)
        if failing and not context["all_fail"]:
            indexes = {index for index, _, _ in failing}
            params[self.entries_key] = [e for i, e in enumerate(entries) if i not in indexes]

    def skip_if_all_fail(self, context: dict[str, Any], **_: Any) -> Any:
        if not context.get("all_fail"):
            return None
        empty = {"FailedRecordCount": 0, "Records": []} if self.kinesis else {}
        return AWSResponse("http://not-sent", 200, {}, _Raw(b"{}")), empty

    def add_failures(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        for index, entry, failure in context.get("failing", []):
            if self.kinesis:
                failed = {"ErrorCode": failure.code, "ErrorMessage": failure.message}
                parsed["Records"].insert(index, failed)
                parsed["FailedRecordCount"] += 1
            else:
                parsed.setdefault("Failed", []).append(
                    {
                        "Id": entry["Id"],
                        "SenderFault": failure.sender_fault,
                        "Code": failure.code,
                        "Message": failure.message,
                    }
                )


THROUGHPUT = "ProvisionedThroughputExceededException"
RATE_EXCEEDED = "Rate exceeded for shard shardId-000000000001 in stream orders."


def test_kinesis_sends_failed_records_again_and_kills_those_that_keep_failing(aws: Aws) -> None:
    stream = aws.new_stream()
    sink = KinesisSink(stream)
    a, b, c = [event("a", v) for v in (1, 2, 3)], event("b", 1), [event("c", v) for v in (1, 2, 3)]
    FailEntries(
        sink.client,
        {
            "customer/a/v1": Failure(THROUGHPUT, RATE_EXCEEDED, times=1),
            "customer/c/v2": Failure(THROUGHPUT, RATE_EXCEEDED, times=99),
        },
    )
    sent = [a[0], b, c[0], a[1], c[1], a[2], c[2]]
    sleeps = Sleeps()

    report = deliver(sent, sink, POLICY, sleep=sleeps)

    assert report.outcomes == [
        # Round 1: a/v1 fails once (its call's others are stored), the next call takes it.
        *delivered(b, c[0]),
        *delivered(a[0], attempts=2),
        # Round 2: c/v2 fails in every one of its 3 calls.
        *delivered(a[1]),
        Outcome(
            "customer/c/v2",
            Delivery.DEAD,
            3,
            f"kinesis:{stream} refused it 3 times: {THROUGHPUT}: {RATE_EXCEEDED}",
        ),
        # Round 3: c/v3 is not sent.
        Outcome(
            "customer/c/v3",
            Delivery.HELD,
            0,
            "held: event customer/c/v2 of aggregate c is dead-lettered",
        ),
        *delivered(a[2]),
    ]
    assert report.calls == 6  # [a1 b1 c1], [a1], [a2 c2], [c2], [c2], [a3]
    assert sleeps.delays == [0.0, 0.0, 0.0]
    arrivals = [arrival for shard in aws.read_stream(stream).values() for arrival in shard]
    assert per_aggregate(arrivals, sent) == {
        "a": [Arrival("a", e.event_id, e.envelope()) for e in a],
        "b": [Arrival("b", b.event_id, b.envelope())],
        "c": [Arrival("c", c[0].event_id, c[0].envelope())],
    }


def test_sqs_sends_failed_entries_again_unless_the_sender_is_at_fault(aws: Aws) -> None:
    queue = aws.new_queue(fifo=True)
    sink = SqsSink(queue)
    x, y, z = [event("x", 1), event("x", 2)], [event("y", 1), event("y", 2)], event("z", 1)
    FailEntries(
        sink.client,
        {
            "customer/x/v1": Failure("InternalError", "We encountered an internal error.", 1),
            "customer/y/v1": Failure(
                "InvalidParameterValue", "Value for parameter is invalid.", 1, sender_fault=True
            ),
        },
    )
    sent = [x[0], y[0], z, x[1], y[1]]
    destination = Destination("sqs-fifo", sink, lambda: aws.read_queue(queue))

    report = deliver(sent, sink, POLICY, sleep=Sleeps())

    assert report.outcomes == [
        *delivered(z),
        *delivered(x[0], attempts=2),
        Outcome(
            "customer/y/v1",
            Delivery.DEAD,
            1,
            f"{sink.description} refused it 1 times: "
            "InvalidParameterValue: Value for parameter is invalid.",
        ),
        Outcome(
            "customer/y/v2",
            Delivery.HELD,
            0,
            "held: event customer/y/v1 of aggregate y is dead-lettered",
        ),
        *delivered(x[1]),
    ]
    assert per_aggregate(destination.read(), sent) == {
        "x": [destination.expected(e) for e in x],
        "z": [destination.expected(z)],
    }


# -- 4. whole-call failures ------------------------------------------------------------------------


def test_a_stream_that_does_not_exist_kills_every_event_of_the_call_at_once(aws: Aws) -> None:
    sink = KinesisSink("no-such-stream")
    sent = [event("a", 1), event("b", 1), event("a", 2)]

    report = deliver(sent, sink, POLICY, sleep=Sleeps())

    reason = (
        "kinesis:no-such-stream refused it 1 times: PutRecords: ResourceNotFoundException "
        f"(Stream no-such-stream under account {ACCOUNT} not found.)"
    )
    # Round 1's one call fails as a whole: both its events are dead, a/v2 is not sent.
    assert report.outcomes == [
        Outcome("customer/a/v1", Delivery.DEAD, 1, reason),
        Outcome("customer/b/v1", Delivery.DEAD, 1, reason),
        Outcome(
            "customer/a/v2",
            Delivery.HELD,
            0,
            "held: event customer/a/v1 of aggregate a is dead-lettered",
        ),
    ]
    assert report.calls == 1


def test_a_queue_arn_that_does_not_exist_is_not_retried(aws: Aws) -> None:
    sink = SqsSink(f"arn:aws:sqs:{REGION}:{ACCOUNT}:no-such-queue")

    report = deliver([event("a", 1)], sink, POLICY, sleep=Sleeps())

    assert report.outcomes == [
        Outcome(
            "customer/a/v1",
            Delivery.DEAD,
            1,
            "sqs:no-such-queue refused it 1 times: GetQueueUrl: "
            "AWS.SimpleQueueService.NonExistentQueue (The specified queue does not exist.)",
        )
    ]


def test_a_throttled_call_is_sent_again(aws: Aws) -> None:
    stream = aws.new_stream()
    sink = KinesisSink(stream)
    throttled: list[str] = []

    def throttle_once(request: Any, **_: Any) -> AWSResponse | None:
        if throttled:
            return None  # sent to moto_server
        throttled.append(request.url)
        body = {"__type": THROUGHPUT, "message": "Rate exceeded for stream."}
        return AWSResponse(request.url, 400, {}, _Raw(json.dumps(body).encode()))

    # before-send: botocore parses the 400 answer as one from Kinesis, the call as a whole fails.
    sink.client.meta.events.register("before-send.kinesis.PutRecords", throttle_once)
    sent = [event("a", 1), event("b", 1)]
    sleeps = Sleeps()

    report = deliver(sent, sink, POLICY, sleep=sleeps)

    assert report.outcomes == delivered(*sent, attempts=2)
    assert (report.calls, sleeps.delays, throttled) == (2, [0.0], [aws.endpoint + "/"])
    arrivals = [arrival for shard in aws.read_stream(stream).values() for arrival in shard]
    assert sorted(arrivals, key=lambda a: a.event_id) == [
        Arrival(e.aggregate_id, e.event_id, e.envelope()) for e in sent
    ]


def test_an_unreachable_endpoint_is_retried_then_dead(aws: Aws) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    client = boto3.client(
        "kinesis", endpoint_url=closed, config=Config(retries={"total_max_attempts": 1})
    )
    sink = KinesisSink("orders", client=client)
    sleeps = Sleeps()

    report = deliver([event("a", 1)], sink, POLICY, sleep=sleeps)

    assert report.outcomes == [
        Outcome(
            "customer/a/v1",
            Delivery.DEAD,
            3,
            "kinesis:orders refused it 3 times: PutRecords: EndpointConnectionError: "
            f'Could not connect to the endpoint URL: "{closed}/"',
        )
    ]
    assert sleeps.delays == [0.0, 0.0]


def test_descriptions_name_the_destination_only() -> None:
    assert [
        KinesisSink(f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/orders").description,
        KinesisSink("orders").description,
        SqsSink(f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/orders.fifo").description,
        SqsSink(f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders").description,
        SnsSink(f"arn:aws:sns:{REGION}:{ACCOUNT}:orders.fifo").description,
        EventBridgeSink(f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/orders").description,
        EventBridgeSink("orders").description,
    ] == [
        "kinesis:orders",
        "kinesis:orders",
        "sqs:orders.fifo",
        "sqs:orders",
        "sns:orders.fifo",
        "eventbridge:orders",
        "eventbridge:orders",
    ]
