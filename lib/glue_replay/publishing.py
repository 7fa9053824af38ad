"""The publish job's arguments: which entities, which sink for each, what to do with dead letters.

    --sink kinesis:arn:aws:kinesis:eu-west-1:123456789012:stream/events   every entity's default
    --entity_sinks '{"orders": "sqs:https://sqs.../orders.fifo"}'          per-entity overrides
    --entities invoices,orders                                          only these (default: all)
    --dead_letters retry|skip [--dead_letter_ids e1,e2]     resolve dead letters, then publish
    --fail_on_dead_letter true                              exit 1 when an event is dead-lettered

Parsed and validated completely before Spark starts (no Spark import here), with the same
near-miss refusal as the replay jobs: ``--sinks`` or ``--Sink`` is refused, never ignored.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from glue_replay.arguments import fields_from_argv
from glue_replay.errors import InvalidRequestError
from glue_replay.request import DEFAULT_WAREHOUSE, parse_warehouse
from glue_replay.sinks import SinkSpec, parse_sink

PUBLISH_FIELDS = (
    "warehouse",
    "sink",
    "entity_sinks",
    "entities",
    "dead_letters",
    "dead_letter_ids",
    "fail_on_dead_letter",
)
#: Where events go when no sink is configured: JSONL files under the warehouse (local use).
DEFAULT_SINK_FOLDER = "published"
_EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")
_ATTEMPT_SUFFIX = re.compile(r"_attempt_\d+$")


class DeadLetterAction(StrEnum):
    #: Send the chosen dead events again, then the events held behind them, in order.
    RETRY = "retry"
    #: Give up on the chosen dead events (recorded as ``skipped``), then send the held ones.
    SKIP = "skip"


@dataclass(frozen=True)
class PublishArguments:
    warehouse: str
    default_sink: SinkSpec
    entity_sinks: Mapping[str, SinkSpec] = field(default_factory=dict)
    entities: tuple[str, ...] = ()
    dead_letters: DeadLetterAction | None = None
    dead_letter_ids: tuple[str, ...] = ()
    fail_on_dead_letter: bool = False
    run_id: str = ""

    def sink_for(self, entity: str) -> SinkSpec:
        return self.entity_sinks.get(entity, self.default_sink)


def parse_publish_arguments(argv: Sequence[str], known_entities: Sequence[str]) -> PublishArguments:
    """A publish job's ``sys.argv`` -> :class:`PublishArguments`; :class:`InvalidRequestError`
    naming the first wrong argument."""
    fields = fields_from_argv(argv[1:], PUBLISH_FIELDS)
    warehouse = parse_warehouse(fields.get("warehouse", "").strip() or DEFAULT_WAREHOUSE)
    sink_text = fields.get("sink", "").strip()
    default_sink = (
        parse_sink(sink_text, "sink")
        if sink_text
        else SinkSpec("file", f"{_absolute(warehouse)}/{DEFAULT_SINK_FOLDER}")
    )
    entity_sinks = _entity_sinks(fields.get("entity_sinks", ""), known_entities)
    entities = _entities(fields.get("entities", ""), known_entities)
    action_text = fields.get("dead_letters", "").strip()
    try:
        action = DeadLetterAction(action_text) if action_text else None
    except ValueError:
        raise InvalidRequestError(
            "dead_letters", f"{action_text!r} is not an action", "retry or skip"
        ) from None
    ids = tuple(
        dict.fromkeys(part.strip() for part in fields.get("dead_letter_ids", "").split(","))
    )
    ids = tuple(i for i in ids if i)
    for event_id in ids:
        if not _EVENT_ID.match(event_id):
            raise InvalidRequestError(
                "dead_letter_ids", f"{event_id[:40]!r} is not an event id", "outbox event ids"
            )
    if ids and action is None:
        raise InvalidRequestError(
            "dead_letter_ids", "given without --dead_letters", "--dead_letters retry|skip"
        )
    return PublishArguments(
        warehouse=warehouse,
        default_sink=default_sink,
        entity_sinks=entity_sinks,
        entities=entities or tuple(known_entities),
        dead_letters=action,
        dead_letter_ids=ids,
        fail_on_dead_letter=_flag(fields.get("fail_on_dead_letter", ""), "fail_on_dead_letter"),
        run_id=_run_id(fields.get("JOB_RUN_ID", "")),
    )


def _entity_sinks(text: str, known: Sequence[str]) -> dict[str, SinkSpec]:
    if not text.strip():
        return {}
    accepted = 'a JSON object of entity -> sink, e.g. {"orders": "sqs:<queue URL>"}'
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise InvalidRequestError("entity_sinks", "is not JSON", accepted) from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidRequestError("entity_sinks", "is not an object of strings", accepted)
    for entity in value:
        if entity not in known:
            raise InvalidRequestError(
                "entity_sinks", f"{entity!r} is not a pipeline", ", ".join(known)
            )
    return {entity: parse_sink(uri, "entity_sinks") for entity, uri in value.items()}


def _entities(text: str, known: Sequence[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    for name in names:
        if name not in known:
            raise InvalidRequestError("entities", f"{name!r} is not a pipeline", ", ".join(known))
    return names


def _flag(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in ("", "false"):
        return False
    if value == "true":
        return True
    raise InvalidRequestError(name, f"{text!r} is not a flag", "true or false")


def _run_id(job_run_id: str) -> str:
    """Glue's job run id without its ``_attempt_N`` suffix, else a new one."""
    return _ATTEMPT_SUFFIX.sub("", job_run_id) if job_run_id else f"publish-{uuid.uuid4()}"


def _absolute(warehouse: str) -> str:
    return warehouse.rstrip("/") if "://" in warehouse else str(Path(warehouse).resolve())
