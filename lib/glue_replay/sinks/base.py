"""What a sink is, and the delivery loop every sink shares: batching, retries, per-key order.

A sink adapter knows one API: its limits (:class:`BatchLimits`), how big an event is on the wire
(:meth:`Sink.size_of`) and how to send one call's worth of events (:meth:`Sink.put`). It never
retries: :func:`deliver` does, the same way for every sink:

- events are sent in **rounds**: round ``k`` holds the ``k``-th event of every aggregate, so one
  call never carries two events of one aggregate, and an aggregate's next event is sent only after
  its previous one was accepted. Per ``aggregate_id`` nothing is ever in flight out of order, even
  when an API accepts part of a call (Kinesis ``FailedRecordCount``, SQS/SNS/EventBridge
  ``Failed`` entries);
- each round is cut into calls within the API's limits (records and bytes per call); an event
  larger than the API takes per record is rejected at once (it would never fit);
- rejected events a retry can fix (throttling, an internal error) are sent again with exponential
  backoff, up to ``RetryPolicy.attempts`` calls; what still fails is **dead**, and the later events
  of its aggregate are **held** (not sent): :class:`Outcome` says which, and why.

No Spark here: :func:`deliver` runs wherever the events are (an executor's partition).
"""

from __future__ import annotations

import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One outbox event as a sink sends it. ``payload`` is the normalized record, JSON text."""

    event_id: str
    aggregate_type: str
    aggregate_id: str
    event_type: str
    payload: str
    occurred_at: datetime
    request_id: str
    replay_mode: str

    def envelope(self) -> str:
        """The event as one JSON object (the payload embedded as JSON, not as a string): the
        message body of every sink but EventBridge, whose ``detail`` is the payload.

            Event("e-1", "invoices", "7", "invoice.updated", '{"id": 7}', ...)
            -> '{"event_id": "e-1", ..., "payload": {"id": 7}}'
        """
        return envelope_json(self)


def envelope_json(event: Event) -> str:
    import json

    head = json.dumps(
        {
            "event_id": event.event_id,
            "aggregate_type": event.aggregate_type,
            "aggregate_id": event.aggregate_id,
            "event_type": event.event_type,
            "occurred_at": iso_millis(event.occurred_at),
            "request_id": event.request_id,
            "replay_mode": event.replay_mode,
        },
        separators=(",", ":"),
    )
    return f'{head[:-1]},"payload":{event.payload}}}'


def iso_millis(moment: datetime) -> str:
    """``2026-01-05 10:00:00.123456+00:00`` -> ``"2026-01-05T10:00:00.123Z"`` (naive = UTC): the
    timestamp format of every JSON glue-replay writes (``JSON_OPTIONS``)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class BatchLimits:
    """What one API call takes: records per call, bytes per call, bytes per record."""

    max_records: int
    max_call_bytes: int
    max_record_bytes: int


@dataclass(frozen=True)
class Rejection:
    """One event a call did not accept: why, and whether sending it again may succeed."""

    event_id: str
    reason: str
    retryable: bool = True


class SinkCallError(Exception):
    """A whole call failed (throttled, refused, unreachable): no event of it was accepted.

    Raised by :meth:`Sink.put`; picklable (it crosses from executors to the driver).
    """

    def __init__(self, reason: str, retryable: bool = True) -> None:
        super().__init__(reason, retryable)
        self.reason = reason
        self.retryable = retryable

    def __str__(self) -> str:
        return self.reason


class Sink(ABC):
    """One destination API. Subclasses set :attr:`limits` and implement :meth:`put`.

    ``description`` names the destination for the ledger and the logs (``kinesis:orders``);
    it never holds a secret.
    """

    limits: BatchLimits
    description: str

    def size_of(self, event: Event) -> int:
        """The bytes ``event`` counts for against :attr:`limits` (the body, by default)."""
        return len(event.envelope().encode())

    @abstractmethod
    def put(self, events: Sequence[Event]) -> list[Rejection]:
        """Send ``events`` in one call (within :attr:`limits`, at most one per aggregate);
        return the ones the API did not accept. Raise :class:`SinkCallError` when the call
        as a whole failed. Never retries by itself."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients and connections."""


class Delivery(StrEnum):
    DELIVERED = "delivered"
    #: The sink kept refusing it: it goes to the dead-letter table.
    DEAD = "dead"
    #: Not sent: an earlier event of its aggregate is dead (or was already held).
    HELD = "held"


@dataclass(frozen=True)
class Outcome:
    event_id: str
    delivery: Delivery
    attempts: int = 0
    reason: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Calls per event at most, and the backoff between them (full jitter, capped)."""

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before call ``attempt + 1`` (``attempt`` >= 1)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


@dataclass
class _Pending:
    event: Event
    size: int
    attempts: int = 0
    last_reason: str | None = None


@dataclass
class DeliveryReport:
    """What :func:`deliver` did: one outcome per event, and the calls it made."""

    outcomes: list[Outcome] = field(default_factory=list)
    calls: int = 0
    call_bytes: list[int] = field(default_factory=list)


def rounds(events: Iterable[Event]) -> list[list[Event]]:
    """``events`` in delivery order -> rounds: round ``k`` has the ``k``-th event of each aggregate.

    [a1, b1, a2, c1, a3] -> [[a1, b1, c1], [a2], [a3]]
    """
    seen: dict[str, int] = {}
    result: list[list[Event]] = []
    for event in events:
        rank = seen.get(event.aggregate_id, 0)
        seen[event.aggregate_id] = rank + 1
        if rank == len(result):
            result.append([])
        result[rank].append(event)
    return result


def calls_within(pending: Sequence[_Pending], limits: BatchLimits) -> list[list[_Pending]]:
    """Cut ``pending`` (in order) into calls of at most ``max_records`` and ``max_call_bytes``."""
    calls: list[list[_Pending]] = []
    current: list[_Pending] = []
    current_bytes = 0
    for item in pending:
        if current and (
            len(current) == limits.max_records or current_bytes + item.size > limits.max_call_bytes
        ):
            calls.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += item.size
    if current:
        calls.append(current)
    return calls


def deliver(
    events: Sequence[Event],
    sink: Sink,
    policy: RetryPolicy = RetryPolicy(),
    *,
    held_aggregates: Iterable[str] = (),
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send ``events`` (in delivery order: per aggregate, oldest first) to ``sink``.

    Aggregates in ``held_aggregates`` already have a dead-lettered event: theirs are held.
    """
    report = DeliveryReport()
    blocked: dict[str, str] = dict.fromkeys(held_aggregates, "an earlier event")
    for round_events in rounds(events):
        pending: list[_Pending] = []
        for event in round_events:
            if event.aggregate_id in blocked:
                report.outcomes.append(
                    Outcome(
                        event.event_id,
                        Delivery.HELD,
                        reason=f"held: {blocked[event.aggregate_id]} of aggregate "
                        f"{event.aggregate_id} is dead-lettered",
                    )
                )
                continue
            size = sink.size_of(event)
            if size > sink.limits.max_record_bytes:
                reason = (
                    f"{size} bytes is over {sink.description}'s "
                    f"{sink.limits.max_record_bytes} bytes per record"
                )
                report.outcomes.append(Outcome(event.event_id, Delivery.DEAD, 0, reason))
                blocked[event.aggregate_id] = f"event {event.event_id}"
                continue
            pending.append(_Pending(event, size))
        for failed in _send_round(pending, sink, policy, report, sleep):
            blocked[failed.event.aggregate_id] = f"event {failed.event.event_id}"
    return report


def _send_round(
    pending: list[_Pending],
    sink: Sink,
    policy: RetryPolicy,
    report: DeliveryReport,
    sleep: Callable[[float], None],
) -> list[_Pending]:
    """Send one round until every event is accepted or out of attempts; returns the dead."""
    dead: list[_Pending] = []
    attempt = 0
    while pending:
        attempt += 1
        if attempt > 1:
            sleep(policy.delay(attempt - 1))
        retry: list[_Pending] = []
        for call in calls_within(pending, sink.limits):
            report.calls += 1
            report.call_bytes.append(sum(item.size for item in call))
            for item in call:
                item.attempts += 1
            try:
                rejected = {r.event_id: r for r in sink.put([item.event for item in call])}
            except SinkCallError as exc:
                rejected = {
                    item.event.event_id: Rejection(item.event.event_id, exc.reason, exc.retryable)
                    for item in call
                }
            for item in call:
                rejection = rejected.get(item.event.event_id)
                if rejection is None:
                    report.outcomes.append(
                        Outcome(item.event.event_id, Delivery.DELIVERED, item.attempts)
                    )
                    continue
                item.last_reason = rejection.reason
                if rejection.retryable and item.attempts < policy.attempts:
                    retry.append(item)
                else:
                    dead.append(item)
        pending = retry
    for item in dead:
        log.warning(
            "%s refused event %s after %d attempts: %s",
            sink.description,
            item.event.event_id,
            item.attempts,
            item.last_reason,
        )
        report.outcomes.append(
            Outcome(
                item.event.event_id,
                Delivery.DEAD,
                item.attempts,
                f"{sink.description} refused it {item.attempts} times: {item.last_reason}",
            )
        )
    return dead
