"""The AWS sinks: Kinesis Data Streams, SQS, SNS and EventBridge, one batch API call per ``put``.

Each adapter knows its API's limits, how the API counts an event's bytes, and how to map the
answer: entries the API refused become :class:`~glue_replay.sinks.base.Rejection` (retryable when
a retry can fix them: throttling, an internal error), a call that failed as a whole becomes
:class:`~glue_replay.sinks.base.SinkCallError`. :func:`~glue_replay.sinks.base.deliver` does the
batching, the ordering and the retries; the botocore clients made here never retry by
themselves (``total_max_attempts=1``), so one ``put`` is exactly one request.

What each destination receives:

- Kinesis: ``Data`` = the event's envelope, ``PartitionKey`` = its ``aggregate_id``;
- SQS and SNS: the envelope as the message body, ``event_id``, ``event_type`` and
  ``aggregate_type`` as String message attributes; FIFO queues and topics (``.fifo``) also get
  ``MessageGroupId`` = ``aggregate_id`` and ``MessageDeduplicationId`` = ``event_id``;
- EventBridge: ``Source`` = ``glue-replay.<aggregate_type>``, ``DetailType`` = ``event_type``,
  ``Detail`` = the payload (the normalized record), ``Resources`` =
  ``["urn:glue-replay:event:<event_id>"]`` (see :class:`EventBridgeSink`).

boto3 is imported only when a client is made; a client is made on first use, from the
environment (``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``, credentials), in the region of the
target's ARN when the target is one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from glue_replay.aws import describe_aws_error
from glue_replay.sinks.base import BatchLimits, Event, Rejection, Sink, SinkCallError

MiB = 1024 * 1024

#: Whole-call error codes a later call may not get (throttling, the service's own failures).
RETRYABLE_CALL_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "KMSThrottlingException",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "SlowDown",
        "InternalFailure",
        "InternalError",
        "InternalException",
        "InternalServerError",
        "KMSInternalException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
#: How much of a service's error message a reason keeps (reasons land in the ledger).
_MAX_MESSAGE = 300

#: ``MessageDeduplicationId`` and ``MessageGroupId``: up to 128 of these characters (SQS and SNS).
_FIFO_TOKEN = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}")
#: A Kinesis partition key is 1 to 256 Unicode characters.
_MAX_PARTITION_KEY = 256


def aws_client(service: str, region: str | None = None) -> Any:
    """A botocore client for ``service`` that never retries: :func:`deliver` owns retries."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    # A session per client: boto3's default session is not safe to share between threads.
    return boto3.session.Session().client(service, region_name=region, config=config)


def call_error(operation: str, exc: Exception) -> SinkCallError:
    """A botocore error of a whole call -> :class:`SinkCallError`, retryable when a later call
    may succeed (throttling, 5xx, a connection that failed), not when it cannot (validation,
    access denied, a destination that does not exist)."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotocoreConnectionError

    reason = _clip(describe_aws_error(exc))
    if isinstance(exc, ClientError):
        # SQS answers in its JSON protocol with query-style codes too:
        # "AWS.SimpleQueueService.NonExistentQueue".
        code = re.split(r"[.#]", str(exc.response.get("Error", {}).get("Code", "")))[-1]
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if not reason.startswith(f"{operation}:"):
            reason = f"{operation}: {reason}"
        return SinkCallError(
            reason, code in RETRYABLE_CALL_ERRORS or status >= 500 or status == 429
        )
    retryable = isinstance(exc, (BotocoreConnectionError, HTTPClientError))
    return SinkCallError(f"{operation}: {reason}", retryable)


def _clip(text: str) -> str:
    """``text`` on one line (an error page's HTML spans many) and at most ``_MAX_MESSAGE`` long."""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else f"{text[: _MAX_MESSAGE - 3]}..."


def _is_aws_error(exc: Exception) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, (ClientError, BotoCoreError))


def _arn_region(target: str) -> str | None:
    """``arn:aws:sqs:eu-west-1:123456789012:orders`` -> ``eu-west-1``; ``None`` for a name/URL."""
    parts = target.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[3]:
        return parts[3]
    return None


def _utf8_len(text: str) -> int:
    return len(text.encode())


def fifo_token(value: str) -> str:
    """``value`` if SQS/SNS take it as a ``MessageDeduplicationId`` or ``MessageGroupId``, else
    its sha256 hex digest.

    Both ids are up to 128 characters of ``[A-Za-z0-9]`` and ASCII punctuation. An event id or an
    aggregate id that is longer or has other characters (a space, a non-ASCII letter) is replaced
    by its sha256 hex digest (64 characters): the same value always gives the same digest, so
    deduplication (same event id) and per-group order (same aggregate id) hold all the same.
    """
    if _FIFO_TOKEN.fullmatch(value):
        return value
    return hashlib.sha256(value.encode()).hexdigest()


def partition_key(aggregate_id: str) -> str:
    """The Kinesis partition key of an aggregate: its id, or the id's sha256 hex digest when the
    id is empty or over Kinesis's 256 characters (one aggregate still maps to one shard)."""
    if 0 < len(aggregate_id) <= _MAX_PARTITION_KEY:
        return aggregate_id
    return hashlib.sha256(aggregate_id.encode()).hexdigest()


class _AwsSink(Sink):
    """What the four adapters share: the target, a client made on first use, error mapping."""

    service: str

    def __init__(self, target: str, *, client: Any = None) -> None:
        self.target = target
        self._client = client
        self._owns_client = client is None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws_client(self.service, _arn_region(self.target))
        return self._client

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            close = getattr(self._client, "close", None)
            if callable(close):
                close()
            self._client = None

    def _call(self, operation: str, send: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
        """``send()`` once; a botocore error becomes :class:`SinkCallError`."""
        try:
            return send()
        except Exception as exc:
            if _is_aws_error(exc):
                raise call_error(operation, exc) from exc
            raise


# -- Kinesis ---------------------------------------------------------------------------------------


class KinesisSink(_AwsSink):
    """``PutRecords`` to a stream, by ARN (``arn:aws:kinesis:...:stream/orders``) or by name.

    ``PartitionKey`` is the aggregate id, so an aggregate's events land on one shard, in order.
    """

    service = "kinesis"
    # Kinesis Data Streams API reference, PutRecords
    # (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html): "Each
    # PutRecords request can support up to 500 records. Each record in the request can be as large
    # as 10 MiB, up to a limit of 10 MiB for the entire request, including partition keys."
    # A record is limited by its stream's MaxRecordSize, which is 1 MiB unless raised with
    # UpdateMaxRecordSize (1024 to 10240 KiB, API_UpdateMaxRecordSize.html): 1 MiB is what every
    # stream takes. "The record size limit applies to the total size of the partition key and data
    # blob." (moto_server still refuses requests over the former 5 MiB.)
    limits = BatchLimits(max_records=500, max_call_bytes=10 * MiB, max_record_bytes=1 * MiB)

    #: Per-record ``ErrorCode`` values a retry can fix.
    RETRYABLE = frozenset(
        {"ProvisionedThroughputExceededException", "InternalFailure", "KMSThrottlingException"}
    )

    def __init__(self, target: str, *, client: Any = None) -> None:
        super().__init__(target, client=client)
        self.stream = {"StreamARN": target} if target.startswith("arn:") else {"StreamName": target}
        self.description = f"kinesis:{target.rsplit('/', 1)[-1]}"

    def size_of(self, event: Event) -> int:
        return _utf8_len(event.envelope()) + _utf8_len(partition_key(event.aggregate_id))

    def put(self, events: Sequence[Event]) -> list[Rejection]:
        records = [
            {"Data": event.envelope().encode(), "PartitionKey": partition_key(event.aggregate_id)}
            for event in events
        ]
        response = self._call(
            "PutRecords", lambda: self.client.put_records(Records=records, **self.stream)
        )
        results: list[Mapping[str, Any]] = list(response.get("Records", []))
        rejections = []
        for index, event in enumerate(events):
            result = results[index] if index < len(results) else None
            if result is None:
                # Never seen from Kinesis; sending it again is safer than dropping it.
                rejections.append(Rejection(event.event_id, "PutRecords returned no result for it"))
            elif result.get("ErrorCode"):
                code = str(result["ErrorCode"])
                reason = _clip(f"{code}: {result.get('ErrorMessage', '')}")
                rejections.append(Rejection(event.event_id, reason, code in self.RETRYABLE))
        return rejections


# -- SQS and SNS -----------------------------------------------------------------------------------


def message_attributes(event: Event) -> dict[str, dict[str, str]]:
    """The String message attributes an SQS or SNS message carries (empty values are not
    allowed by either API, so an empty one is left out)."""
    values = {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "aggregate_type": event.aggregate_type,
    }
    return {
        name: {"DataType": "String", "StringValue": value}
        for name, value in values.items()
        if value
    }


def message_size(event: Event) -> int:
    """The bytes SQS and SNS count for a message: the body, plus each attribute's name, data type
    and value ("All parts of the message attribute, including Name, Type, and Value, are part of
    the message size restriction": SQS MessageAttributeValue, SNS PublishBatch)."""
    size = _utf8_len(event.envelope())
    for name, attribute in message_attributes(event).items():
        size += _utf8_len(name) + _utf8_len(attribute["DataType"])
        size += _utf8_len(attribute["StringValue"])
    return size


def batch_rejections(
    operation: str, events: Sequence[Event], response: Mapping[str, Any]
) -> list[Rejection]:
    """``Failed`` entries of an SQS ``SendMessageBatch`` / SNS ``PublishBatch`` answer ->
    rejections; ``SenderFault`` (the request was wrong) is not retryable, anything else is.

    Entry ``Id`` s are the events' positions in the call: event ids may hold characters the
    ``Id`` (``[A-Za-z0-9_-]{1,80}``) does not take.
    """
    rejections: dict[int, Rejection] = {}
    for failed in response.get("Failed", []):
        index = int(failed["Id"])
        reason = _clip(f"{failed.get('Code', 'Failed')}: {failed.get('Message', '')}")
        event_id = events[index].event_id
        rejections[index] = Rejection(event_id, reason, not failed.get("SenderFault", False))
    succeeded = {int(entry["Id"]) for entry in response.get("Successful", [])}
    for index, event in enumerate(events):
        if index not in succeeded and index not in rejections:
            # Neither accepted nor refused: sending it again is safer than dropping it.
            rejections[index] = Rejection(event.event_id, f"{operation} returned no result for it")
    return [rejections[index] for index in sorted(rejections)]


def _fifo_fields(event: Event) -> dict[str, str]:
    return {
        "MessageGroupId": fifo_token(event.aggregate_id),
        "MessageDeduplicationId": fifo_token(event.event_id),
    }


class SqsSink(_AwsSink):
    """``SendMessageBatch`` to a queue, by URL or by ARN (resolved once with ``GetQueueUrl``).

    A FIFO queue (``.fifo``) gets ``MessageGroupId`` = aggregate id and
    ``MessageDeduplicationId`` = event id (see :func:`fifo_token`), so SQS keeps each aggregate's
    order and drops a resent event within its 5-minute deduplication window.
    """

    service = "sqs"
    # SQS API reference, SendMessageBatch
    # (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html):
    # up to 10 messages; "The maximum allowed individual message size and the maximum total payload
    # size (the sum of the individual lengths of all of the batched messages) are both 1 MiB
    # 1,048,576 bytes" (raised from 256 KiB in 2025). Attributes count towards the size. A queue
    # whose MaximumMessageSize attribute is set lower refuses messages above it.
    limits = BatchLimits(max_records=10, max_call_bytes=1 * MiB, max_record_bytes=1 * MiB)

    def __init__(self, target: str, *, client: Any = None) -> None:
        super().__init__(target, client=client)
        self.fifo = target.endswith(".fifo")
        self._queue_url = None if target.startswith("arn:") else target
        self.description = f"sqs:{re.split(r'[/:]', target)[-1]}"

    @property
    def queue_url(self) -> str:
        """The queue's URL; for an ARN target, asked once from ``GetQueueUrl``."""
        if self._queue_url is None:
            parts = self.target.split(":", 5)
            if len(parts) != 6 or not parts[4] or not parts[5]:
                raise SinkCallError(
                    f"{self.target!r} is not a queue ARN (arn:aws:sqs:<region>:<account>:<name>)",
                    retryable=False,
                )
            account, name = parts[4], parts[5]
            response = self._call(
                "GetQueueUrl",
                lambda: self.client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account),
            )
            self._queue_url = str(response["QueueUrl"])
        return self._queue_url

    def size_of(self, event: Event) -> int:
        return message_size(event)

    def put(self, events: Sequence[Event]) -> list[Rejection]:
        entries = message_entries(events, "MessageBody", fifo=self.fifo)
        queue_url = self.queue_url
        response = self._call(
            "SendMessageBatch",
            lambda: self.client.send_message_batch(QueueUrl=queue_url, Entries=entries),
        )
        return batch_rejections("SendMessageBatch", events, response)


def message_entries(events: Sequence[Event], body: str, *, fifo: bool) -> list[dict[str, Any]]:
    """SQS's and SNS's batch entries: the envelope under ``body``, the attributes, the index as
    the entry id, and the FIFO fields for a FIFO queue or topic."""
    entries = []
    for index, event in enumerate(events):
        entry: dict[str, Any] = {
            "Id": str(index),
            body: event.envelope(),
            "MessageAttributes": message_attributes(event),
        }
        if fifo:
            entry.update(_fifo_fields(event))
        entries.append(entry)
    return entries


class SnsSink(_AwsSink):
    """``PublishBatch`` to a topic ARN; a FIFO topic (``.fifo``) gets ``MessageGroupId`` and
    ``MessageDeduplicationId`` as :class:`SqsSink` does."""

    service = "sns"
    # SNS API reference, PublishBatch
    # (https://docs.aws.amazon.com/sns/latest/api/API_PublishBatch.html): up to 10 messages; "By
    # default, the maximum allowed individual message size and the maximum total payload size (the
    # sum of the individual lengths of all of the batched messages) are both 256 KiB (262,144
    # bytes)", body and attributes included. A topic whose MaximumMessageSize attribute is raised
    # (up to 1 MiB) takes more; 256 KiB is what every topic takes.
    limits = BatchLimits(max_records=10, max_call_bytes=262_144, max_record_bytes=262_144)

    def __init__(self, target: str, *, client: Any = None) -> None:
        super().__init__(target, client=client)
        self.fifo = target.endswith(".fifo")
        self.description = f"sns:{target.rsplit(':', 1)[-1]}"

    def size_of(self, event: Event) -> int:
        return message_size(event)

    def put(self, events: Sequence[Event]) -> list[Rejection]:
        entries = message_entries(events, "Message", fifo=self.fifo)
        response = self._call(
            "PublishBatch",
            lambda: self.client.publish_batch(
                TopicArn=self.target, PublishBatchRequestEntries=entries
            ),
        )
        return batch_rejections("PublishBatch", events, response)


# -- EventBridge -----------------------------------------------------------------------------------


class EventBridgeSink(_AwsSink):
    """``PutEvents`` to an event bus, by ARN or by name.

    ``Detail`` is the payload unchanged (the normalized record), so rules match on the record's
    own fields. EventBridge has no deduplication id and gives each accepted entry an id of its
    own, so a resent event arrives twice: the event id travels in ``Resources`` as
    ``urn:glue-replay:event:<event_id>`` (EventBridge takes any strings there, its own examples
    use ``"resource1"``), and consumers deduplicate on it. Rules can match it too
    (``"resources": [{"prefix": "urn:glue-replay:event:"}]``).
    """

    service = "events"
    # EventBridge API reference, PutEvents
    # (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html): up to 10
    # entries. Entry and request size: 1 MiB since January 2026 ("More room to build: serverless
    # services now support payloads up to 1 MB", AWS Compute Blog, raised from 256 KB), counted as
    # "Calculating PutEvents event entry size" says
    # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html): see size_of.
    limits = BatchLimits(max_records=10, max_call_bytes=1 * MiB, max_record_bytes=1 * MiB)

    #: Per-entry ``ErrorCode`` values a retry can fix.
    RETRYABLE = frozenset({"ThrottlingException", "InternalFailure", "InternalException"})

    def __init__(self, target: str, *, client: Any = None) -> None:
        super().__init__(target, client=client)
        self.description = f"eventbridge:{target.rsplit('/', 1)[-1]}"

    def entry(self, event: Event) -> dict[str, Any]:
        return {
            "Source": f"glue-replay.{event.aggregate_type}",
            "DetailType": event.event_type,
            "Detail": event.payload,
            "Resources": [f"urn:glue-replay:event:{event.event_id}"],
            "EventBusName": self.target,
        }

    def size_of(self, event: Event) -> int:
        """EventBridge's entry size: the UTF-8 bytes of ``Source``, ``DetailType``, ``Detail``
        and each of ``Resources`` (plus 14 for ``Time``, which is not sent: EventBridge stamps
        the time it receives the event)."""
        entry = self.entry(event)
        size = _utf8_len(entry["Source"]) + _utf8_len(entry["DetailType"])
        size += _utf8_len(entry["Detail"])
        return size + sum(_utf8_len(resource) for resource in entry["Resources"])

    def put(self, events: Sequence[Event]) -> list[Rejection]:
        entries = [self.entry(event) for event in events]
        response = self._call("PutEvents", lambda: self.client.put_events(Entries=entries))
        results: list[Mapping[str, Any]] = list(response.get("Entries", []))
        rejections = []
        for index, event in enumerate(events):
            result = results[index] if index < len(results) else None
            if result is None:
                rejections.append(Rejection(event.event_id, "PutEvents returned no result for it"))
            elif result.get("ErrorCode"):
                code = str(result["ErrorCode"])
                reason = _clip(f"{code}: {result.get('ErrorMessage', '')}")
                rejections.append(Rejection(event.event_id, reason, code in self.RETRYABLE))
        return rejections
