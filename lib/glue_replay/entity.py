"""An entity: one kind of record flowing through ingest -> normalize -> outbox.

Part of the public extension API (``from glue_replay import Entity``). A user declares, for
their own records: the table name, the key and version columns, the id rule requests are
validated with, the normalized schema, the normalize transform, the event names and the BAU
overlap. The library's stages never name a concrete entity: they read all of it from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from pyspark.sql import DataFrame
from pyspark.sql.types import (
    DateType,
    DecimalType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from glue_replay.errors import PipelineDefinitionError
from glue_replay.request import DEFAULT_IDS, IdRule

#: Columns the library adds around an entity's own; an entity's schema may not use them.
RESERVED_COLUMNS = frozenset(
    {
        "payload",
        "source_updated_at",
        "ingested_at",
        "request_id",
        "replay_mode",
        "run_id",
        "ingest_date",
        "quarantine_reason",
        "content_hash",
        "raw_ingested_at",
        "normalized_at",
    }
)
#: Types a version column may have: anything totally ordered that "newer" can compare.
VERSION_TYPES = (
    TimestampType,
    TimestampNTZType,
    DateType,
    LongType,
    IntegerType,
    ShortType,
    DecimalType,
    StringType,
)
_NAME = r"[a-z][a-z0-9_]{0,62}"


@dataclass(frozen=True)
class EventTypes:
    """The ``event_type`` of an outbox event, per kind of change: ``order.created``, ..."""

    created: str
    updated: str

    @classmethod
    def for_aggregate(cls, aggregate: str) -> EventTypes:
        return cls(created=f"{aggregate}.created", updated=f"{aggregate}.updated")


@dataclass(frozen=True)
class Entity:
    """One kind of record. Everything the stages need to know about it, and nothing about I/O.

    * ``name`` names the tables (``raw/<name>``, ``normalized/<name>``, ``quarantine/<name>``)
      and is the outbox's ``aggregate_type``;
    * ``schema`` is the normalized table's business columns, with ``key`` (one row per key,
      the outbox's ``aggregate_id``) and ``version`` (the latest version wins; an older one never
      overwrites a newer one);
    * ``normalize`` is a pure transform: raw rows (``id``, ``payload``, ``source_updated_at``,
      ``ingested_at``, ...) -> the same rows plus every column of ``schema`` and
      ``quarantine_reason`` (null for a good record). The library adds its own reasons for a
      missing key or version and a key that differs from the raw record's id;
    * ``ids`` validates targeted ids before anything starts (and its help text is what every
      trigger shows);
    * ``events`` are the event types (default ``<aggregate>.created`` / ``.updated``);
    * ``bau_overlap`` is how far before the last BAU watermark the next BAU run starts (late
      commits and clock skew at the source); ``first_bau_lookback`` is the very first BAU window.

    ``Entity(name="orders", aggregate="order", key="order_id", version="modified_at", ...)``
    """

    name: str
    aggregate: str
    schema: StructType
    normalize: Callable[[DataFrame], DataFrame]
    key: str = "id"
    version: str = "updated_at"
    ids: IdRule = DEFAULT_IDS
    events: EventTypes | None = None
    bau_overlap: timedelta = timedelta(minutes=10)
    first_bau_lookback: timedelta = timedelta(hours=24)
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        import re

        for label, value in (("name", self.name), ("aggregate", self.aggregate)):
            if not re.fullmatch(_NAME, value):
                self._refuse(f"{label} {value!r} is not a lower_snake_case name of 1-63 characters")
        columns = self.schema.fieldNames()
        if len(set(columns)) != len(columns):
            self._refuse(f"schema has duplicate columns: {columns}")
        for label, column in (("key", self.key), ("version", self.version)):
            if column not in columns:
                self._refuse(f"{label} column {column!r} is not in the schema ({columns})")
        if self.key == self.version:
            self._refuse("key and version must be different columns")
        reserved = sorted(RESERVED_COLUMNS.intersection(columns))
        if reserved:
            self._refuse(f"schema uses the library's column names {reserved}")
        if "id" in columns and self.key != "id":
            self._refuse("schema has a column 'id' that is not the key (raw's id column)")
        version_type = self.schema[self.version].dataType
        if not isinstance(version_type, VERSION_TYPES):
            self._refuse(
                f"version column {self.version!r} is {version_type.simpleString()}; "
                "accepted: timestamp, date, integer, decimal or string"
            )
        if self.bau_overlap < timedelta(0) or self.first_bau_lookback <= timedelta(0):
            self._refuse("bau_overlap must be >= 0 and first_bau_lookback > 0")
        if self.events is None:
            object.__setattr__(self, "events", EventTypes.for_aggregate(self.aggregate))

    @property
    def event_types(self) -> EventTypes:
        assert self.events is not None  # set in __post_init__
        return self.events

    @property
    def business_columns(self) -> list[str]:
        return self.schema.fieldNames()

    @property
    def hashed_columns(self) -> list[str]:
        """Columns whose change is a content change (the version itself is not)."""
        return [name for name in self.schema.fieldNames() if name != self.version]

    def _refuse(self, problem: str) -> None:
        raise PipelineDefinitionError(f"entity {self.name!r}: {problem}")
