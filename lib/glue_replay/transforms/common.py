"""Column functions and transforms every entity shares."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

_ISO_WITH_ZONE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"
_ISO_NAIVE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?$"
_EPOCH_MILLIS = r"^\d{13}$"
_EPOCH_SECONDS = r"^\d{10}$"
_DAY_MONTH_YEAR = r"^(\d{2})/(\d{2})/(\d{4}) (\d{2}:\d{2}:\d{2})$"

#: How payload JSON renders timestamps: ISO-8601 in UTC with milliseconds.
JSON_OPTIONS = {
    "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
    "timeZone": "UTC",
    "ignoreNullFields": "false",
}


def parse_utc_timestamp(text: Column) -> Column:
    """A timestamp from any format the sources emit, as a UTC instant; null when unparseable.

    ISO-8601 with ``Z`` or an offset, ISO without a zone (taken as UTC), epoch milliseconds or
    seconds, and ``dd/MM/yyyy HH:mm:ss`` (UTC). Each format is recognised by its shape first, so
    nothing depends on the session time zone or the legacy parser, and ANSI mode cannot throw.

        "2026-11-20T12:15:30.123+02:00" -> 2026-11-20 10:15:30.123
        "1763633730123"                 -> 2025-11-20 10:15:30.123
    """
    value = F.trim(text)
    return (
        F.when(value.rlike(_ISO_WITH_ZONE), F.try_to_timestamp(value))
        .when(value.rlike(_ISO_NAIVE), F.try_to_timestamp(F.concat(value, F.lit("Z"))))
        .when(value.rlike(_EPOCH_MILLIS), F.timestamp_millis(value.cast("long")))
        .when(value.rlike(_EPOCH_SECONDS), F.timestamp_seconds(value.cast("long")))
        .when(
            value.rlike(_DAY_MONTH_YEAR),
            F.try_to_timestamp(F.regexp_replace(value, _DAY_MONTH_YEAR, "$3-$2-$1T$4Z")),
        )
    )


def trimmed_or_null(text: Column) -> Column:
    """Trimmed text, with blank strings as null: ``"  Ann "`` -> ``"Ann"``, ``"  "`` -> null."""
    value = F.trim(text)
    return F.when(value != "", value)


def latest_per_key(frame: DataFrame, key: str, order_by: Sequence[Column]) -> DataFrame:
    """One row per ``key``: the first by ``order_by`` (e.g. newest version, then newest ingest).

    (id=1, v=1), (id=1, v=2), (id=2, v=1) -> (id=1, v=2), (id=2, v=1)
    """
    rank = F.row_number().over(Window.partitionBy(key).orderBy(*order_by))
    return frame.withColumn("_rank", rank).where(F.col("_rank") == 1).drop("_rank")


def content_hash(columns: Sequence[str]) -> Column:
    """A SHA-256 over the JSON of ``columns``: equal exactly when their values are equal."""
    return F.sha2(F.to_json(F.struct(*columns), JSON_OPTIONS), 256)


def deterministic_uuid(*parts: Column) -> Column:
    """A UUID-shaped id derived from ``parts`` (SHA-256 based): same parts, same id.

    The parts are hashed as a JSON array of text, an unambiguous encoding: a separator inside
    one part cannot make two different lists of parts hash the same input.

        ("bau", "invoices", "7") -> sha256('["bau","invoices","7"]') as 8-4-4-4-12 hex
    """
    digest = F.sha2(F.to_json(F.array(*[p.cast("string") for p in parts])), 256)
    return F.concat_ws(
        "-",
        F.substring(digest, 1, 8),
        F.substring(digest, 9, 4),
        F.substring(digest, 13, 4),
        F.substring(digest, 17, 4),
        F.substring(digest, 21, 12),
    )
