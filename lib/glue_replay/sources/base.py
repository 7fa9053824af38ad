"""The source interface: what a source system's full, since, targeted and BAU reads are.

Part of the public extension API. A source returns a DataFrame of raw rows in
:data:`SOURCE_SCHEMA` — the record's ``id``, its update time at the source (text in any format
``parse_utc_timestamp`` reads, or a timestamp) and the record as JSON, unchanged — and the
ingest stage does the rest: run metadata, the raw append, quarantine, missing ids, the ledger.

Two ways to write one:

* subclass :class:`Source` and return DataFrames (a JDBC read, a parallel fetch on executors);
* subclass :class:`RecordSource` and yield :class:`SourceRecord` s from Python (a small API):
  the records are gathered on the driver, fine for thousands, not for millions.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

#: The environment variable a source's token may come from when no secret is configured.
SOURCE_TOKEN_ENV = "GLUE_REPLAY_SOURCE_TOKEN"  # noqa: S105 - a variable name
SOURCE_COLUMNS = ("id", "updated_at", "payload")


def source_schema() -> StructType:
    """``id string, updated_at string, payload string``: what every source read returns."""
    from pyspark.sql.types import StringType, StructField, StructType

    return StructType([StructField(name, StringType()) for name in SOURCE_COLUMNS])


@dataclass(frozen=True)
class SourceRecord:
    """One record exactly as the source returned it.

    ``payload`` is the record serialised as JSON, unchanged; ``id`` and ``updated_at`` are the
    source's id and update time as text (``None`` when the record lacks them: such records are
    quarantined by the pipeline, never dropped silently).
    """

    id: str | None
    updated_at: str | None
    payload: str

    @classmethod
    def from_json(
        cls, item: Any, *, id_field: str = "id", updated_field: str = "updated_at"
    ) -> SourceRecord:
        """A decoded JSON record -> SourceRecord; anything but an object keeps id/time ``None``.

        ``{"id": 7, "updated_at": "2026-11-20T10:15:30Z", ...}`` -> ``SourceRecord("7", ...)``
        """
        payload = json.dumps(item, separators=(",", ":"), ensure_ascii=False)
        if not isinstance(item, dict):
            return cls(id=None, updated_at=None, payload=payload)
        return cls(
            id=_as_text(item.get(id_field)),
            updated_at=_as_text(item.get(updated_field)),
            payload=payload,
        )


@dataclass(frozen=True)
class SourceSettings:
    """What a deployment tells a source: where it is, its credentials' secret, extra settings.

    Built by the ingest job from its (validated) arguments and handed to the pipeline's source
    factory. :meth:`token` reads the credentials only when the source asks for them.
    """

    source_url: str
    token_secret: str | None = None
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    secrets_client: Any = field(default=None, compare=False, repr=False)

    def token(self) -> str | None:
        """The source's token: from Secrets Manager when a secret is configured (a plain string,
        or JSON with a ``token`` key), else ``$GLUE_REPLAY_SOURCE_TOKEN``, else ``None``."""
        if self.token_secret is None:
            return os.environ.get(SOURCE_TOKEN_ENV) or None
        from glue_replay.secrets import read_secret_token

        return read_secret_token(self.token_secret, self.secrets_client)

    def require(self, name: str) -> str:
        """An extra setting the source cannot do without, or a clear refusal naming it."""
        from glue_replay.errors import InvalidRequestError

        value = self.extra.get(name)
        if not value:
            raise InvalidRequestError(
                name, "is required by this pipeline's source", f"--{name} ..."
            )
        return value


@dataclass(frozen=True)
class ReadScope:
    """Which read ingest asks a source for, as data: for :meth:`Source.describe_read`.

    ``kind`` names the method (``full``: :meth:`Source.read_full_until` when ``end`` is set,
    else :meth:`Source.read_full`; ``since``, ``bau``, ``ids``: :meth:`Source.read_since`,
    :meth:`Source.read_bau`, :meth:`Source.read_ids`); ``start``/``end`` its window.
    """

    kind: Literal["full", "since", "bau", "ids"]
    start: datetime | None = None
    end: datetime | None = None
    ids: tuple[str, ...] = ()


class Source(ABC):
    """A readable source system for one entity.

    Each read returns a DataFrame with the columns of :func:`source_schema` (extra columns are
    dropped), or a sequence of such DataFrames: batches, which ingest appends one commit each,
    in order, so that the retry of a run that failed mid-read skips the batches already
    appended (without reading them again) and completes the rest. Batches must therefore be
    the same for the same arguments (e.g. time slices aligned to a fixed start).

    ``since`` is inclusive and ``end`` exclusive, both timezone-aware UTC; what "full"
    or "since" means is the source's own definition. Requested ids that a targeted read does not
    return are reported by the pipeline, never fatal. The pipeline reads each frame once.
    """

    @property
    @abstractmethod
    def description(self) -> str:
        """Where the source is, for logs and the runs ledger (never a credential)."""

    @abstractmethod
    def read_full(self, spark: SparkSession) -> DataFrame | Sequence[DataFrame]:
        """Every record the source has."""

    @abstractmethod
    def read_since(
        self, spark: SparkSession, start: datetime, end: datetime | None
    ) -> DataFrame | Sequence[DataFrame]:
        """Records updated at the source in ``[start, end)`` (``end=None``: up to now)."""

    @abstractmethod
    def read_ids(self, spark: SparkSession, ids: DataFrame) -> DataFrame | Sequence[DataFrame]:
        """Exactly the records whose ids are in ``ids`` (one string column ``id``, distinct,
        every value validated by the entity's id rule). A DataFrame, so that a source can join
        or batch the ids on the executors; a small source may ``collect()`` them."""

    def read_full_until(
        self, spark: SparkSession, end: datetime
    ) -> DataFrame | Sequence[DataFrame]:
        """The full read ingest asks for: everything, as of ``end`` (the request's first
        attempt's start, the same for every retry). By default :meth:`read_full`; a source that
        cuts its full read by time overrides it, so that a retry cuts the same batches."""
        return self.read_full(spark)

    def read_bau(
        self, spark: SparkSession, start: datetime, end: datetime
    ) -> DataFrame | Sequence[DataFrame]:
        """The BAU increment: by default what changed in ``[start, end)``."""
        return self.read_since(spark, start, end)

    def describe_read(self, scope: ReadScope) -> list[str]:
        """What the read of ``scope`` would ask the source, for a dry run: a few lines (its
        slices, batches or queries), worked out without calling the source.

        By default nothing (``[]``): the dry run then shows each batch's scan from its plan.
        """
        return []


class RecordSource(Source):
    """A :class:`Source` written as Python generators of :class:`SourceRecord`.

    Implement :meth:`records_full`, :meth:`records_since` and :meth:`records_for_ids`; the reads
    gather the records on the driver into a DataFrame. For sources of millions of records,
    subclass :class:`Source` and fetch on the executors instead.
    """

    @abstractmethod
    def records_full(self) -> Iterable[SourceRecord]: ...

    @abstractmethod
    def records_since(self, start: datetime, end: datetime | None) -> Iterable[SourceRecord]: ...

    @abstractmethod
    def records_for_ids(self, ids: Sequence[str]) -> Iterable[SourceRecord]: ...

    def read_full(self, spark: SparkSession) -> DataFrame:
        return records_frame(spark, self.records_full())

    def read_since(self, spark: SparkSession, start: datetime, end: datetime | None) -> DataFrame:
        return records_frame(spark, self.records_since(start, end))

    def read_ids(self, spark: SparkSession, ids: DataFrame) -> DataFrame:
        wanted = [row["id"] for row in ids.collect()]
        return records_frame(spark, self.records_for_ids(wanted))


def records_frame(spark: SparkSession, records: Iterable[SourceRecord]) -> DataFrame:
    """SourceRecords -> a DataFrame in :func:`source_schema` (gathered on the driver)."""
    rows = [(record.id, record.updated_at, record.payload) for record in records]
    return spark.createDataFrame(rows, source_schema())


def _as_text(value: Any) -> str | None:
    """A JSON value as text: strings as they are, anything else as its JSON (``17`` -> ``"17"``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
