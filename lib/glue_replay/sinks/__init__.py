"""Where the publisher sends outbox events: one URI per sink, parsed once, opened where it is used.

    file:/var/lib/replay/published        JSONL files, one per micro-batch (local use, the demo)
    kinesis:arn:aws:kinesis:eu-west-1:123456789012:stream/orders   (or a stream name)
    sqs:https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo  (or the queue's ARN)
    sns:arn:aws:sns:eu-west-1:123456789012:orders.fifo
    eventbridge:arn:aws:events:eu-west-1:123456789012:event-bus/orders  (or a bus name)
    kafka:broker-1:9092,broker-2:9092/orders

A :class:`SinkSpec` is plain data (it is pickled to executors); :func:`open_sink` builds the
adapter, with its client, on the executor that sends. No boto3 import until then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from glue_replay.errors import InvalidRequestError

if TYPE_CHECKING:
    from glue_replay.sinks.base import Sink

SINK_KINDS = ("file", "kinesis", "sqs", "sns", "eventbridge", "kafka")
ACCEPTED = (
    "file:<folder>, kinesis:<stream ARN or name>, sqs:<queue URL or ARN>, sns:<topic ARN>, "
    "eventbridge:<bus ARN or name>, kafka:<host:port,...>/<topic>"
)
_TARGET = re.compile(r"^[A-Za-z0-9:/._,@+=\-]+$")


@dataclass(frozen=True)
class SinkSpec:
    """A sink by kind and target, e.g. ``SinkSpec("kinesis", "arn:aws:kinesis:...")``."""

    kind: str
    target: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"

    @property
    def key(self) -> str:
        """A name for this sink that is safe in a path (its checkpoint folder)."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{self.kind}-{self.target}").strip("_")[:120]

    @property
    def is_fifo(self) -> bool:
        return self.kind in ("sqs", "sns") and self.target.endswith(".fifo")


def parse_sink(text: str, field: str = "sink") -> SinkSpec:
    """``"kinesis:orders"`` -> ``SinkSpec("kinesis", "orders")``; anything else is refused
    naming ``field`` and the accepted forms."""
    kind, colon, target = text.strip().partition(":")
    if not colon or kind not in SINK_KINDS:
        raise InvalidRequestError(field, f"{text!r} is not a sink", ACCEPTED)
    if kind == "file" and target.startswith("//"):
        target = target[2:] if target.startswith("///") else target
    if not target or not _TARGET.match(target):
        raise InvalidRequestError(field, f"{text!r} has no valid {kind} target", ACCEPTED)
    if kind == "kafka":
        from glue_replay.sinks.kafka import parse_target

        try:
            parse_target(target)
        except ValueError as exc:
            raise InvalidRequestError(field, str(exc), "kafka:<host:port,...>/<topic>") from None
    return SinkSpec(kind, target)


def open_sink(spec: SinkSpec) -> Sink:
    """The adapter for ``spec``, ready to :meth:`~glue_replay.sinks.base.Sink.put` (not the file
    sink: the publisher writes files with Spark, see :mod:`glue_replay.sinks.files`)."""
    if spec.kind == "kinesis":
        from glue_replay.sinks.aws import KinesisSink

        return KinesisSink(spec.target)
    if spec.kind == "sqs":
        from glue_replay.sinks.aws import SqsSink

        return SqsSink(spec.target)
    if spec.kind == "sns":
        from glue_replay.sinks.aws import SnsSink

        return SnsSink(spec.target)
    if spec.kind == "eventbridge":
        from glue_replay.sinks.aws import EventBridgeSink

        return EventBridgeSink(spec.target)
    if spec.kind == "kafka":
        from glue_replay.sinks.kafka import KafkaSink

        return KafkaSink(spec.target)
    raise ValueError(f"no record-by-record adapter for {spec.kind} sinks")
