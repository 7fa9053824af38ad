"""Normalization of ``customers`` records, as the sample REST API (and the CRM behind it) emit them.

``normalize_customers`` takes raw rows (``id``, ``payload`` JSON, ``source_updated_at``,
``ingested_at``) and returns one typed row per raw row with ``quarantine_reason`` (null when the
record is valid). Picking the latest version and merging is the pipeline's job.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType, TimestampType

from glue_replay.transforms.common import parse_utc_timestamp, trimmed_or_null

#: The payload as the API sends it. Every leaf is read as text: types are decided here, so a
#: wrongly typed field becomes a quarantine reason instead of a silent null.
PAYLOAD_SCHEMA = StructType(
    [
        StructField("id", StringType()),
        StructField("email", StringType()),
        StructField("first_name", StringType()),
        StructField("last_name", StringType()),
        StructField("phone", StringType()),
        StructField("status", StringType()),
        StructField("loyalty_points", StringType()),
        StructField(
            "address",
            StructType(
                [
                    StructField(name, StringType())
                    for name in ("line1", "line2", "city", "postcode", "country")
                ]
            ),
        ),
        StructField("created_at", StringType()),
        StructField("updated_at", StringType()),
    ]
)

#: normalized/customers business columns; ``updated_at`` is the version (latest wins).
CUSTOMER_SCHEMA = StructType(
    [
        StructField("id", StringType()),
        StructField("email", StringType()),
        StructField("first_name", StringType()),
        StructField("last_name", StringType()),
        StructField("phone", StringType()),
        StructField("status", StringType()),
        StructField("loyalty_points", IntegerType()),
        StructField("address_line1", StringType()),
        StructField("address_line2", StringType()),
        StructField("address_city", StringType()),
        StructField("address_postcode", StringType()),
        StructField("address_country", StringType()),
        StructField("created_at", TimestampType()),
        StructField("updated_at", TimestampType()),
    ]
)

_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_INTEGER = r"^-?\d{1,9}$"


def with_customer_record(raw: DataFrame) -> DataFrame:
    """Adds ``record``: the payload parsed with :data:`PAYLOAD_SCHEMA` (null if not JSON).

    payload '{"id":"7","email":" A@B.COM "}' -> record {id: "7", email: " A@B.COM ", ...}
    """
    return raw.withColumn("record", F.from_json("payload", PAYLOAD_SCHEMA, {"mode": "PERMISSIVE"}))


def with_customer_columns(parsed: DataFrame) -> DataFrame:
    """Adds the typed, cleaned business columns of :data:`CUSTOMER_SCHEMA` from ``record``.

    email "  Jane.Doe@Example.COM " -> "jane.doe@example.com"; address.country " gb" -> "GB";
    created_at "20/11/2026 10:15:30" -> 2026-11-20 10:15:30 (UTC)
    """
    r = F.col("record")
    points = F.trim(r["loyalty_points"])
    return parsed.select(
        "*",
        F.lower(trimmed_or_null(r["email"])).alias("email"),
        trimmed_or_null(r["first_name"]).alias("first_name"),
        trimmed_or_null(r["last_name"]).alias("last_name"),
        trimmed_or_null(r["phone"]).alias("phone"),
        F.lower(trimmed_or_null(r["status"])).alias("status"),
        F.when(points.rlike(_INTEGER), points.cast(IntegerType())).alias("loyalty_points"),
        trimmed_or_null(r["address"]["line1"]).alias("address_line1"),
        trimmed_or_null(r["address"]["line2"]).alias("address_line2"),
        trimmed_or_null(r["address"]["city"]).alias("address_city"),
        F.upper(trimmed_or_null(r["address"]["postcode"])).alias("address_postcode"),
        F.upper(trimmed_or_null(r["address"]["country"])).alias("address_country"),
        parse_utc_timestamp(r["created_at"]).alias("created_at"),
        parse_utc_timestamp(r["updated_at"]).alias("updated_at"),
    )


def with_quarantine_reason(normalized: DataFrame) -> DataFrame:
    """Adds ``quarantine_reason``: why the record cannot be normalized, or null when it can.

    email "not-an-email" -> "email is not an address"; loyalty_points "lots" -> "loyalty_points
    is not an integer"; several problems are joined with "; ".
    """
    r = F.col("record")
    reasons: list[Column] = [
        F.when(r.isNull() | r["id"].isNull(), F.lit("payload is not a customer JSON object")),
        F.when(
            r.isNotNull() & (F.trim(r["id"]) != F.col("id")),
            F.lit("payload id differs from the record id"),
        ),
        F.when(
            F.col("email").isNull() | ~F.col("email").rlike(_EMAIL),
            F.lit("email is not an address"),
        ),
        F.when(F.col("updated_at").isNull(), F.lit("updated_at is missing or not a timestamp")),
        F.when(
            r["created_at"].isNotNull() & F.col("created_at").isNull(),
            F.lit("created_at is not a timestamp"),
        ),
        F.when(
            trimmed_or_null(r["loyalty_points"]).isNotNull() & F.col("loyalty_points").isNull(),
            F.lit("loyalty_points is not an integer"),
        ),
    ]
    reason = F.concat_ws("; ", *reasons)
    return normalized.withColumn("quarantine_reason", F.when(reason != "", reason))


def normalize_customers(raw: DataFrame) -> DataFrame:
    """Raw customer rows -> the same rows with typed columns and ``quarantine_reason``.

    Keeps the raw columns (``id``, ``payload``, ``source_updated_at``, ``ingested_at``, ...) so
    the pipeline can quarantine or version the row; drops the intermediate ``record``.
    """
    return (
        raw.transform(with_customer_record)
        .transform(with_customer_columns)
        .transform(with_quarantine_reason)
        .drop("record")
    )
