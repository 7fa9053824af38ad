"""An entity: one kind of record flowing through ingest -> normalize -> outbox.

Part of the public extension API (``from glue_replay import Entity``). A user declares, for
their own records: the table name, the key and version columns, the id rule requests are
validated with, the normalized schema, the normalize transform, the event names and the BAU
overlap, and optionally what marks a record deleted at the source and the shape its payload
has. The library's stages never name a concrete entity: they read all of it from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DataType,
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
        "is_deleted",
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
    """The ``event_type`` of an outbox event, per kind of change: ``order.created``, ...

    ``deleted`` (default ``<aggregate>.deleted``) is emitted when the winning version of a record
    is marked deleted by the entity's :class:`SoftDelete`.
    """

    created: str
    updated: str
    deleted: str | None = None

    @classmethod
    def for_aggregate(cls, aggregate: str) -> EventTypes:
        return cls(
            created=f"{aggregate}.created",
            updated=f"{aggregate}.updated",
            deleted=f"{aggregate}.deleted",
        )

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(t for t in (self.created, self.updated, self.deleted) if t is not None)


@dataclass(frozen=True)
class SoftDelete:
    """What marks a record deleted at the source: a normalized column and the values that mean
    deleted. Only this deletes: a record missing from a full read is reported, never deleted.

    The column is one of the entity's schema columns, compared after the normalize transform
    (so ``status`` " Deleted " normalized to "deleted" matches ``values=("deleted",)``); a
    boolean flag needs no values (``True`` means deleted). A deleted record stays in
    ``normalized/<entity>`` as a tombstone (``is_deleted`` true) and its change is an
    ``<aggregate>.deleted`` event; a later version that no longer matches un-deletes it.

        SoftDelete("status", ("deleted", "erased"))   SoftDelete("is_removed")
    """

    column: str
    values: tuple[object, ...] = (True,)

    def __post_init__(self) -> None:
        if isinstance(self.values, str | bytes) or not isinstance(self.values, tuple | list):
            raise PipelineDefinitionError(
                f"SoftDelete values {self.values!r}: accepted: a tuple of values"
            )
        object.__setattr__(self, "values", tuple(self.values))


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
    * ``events`` are the event types (default ``<aggregate>.created`` / ``.updated`` /
      ``.deleted``);
    * ``deleted`` (optional, a :class:`SoftDelete`) says which column and values mark a record
      deleted at the source: its version becomes a tombstone and a ``deleted`` event;
    * ``payload`` (optional) is the shape of the source's JSON payload (a ``StructType``, leaves
      usually read as text): a record whose field has another JSON shape (an object where a value
      was, a value where an object was, text where a number was) is quarantined with a reason
      naming the field, instead of being normalized with that field silently null;
    * ``bau_overlap`` is how far before the last BAU watermark the next BAU run starts (late
      commits and clock skew at the source); ``first_bau_lookback`` is the very first BAU window.
    * ``source_clock_skew`` bounds how far the source's clock may run ahead of ours: a since
      replay from D reads only raw rows ingested at or after D minus it (a version cannot be
      ingested before the source updated it), so its raw files from before are skipped. Too
      small a margin would miss records a source stamped in our future; the default is a day.
    * ``deletion_vectors`` (default on) creates ``normalized/<name>`` with Delta deletion
      vectors, so a MERGE marks the rows it replaces instead of copying the rest of each file it
      touches. Spark with Delta 2.3+ (Glue 4.0 on) and delta-rs (``glue-replay status``) read
      such tables; Athena's documentation does not list them: set it off for a table Athena
      reads. It applies when the table is created (see the README for an existing table).

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
    source_clock_skew: timedelta = timedelta(days=1)
    deleted: SoftDelete | None = None
    payload: StructType | None = None
    deletion_vectors: bool = True
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
        if self.source_clock_skew < timedelta(0):
            self._refuse("source_clock_skew must be >= 0")
        if self.deleted is not None:
            self._check_soft_delete(self.deleted, columns)
        if self.payload is not None and not isinstance(self.payload, StructType):
            self._refuse(f"payload must be a StructType, got {type(self.payload).__name__}")
        if self.events is None:
            object.__setattr__(self, "events", EventTypes.for_aggregate(self.aggregate))
        elif self.events.deleted is None:
            object.__setattr__(
                self, "events", replace(self.events, deleted=f"{self.aggregate}.deleted")
            )

    def _check_soft_delete(self, deleted: SoftDelete, columns: list[str]) -> None:
        if not isinstance(deleted, SoftDelete):
            self._refuse(f"deleted must be a SoftDelete, got {type(deleted).__name__}")
        if deleted.column not in columns:
            self._refuse(f"deleted column {deleted.column!r} is not in the schema ({columns})")
        if deleted.column in (self.key, self.version):
            self._refuse(f"deleted column {deleted.column!r} is the key or the version")
        if not deleted.values:
            self._refuse("deleted values are empty; accepted: one or more values")
        kind = self.schema[deleted.column].dataType
        wrong = [v for v in deleted.values if not _fits(v, kind)]
        if wrong:
            self._refuse(
                f"deleted values {wrong} do not fit column {deleted.column!r} "
                f"({kind.simpleString()})"
            )

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

    @property
    def deletion_flag(self) -> Column:
        """True where a normalized row is marked deleted (never null; false without a
        :class:`SoftDelete`)."""
        if self.deleted is None:
            return F.lit(False)
        column = F.col(self.deleted.column)
        return F.coalesce(column.isin(*self.deleted.values), F.lit(False))

    def _refuse(self, problem: str) -> None:
        raise PipelineDefinitionError(f"entity {self.name!r}: {problem}")


def _fits(value: object, kind: DataType) -> bool:
    """Whether ``value`` can be compared with a column of ``kind`` without a silent cast."""
    if isinstance(kind, BooleanType):
        return isinstance(value, bool)
    if isinstance(kind, StringType):
        return isinstance(value, str)
    if isinstance(kind, IntegerType | LongType | ShortType | DecimalType):
        return isinstance(value, int) and not isinstance(value, bool)
    return value is not None
