"""Column functions and transforms every entity shares."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    ByteType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    ShortType,
    StringType,
    StructField,
    StructType,
)

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


#: A JSON array's items as text, as Spark's JSON reader renders them (objects as their JSON text).
_ITEMS_AS_TEXT = ArrayType(StringType())
_JSON_NUMBER = r"^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$"
_NUMBERS = (ByteType, ShortType, IntegerType, LongType, FloatType, DoubleType, DecimalType)
#: Prefix of the working columns :func:`with_payload_shape_errors` adds and drops again.
_WORK = "__glue_replay_shape_"


def with_payload_shape_errors(
    shape: StructType, payload: str = "payload", into: str = "payload_shape_errors"
) -> Callable[[DataFrame], DataFrame]:
    """A transform: adds ``into``, why the JSON in ``payload`` does not have ``shape``, naming
    each field; null when it has.

    A field of ``shape`` that is a struct or map must be a JSON object, an array a JSON array
    (and an array of structs an array of objects), a number type a JSON number (or text that is
    one), a boolean ``true``/``false``, and anything else (a string, a timestamp) a single value,
    not an object or an array. Absent and null fields, and fields ``shape`` does not name (a new
    optional field at the source), are fine; a payload that is not a JSON object has no field
    errors (the entity's own checks say that). So a record whose source changed a field's type
    is quarantined with the field's name, instead of normalized with that field silently null
    (Spark's JSON reader nulls a field it cannot convert).

        {"address": "1 Main St"}, address a struct -> "address is a single value, expected an
        object"; {"first_name": {"given": "Ann"}}, first_name a string -> "first_name is an
        object, expected a single value"

    Each level of the payload is parsed once per row into a struct of text fields, and each
    field's kind classified once, in projections of their own: Spark keeps a projection apart
    when merging it would evaluate a costly expression (a parse, a classification) at each of
    its references. Written as one column expression, every reference re-parsed the payload;
    bound once inside lambdas instead, the whole check ran without generated code, at over twice
    the cost of these projections (docs/BENCHMARKS.md, "Where a normalize run's time goes").
    """

    def transform(frame: DataFrame) -> DataFrame:
        columns = frame.columns
        taken = [c for c in columns if c.startswith(_WORK)]
        if taken:
            raise ValueError(f"columns {taken} use the prefix {_WORK!r} this check works with")
        names = (f"{_WORK}{n}" for n in itertools.count())
        fields = next(names)
        work = frame.withColumn(fields, F.from_json(F.col(payload), _as_text(shape)))
        work, reasons = _classified(work, F.col(fields), shape, "", names)
        return work.select(*[F.col(f"`{c}`") for c in columns], _joined(reasons).alias(into))

    return transform


def _as_text(shape: StructType) -> StructType:
    """``shape``'s fields, each as text: how the JSON reader renders any value as a string
    (a string unquoted, a number or boolean as written, an object or array as its JSON)."""
    return StructType([StructField(f.name, StringType()) for f in shape.fields])


def _kind(value: Column) -> Column:
    """What the JSON text ``value`` holds: "an object", "an array" or "a single value". Only
    text that starts like an object or an array is parsed (the JSON functions throw and catch
    an exception for every plain value)."""
    start = F.substring(F.ltrim(value), 1, 1)
    return (
        F.when((start == F.lit("{")) & F.json_object_keys(value).isNotNull(), F.lit("an object"))
        .when((start == F.lit("[")) & F.json_array_length(value).isNotNull(), F.lit("an array"))
        .otherwise(F.lit("a single value"))
    )


def _classified(
    frame: DataFrame, fields: Column, shape: StructType, prefix: str, names: Iterator[str]
) -> tuple[DataFrame, list[Column]]:
    """The reasons for each field of ``shape`` in the parsed level ``fields`` (a struct of
    text), with the working columns they read added to ``frame``: one projection for the
    fields' kinds, one for the parses of the nested objects, then those objects' own."""
    kinds = {f.name: next(names) for f in shape.fields}
    frame = frame.select("*", *[_kind(fields[f.name]).alias(kinds[f.name]) for f in shape.fields])
    reasons: list[Column] = []
    nested: list[tuple[str, StructType, str]] = []  # (field, its shape, its parse's column)
    for f in shape.fields:
        path, kind = f"{prefix}{f.name}", f.dataType
        value, seen = fields[f.name], F.col(kinds[f.name])
        is_object, is_array = seen == F.lit("an object"), seen == F.lit("an array")
        if isinstance(kind, StructType | MapType):
            wrong, expected = ~is_object, "an object"
        elif isinstance(kind, ArrayType):
            wrong, expected = ~is_array, "an array"
        elif isinstance(kind, _NUMBERS):
            wrong, expected = ~F.trim(value).rlike(_JSON_NUMBER), "a number"
        elif isinstance(kind, BooleanType):
            wrong, expected = ~F.lower(F.trim(value)).isin("true", "false"), "true or false"
        else:
            wrong, expected = seen != F.lit("a single value"), "a single value"
        reasons.append(
            F.when(
                value.isNotNull() & wrong,
                F.concat(F.lit(f"{path} is "), seen, F.lit(f", expected {expected}")),
            )
        )
        if isinstance(kind, StructType):
            nested.append((f.name, kind, next(names)))
        elif isinstance(kind, ArrayType) and isinstance(kind.elementType, StructType | MapType):
            items = F.when(is_array, F.from_json(value, _ITEMS_AS_TEXT))
            bad_item = F.exists(
                items, lambda item: item.isNotNull() & F.json_object_keys(item).isNull()
            )
            reasons.append(F.when(bad_item, F.lit(f"{path} has an item that is not an object")))
    if nested:
        frame = frame.select(
            "*",
            *[
                F.when(
                    F.col(kinds[field]) == F.lit("an object"),
                    F.from_json(fields[field], _as_text(inner_shape)),
                ).alias(column)
                for field, inner_shape, column in nested
            ],
        )
        for field, inner_shape, column in nested:
            frame, inner = _classified(
                frame, F.col(column), inner_shape, f"{prefix}{field}.", names
            )
            reasons.extend(inner)
    return frame, reasons


def _joined(reasons: Sequence[Column]) -> Column:
    text = F.concat_ws("; ", *reasons)
    return F.when(text != "", text)
