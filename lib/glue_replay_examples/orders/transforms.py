"""Normalization of ``orders`` records, as the shop's PostgreSQL database serves them.

``normalize_orders`` takes raw rows (``id``, ``payload`` JSON, ``source_updated_at``,
``ingested_at``) and returns one typed row per raw row with ``quarantine_reason`` (null when the
order is valid). The payload's decimals arrive as strings (``"194.44"``), so no amount ever goes
through a float; they become ``decimal(12,2)`` here.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DecimalType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from glue_replay.transforms.common import parse_utc_timestamp, trimmed_or_null

MONEY = DecimalType(12, 2)
#: An order's sum of lines. A line (a quantity under 10^9 times a price under 10^10) is under
#: 10^19, so the widest decimal holds the exact sum of any array Spark can hold (under 2^31
#: lines): the sum never overflows, which ANSI mode (Spark 4's default) would raise as an error
#: and Spark 3.5 turned into a null total that let a wrong order through.
_TOTAL = DecimalType(38, 2)

#: The payload as the source query builds it. Every leaf is read as text: types are decided
#: here, so a wrongly typed field becomes a quarantine reason instead of a silent null.
PAYLOAD_SCHEMA = StructType(
    [
        StructField("id", StringType()),
        StructField("customer_id", StringType()),
        StructField("amount", StringType()),
        StructField("currency", StringType()),
        StructField("status", StringType()),
        StructField("created_at", StringType()),
        StructField("updated_at", StringType()),
        StructField(
            "line_items",
            ArrayType(
                StructType(
                    [
                        StructField("sku", StringType()),
                        StructField("quantity", StringType()),
                        StructField("unit_price", StringType()),
                    ]
                )
            ),
        ),
    ]
)

LINE_ITEM = StructType(
    [
        StructField("sku", StringType()),
        StructField("quantity", IntegerType()),
        StructField("unit_price", MONEY),
    ]
)

#: normalized/orders business columns; ``updated_at`` is the version (latest wins).
ORDER_SCHEMA = StructType(
    [
        StructField("id", StringType()),
        StructField("customer_id", StringType()),
        StructField("amount", MONEY),
        StructField("currency", StringType()),
        StructField("status", StringType()),
        StructField("created_at", TimestampType()),
        StructField("updated_at", TimestampType()),
        StructField("line_items", ArrayType(LINE_ITEM)),
    ]
)

#: An order's life at the shop.
STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled", "refunded")
#: ISO 4217 active alphabetic codes.
_ISO_4217 = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
CURRENCIES = frozenset(_ISO_4217.split())

_MONEY_TEXT = r"^-?\d{1,10}(\.\d{1,2})?$"
_COUNT_TEXT = r"^-?\d{1,9}$"


def with_order_record(raw: DataFrame) -> DataFrame:
    """Adds ``record``: the payload parsed with :data:`PAYLOAD_SCHEMA` (null if not JSON).

    payload '{"id":1001,"amount":"19.90",...}' -> record {id: "1001", amount: "19.90", ...}
    """
    return raw.withColumn("record", F.from_json("payload", PAYLOAD_SCHEMA, {"mode": "PERMISSIVE"}))


def money(text: Column) -> Column:
    """Decimal text with at most two places -> ``decimal(12,2)``; anything else -> null.

    " 19.9 " -> 19.90; "-3.00" -> -3.00; "19.999" -> null; "1e3" -> null
    """
    value = F.trim(text)
    return F.when(value.rlike(_MONEY_TEXT), value.cast(MONEY))


def with_order_columns(parsed: DataFrame) -> DataFrame:
    """Adds the typed, cleaned business columns of :data:`ORDER_SCHEMA` from ``record``.

    currency " eur" -> "EUR"; status " Paid" -> "paid"; amount "194.44" -> 194.44;
    line_items [{sku: "SKU-0012", quantity: "2", unit_price: "9.95"}] -> [{SKU-0012, 2, 9.95}]
    """
    r = F.col("record")

    def line_item(item: Column) -> Column:
        quantity = F.trim(item["quantity"])
        return F.struct(
            trimmed_or_null(item["sku"]).alias("sku"),
            F.when(quantity.rlike(_COUNT_TEXT), quantity.cast(IntegerType())).alias("quantity"),
            money(item["unit_price"]).alias("unit_price"),
        )

    return parsed.select(
        "*",
        trimmed_or_null(r["customer_id"]).alias("customer_id"),
        money(r["amount"]).alias("amount"),
        F.upper(trimmed_or_null(r["currency"])).alias("currency"),
        F.lower(trimmed_or_null(r["status"])).alias("status"),
        parse_utc_timestamp(r["created_at"]).alias("created_at"),
        parse_utc_timestamp(r["updated_at"]).alias("updated_at"),
        F.transform(r["line_items"], line_item).cast(ArrayType(LINE_ITEM)).alias("line_items"),
    )


def line_items_total(items: Column) -> Column:
    """The sum of ``quantity * unit_price`` over an order's line items, as ``decimal(38,2)``.

    [{q: 2, p: 9.95}, {q: 1, p: 5.00}] -> 24.90
    """
    return F.aggregate(
        items,
        F.lit(0).cast(_TOTAL),
        lambda total, item: (total + item["quantity"] * item["unit_price"]).cast(_TOTAL),
    )


def with_quarantine_reason(normalized: DataFrame) -> DataFrame:
    """Adds ``quarantine_reason``: why the order cannot be normalized, or null when it can.

    amount "-5.00" -> "amount is negative"; currency "XYZ" -> "currency XYZ is not an ISO 4217
    code"; lines 2 x 9.95 for an amount of 20.00 -> "line items total 19.90, not the amount
    20.00"; several problems are joined with "; ".
    """
    r = F.col("record")
    amount, items = F.col("amount"), F.col("line_items")
    # Unparseable JSON gives a record of nulls, not a null record: no id means no order.
    has_raw = r.isNotNull() & r["id"].isNotNull()
    bad_sku = F.exists(items, lambda item: item["sku"].isNull())
    bad_quantity = F.exists(items, lambda item: item["quantity"].isNull() | (item["quantity"] <= 0))
    bad_price = F.exists(items, lambda item: item["unit_price"].isNull() | (item["unit_price"] < 0))
    lines_ok = items.isNotNull() & (F.size(items) > 0) & ~bad_sku & ~bad_quantity & ~bad_price
    total = line_items_total(items)
    known_currency = F.col("currency").isin(sorted(CURRENCIES))
    known_status = F.col("status").isin(list(STATUSES))
    reasons: list[Column] = [
        F.when(~has_raw, F.lit("payload is not an order JSON object")),
        F.when(
            has_raw & (F.trim(r["id"]) != F.col("id")),
            F.lit("payload id differs from the record id"),
        ),
        F.when(has_raw & F.col("customer_id").isNull(), F.lit("customer_id is missing")),
        F.when(
            has_raw & amount.isNull(), F.lit("amount is missing or not a decimal with 2 places")
        ),
        F.when(amount < 0, F.lit("amount is negative")),
        F.when(
            has_raw & (F.col("currency").isNull() | ~known_currency),
            F.concat(
                F.lit("currency "),
                F.coalesce(F.col("currency"), F.lit("(none)")),
                F.lit(" is not an ISO 4217 code"),
            ),
        ),
        F.when(
            has_raw & (F.col("status").isNull() | ~known_status),
            F.concat(
                F.lit("status "),
                F.coalesce(F.col("status"), F.lit("(none)")),
                F.lit(f" is not one of {', '.join(STATUSES)}"),
            ),
        ),
        F.when(
            has_raw & F.col("created_at").isNull(),
            F.lit("created_at is missing or not a timestamp"),
        ),
        F.when(
            has_raw & F.col("updated_at").isNull(),
            F.lit("updated_at is missing or not a timestamp"),
        ),
        F.when(F.col("updated_at") < F.col("created_at"), F.lit("updated_at is before created_at")),
        F.when(has_raw & (items.isNull() | (F.size(items) == 0)), F.lit("order has no line items")),
        F.when(bad_sku, F.lit("a line item has no sku")),
        F.when(bad_quantity, F.lit("a line item's quantity is not a positive integer")),
        F.when(bad_price, F.lit("a line item's unit_price is not a decimal of at least 0")),
        F.when(
            lines_ok & amount.isNotNull() & (total != amount),
            F.concat(
                F.lit("line items total "),
                total.cast("string"),
                F.lit(", not the amount "),
                amount.cast("string"),
            ),
        ),
    ]
    reason = F.concat_ws("; ", *reasons)
    return normalized.withColumn("quarantine_reason", F.when(reason != "", reason))


def normalize_orders(raw: DataFrame) -> DataFrame:
    """Raw order rows -> the same rows with typed columns and ``quarantine_reason``.

    Keeps the raw columns (``id``, ``payload``, ``source_updated_at``, ``ingested_at``, ...) so
    the pipeline can quarantine or version the row; drops the intermediate ``record``.
    """
    return (
        raw.transform(with_order_record)
        .transform(with_order_columns)
        .transform(with_quarantine_reason)
        .drop("record")
    )
