"""Every transform against explicit expected frames (chispa)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from glue_replay.entity import Entity, EventTypes, SoftDelete
from glue_replay.errors import PipelineDefinitionError
from glue_replay.pipelines.normalize import (
    _missing_ids,
    decide_changes,
    outbox_events,
    select_for_replay,
    with_entity_columns,
)
from glue_replay.pipelines.stage import TimeWindow
from glue_replay.request import ReplayMode, ReplayRequest
from glue_replay.tables import pruning
from glue_replay.tables.pruning import KeyScope
from glue_replay.tables.schemas import RAW_SCHEMA
from glue_replay.transforms.common import (
    latest_per_key,
    parse_utc_timestamp,
    with_payload_shape_errors,
)
from glue_replay_examples.customers import CUSTOMERS
from glue_replay_examples.customers.transforms import CUSTOMER_SCHEMA, normalize_customers

T = datetime  # naive datetimes are UTC: the suite runs with TZ=UTC and a UTC session


def _extended(*extra: tuple[str, DataType]) -> StructType:
    """CUSTOMER_SCHEMA plus columns (never ``.add``: it mutates the shared schema)."""
    return StructType(CUSTOMER_SCHEMA.fields + [StructField(n, t) for n, t in extra])


def test_parse_utc_timestamp_reads_every_source_format(spark: SparkSession) -> None:
    texts = [
        ("iso-z", "2026-11-20T10:15:30Z"),
        ("iso-offset-millis", "2026-11-20T12:15:30.123+02:00"),
        ("naive", "2026-11-20 10:15:30"),
        ("epoch-millis", "1763633730123"),
        ("epoch-seconds", "1763633730"),
        ("day-month-year", "20/11/2026 10:15:30"),
        ("padded", "  2026-11-20T10:15:30Z "),
        ("words", "last tuesday"),
        ("impossible", "2026-02-30T10:00:00Z"),
        ("null", None),
    ]
    frame = spark.createDataFrame(texts, "case string, text string")
    actual = frame.select("case", parse_utc_timestamp(F.col("text")).alias("at"))
    expected = spark.createDataFrame(
        [
            ("iso-z", T(2026, 11, 20, 10, 15, 30)),
            ("iso-offset-millis", T(2026, 11, 20, 10, 15, 30, 123000)),
            ("naive", T(2026, 11, 20, 10, 15, 30)),
            ("epoch-millis", T(2025, 11, 20, 10, 15, 30, 123000)),
            ("epoch-seconds", T(2025, 11, 20, 10, 15, 30)),
            ("day-month-year", T(2026, 11, 20, 10, 15, 30)),
            ("padded", T(2026, 11, 20, 10, 15, 30)),
            ("words", None),
            ("impossible", None),
            ("null", None),
        ],
        "case string, at timestamp",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_parse_utc_timestamp_does_not_depend_on_the_session_zone(spark: SparkSession) -> None:
    frame = spark.createDataFrame([("2026-11-20 10:15:30",), ("20/11/2026 10:15:30",)], ["text"])
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        epochs = frame.select(parse_utc_timestamp(F.col("text")).cast("long").alias("epoch"))
        rows = [row["epoch"] for row in epochs.collect()]
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert rows == [1795169730, 1795169730]  # 2026-11-20T10:15:30Z


RAW_COLUMNS = "id string, payload string"


def test_normalize_customers_cleans_types_and_flattens(spark: SparkSession) -> None:
    raw = spark.createDataFrame(
        [
            (
                "7",
                '{"id":"7","email":"  Jane.Doe@Example.COM ","first_name":" Jane ",'
                '"last_name":"Doe","phone":" +44 20 7946 0017 ","status":" ACTIVE",'
                '"loyalty_points":120,"address":{"line1":"1 High St","line2":"  ",'
                '"city":"Leeds","postcode":"ls1 1aa","country":" gb"},'
                '"created_at":"20/11/2025 10:15:30","updated_at":"2026-11-20T12:15:30.123+02:00"}',
            ),
            (
                "8",
                '{"id":8,"email":"ann@example.org","first_name":"Ann","last_name":"Lee",'
                '"phone":null,"status":"Inactive","loyalty_points":null,"address":null,'
                '"created_at":1763633730123,"updated_at":"2026-11-21 08:00:00"}',
            ),
        ],
        RAW_COLUMNS,
    )
    actual = normalize_customers(raw).drop("payload")
    expected = spark.createDataFrame(
        [
            (
                "7", "jane.doe@example.com", "Jane", "Doe", "+44 20 7946 0017", "active", 120,
                "1 High St", None, "Leeds", "LS1 1AA", "GB",
                T(2025, 11, 20, 10, 15, 30), T(2026, 11, 20, 10, 15, 30, 123000), None,
            ),
            (
                "8", "ann@example.org", "Ann", "Lee", None, "inactive", None,
                None, None, None, None, None,
                T(2025, 11, 20, 10, 15, 30, 123000), T(2026, 11, 21, 8, 0, 0), None,
            ),
        ],
        _extended(("quarantine_reason", StringType())),
    )  # fmt: skip
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_normalize_customers_gives_every_quarantine_reason(spark: SparkSession) -> None:
    raw = spark.createDataFrame(
        [
            ("1", '{"id":"1","email":"not-an-email","updated_at":"2026-11-20T10:00:00Z"}'),
            ("2", '{"id":"2","email":"a@b.io","updated_at":"last tuesday"}'),
            ("3", '{"id":"3","email":"a@b.io","updated_at":"2026-11-20T10:00:00Z",'
                  '"loyalty_points":"lots","created_at":"soon"}'),
            ("4", "not json"),
            ("5", '{"id":"6","email":"a@b.io","updated_at":"2026-11-20T10:00:00Z"}'),
            ("6", '{"id":"6","email":"a@b.io","updated_at":"2026-11-20T10:00:00Z"}'),
        ],
        RAW_COLUMNS,
    )  # fmt: skip
    actual = normalize_customers(raw).select("id", "quarantine_reason")
    expected = spark.createDataFrame(
        [
            ("1", "email is not an address"),
            ("2", "updated_at is missing or not a timestamp"),
            ("3", "created_at is not a timestamp; loyalty_points is not an integer"),
            (
                "4",
                "payload is not a customer JSON object; email is not an address; "
                "updated_at is missing or not a timestamp",
            ),
            ("5", "payload id differs from the record id"),
            ("6", None),
        ],
        "id string, quarantine_reason string",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_latest_per_key_keeps_the_newest_version_then_the_newest_ingest(
    spark: SparkSession,
) -> None:
    rows = spark.createDataFrame(
        [
            ("1", T(2026, 1, 1), T(2026, 2, 1), "old"),
            ("1", T(2026, 1, 2), T(2026, 2, 1), "new"),
            ("2", T(2026, 1, 1), T(2026, 2, 1), "first ingest"),
            ("2", T(2026, 1, 1), T(2026, 2, 2), "second ingest"),
        ],
        "id string, updated_at timestamp, ingested_at timestamp, label string",
    )
    actual = latest_per_key(rows, "id", [F.col("updated_at").desc(), F.col("ingested_at").desc()])
    expected = spark.createDataFrame(
        [
            ("1", T(2026, 1, 2), T(2026, 2, 1), "new"),
            ("2", T(2026, 1, 1), T(2026, 2, 2), "second ingest"),
        ],
        "id string, updated_at timestamp, ingested_at timestamp, label string",
    )
    assert_df_equality(actual, expected, ignore_nullable=True, ignore_row_order=True)


def _raw(spark: SparkSession) -> object:
    return spark.createDataFrame(
        [
            # Ingested by other requests than the ones selecting (see the test after these).
            ("1", "{}", T(2026, 1, 10), T(2026, 3, 1, 9), "f", "full", "x", date(2026, 3, 1)),
            ("2", "{}", T(2026, 2, 10), T(2026, 3, 1, 9), "f", "full", "x", date(2026, 3, 1)),
            ("3", "{}", T(2026, 3, 10), T(2026, 3, 11, 9), "b", "bau", "x", date(2026, 3, 11)),
            ("4", "{}", None, T(2026, 3, 11, 9), "b", "bau", "x", date(2026, 3, 11)),
        ],
        RAW_SCHEMA,
    )


def _ids_of(frame: object) -> list[str]:
    return sorted(row["id"] for row in frame.select("id").collect())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("request_", "window", "expected_ids"),
    [
        (ReplayRequest(ReplayMode.FULL, "r"), TimeWindow(), ["1", "2", "3", "4"]),
        (
            ReplayRequest(ReplayMode.SINCE, "r", since=date(2026, 2, 10)),
            TimeWindow(datetime(2026, 2, 10, tzinfo=UTC)),
            ["2", "3"],
        ),
        (
            ReplayRequest(ReplayMode.SINCE, "r", since=date(2026, 1, 1), until=date(2026, 2, 10)),
            TimeWindow(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 10, tzinfo=UTC)),
            ["1"],
        ),
        (
            ReplayRequest(ReplayMode.BAU, "r"),
            TimeWindow(datetime(2026, 3, 11, tzinfo=UTC), datetime(2026, 3, 12, tzinfo=UTC)),
            ["3", "4"],
        ),
    ],
    ids=["full", "since", "since-until", "bau"],
)
def test_select_for_replay_by_time(
    spark: SparkSession, request_: ReplayRequest, window: TimeWindow, expected_ids: list[str]
) -> None:
    assert _ids_of(select_for_replay(_raw(spark), request_, window)) == expected_ids  # type: ignore[arg-type]


def test_select_for_replay_targeted_names_a_few_ids_in_a_filter_without_a_join(
    spark: SparkSession,
) -> None:
    ids = spark.createDataFrame([("2",), ("4",), ("99",)], "id string")
    request = ReplayRequest(ReplayMode.TARGETED, "r", ids=("2", "4", "99"))
    selected = select_for_replay(_raw(spark), request, TimeWindow(), ids)  # type: ignore[arg-type]
    assert _ids_of(selected) == ["2", "4"]
    plan = selected._jdf.queryExecution().executedPlan().toString()
    assert "Join" not in plan
    assert "Union" not in plan


def test_select_for_replay_targeted_uses_a_broadcast_semi_join_beyond_exact_predicates(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pruning, "MAX_RANGES", 2)
    ids = spark.createDataFrame([("2",), ("4",), ("99",)], "id string")
    request = ReplayRequest(ReplayMode.TARGETED, "r", ids=("2", "4", "99"))
    selected = select_for_replay(_raw(spark), request, TimeWindow(), ids)  # type: ignore[arg-type]
    assert _ids_of(selected) == ["2", "4"]
    plan = selected._jdf.queryExecution().executedPlan().toString()
    assert "BroadcastHashJoin" in plan
    assert "LeftSemi" in plan


@pytest.mark.parametrize(
    ("request_", "window", "expected_ids"),
    [
        (ReplayRequest(ReplayMode.FULL, "own"), TimeWindow(), ["1", "2", "3", "4", "5"]),
        (
            ReplayRequest(ReplayMode.SINCE, "own", since=date(2026, 1, 1), until=date(2026, 2, 10)),
            TimeWindow(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 10, tzinfo=UTC)),
            ["1", "5"],
        ),
        (ReplayRequest(ReplayMode.TARGETED, "own", ids=("2",)), TimeWindow(), ["2", "5"]),
        (
            ReplayRequest(ReplayMode.BAU, "own"),
            TimeWindow(datetime(2026, 3, 11, tzinfo=UTC), datetime(2026, 3, 12, tzinfo=UTC)),
            ["3", "4", "5"],
        ),
    ],
    ids=["full", "since", "targeted", "bau"],
)
def test_select_for_replay_takes_the_rows_the_request_ingested(
    spark: SparkSession, request_: ReplayRequest, window: TimeWindow, expected_ids: list[str]
) -> None:
    # Row 5: ingested by request "own", its source time unparsed (null), outside every window.
    own = spark.createDataFrame(
        [("5", "{}", None, T(2026, 4, 1, 9), "own", "since", "y", date(2026, 4, 1))], RAW_SCHEMA
    )
    raw = _raw(spark).unionByName(own)  # type: ignore[attr-defined]
    ids = spark.createDataFrame([(i,) for i in request_.ids], "id string")
    selected = select_for_replay(raw, request_, window, ids)
    assert_df_equality(
        selected.select("id", "request_id"),
        spark.createDataFrame(
            [(i, "own" if i == "5" else "f" if i in "12" else "b") for i in expected_ids],
            "id string, request_id string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_select_for_replay_targeted_beyond_exact_predicates_takes_its_own_rows_too(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pruning, "MAX_RANGES", 1)
    own = spark.createDataFrame(
        [
            ("5", "{}", None, T(2026, 4, 1, 9), "own", "targeted", "y", date(2026, 4, 1)),
            ("2", "{}", None, T(2026, 4, 1, 9), "own", "targeted", "y", date(2026, 4, 1)),
        ],
        RAW_SCHEMA,
    )
    raw = _raw(spark).unionByName(own)  # type: ignore[attr-defined]
    request = ReplayRequest(ReplayMode.TARGETED, "own", ids=("2", "3"))
    ids = spark.createDataFrame([(i,) for i in request.ids], "id string")
    selected = select_for_replay(raw, request, TimeWindow(), ids)
    assert_df_equality(
        selected.select("id", "request_id"),
        spark.createDataFrame(
            [("2", "f"), ("2", "own"), ("3", "b"), ("5", "own")], "id string, request_id string"
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )


@pytest.mark.parametrize(
    ("requested", "valid_keys", "expected"),
    [
        # Every requested id is a valid row's key: nothing is missing, nothing more is read.
        (("2", "1"), ("1", "2"), []),
        # "3" has only a quarantined row (no valid key): it is in raw, so not missing.
        (("3", "1"), ("1",), []),
        # "9" is in raw under no row at all; reported in request order.
        (("9", "1", "8"), ("1",), ["9", "8"]),
        # Too many keys to name: the join alone decides.
        (("1", "9"), None, ["9"]),
    ],
    ids=["all-valid", "quarantined-only", "absent", "keys-unnamed"],
)
def test_missing_ids_are_the_requested_ids_without_any_raw_row(
    spark: SparkSession,
    requested: tuple[str, ...],
    valid_keys: tuple[str, ...] | None,
    expected: list[str],
) -> None:
    selected = spark.createDataFrame([("1",), ("2",), ("3",)], "id string")
    ids = spark.createDataFrame([(i,) for i in requested], "id string")
    count = len(valid_keys) if valid_keys is not None else 5_000
    keys = KeyScope(count, valid_keys, None)
    assert _missing_ids(ids, selected, requested, keys, CUSTOMERS) == expected


def _customer(id_: str, email: str, updated_at: datetime) -> tuple[object, ...]:
    return (id_, email, "Ann", "Lee", None, "active", 1, None, None, None, None, None,
            T(2025, 1, 1), updated_at)  # fmt: skip


def _with_hash(spark: SparkSession, rows: list[tuple[object, ...]]) -> object:
    from glue_replay.transforms.common import content_hash

    frame = spark.createDataFrame(rows, CUSTOMER_SCHEMA)
    return frame.select(
        "*",
        content_hash(CUSTOMERS.hashed_columns).alias("content_hash"),
        F.lit(T(2026, 3, 1)).cast("timestamp").alias("raw_ingested_at"),
    )


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (
            ReplayMode.BAU,
            [
                ("1", "new@x.io", T(2026, 2, 1), False, True, True),  # newer and changed
                ("2", "b@x.io", T(2026, 2, 1), False, True, False),  # newer, same content
                ("3", "c@x.io", T(2026, 3, 1), False, False, False),  # older incoming loses
                ("4", "d@x.io", T(2026, 1, 1), False, False, False),  # unchanged
                ("5", "e@x.io", T(2026, 1, 1), True, True, True),  # new id
                ("6", "fixed@x.io", T(2026, 1, 1), False, True, True),  # same version, renormalized
            ],
        ),
        (
            ReplayMode.TARGETED,
            [
                ("1", "new@x.io", T(2026, 2, 1), False, True, True),
                ("2", "b@x.io", T(2026, 2, 1), False, True, True),
                ("3", "c@x.io", T(2026, 3, 1), False, False, True),  # re-emits the newer one
                ("4", "d@x.io", T(2026, 1, 1), False, False, True),
                ("5", "e@x.io", T(2026, 1, 1), True, True, True),
                ("6", "fixed@x.io", T(2026, 1, 1), False, True, True),
            ],
        ),
    ],
    ids=["bau-emits-changes-only", "replay-emits-every-touched-id"],
)
def test_decide_changes(
    spark: SparkSession, mode: ReplayMode, expected: list[tuple[object, ...]]
) -> None:
    existing = _with_hash(
        spark,
        [
            _customer("1", "a@x.io", T(2026, 1, 1)),
            _customer("2", "b@x.io", T(2026, 1, 1)),
            _customer("3", "c@x.io", T(2026, 3, 1)),
            _customer("4", "d@x.io", T(2026, 1, 1)),
            _customer("6", "broken@x.io", T(2026, 1, 1)),
        ],
    )
    incoming = _with_hash(
        spark,
        [
            _customer("1", "new@x.io", T(2026, 2, 1)),
            _customer("2", "b@x.io", T(2026, 2, 1)),
            _customer("3", "old@x.io", T(2026, 2, 1)),
            _customer("4", "d@x.io", T(2026, 1, 1)),
            _customer("5", "e@x.io", T(2026, 1, 1)),
            _customer("6", "fixed@x.io", T(2026, 1, 1)),
        ],
    )
    decided = decide_changes(incoming, existing, CUSTOMERS, mode)  # type: ignore[arg-type]
    actual = decided.select("id", "email", "updated_at", "is_new", "write", "emit")
    expected_frame = spark.createDataFrame(
        expected,
        "id string, email string, updated_at timestamp, is_new boolean, write boolean, "
        "emit boolean",
    )
    assert_df_equality(actual, expected_frame, ignore_nullable=True, ignore_row_order=True)


def test_outbox_events_are_deterministic_per_request_and_version(spark: SparkSession) -> None:
    decided = spark.createDataFrame(
        [
            (*_customer("1", "a@x.io", T(2026, 2, 1)), True, True),
            (*_customer("2", "b@x.io", T(2026, 2, 1)), False, False),
        ],
        _extended(("is_new", BooleanType()), ("emit", BooleanType())),
    )
    request = ReplayRequest(ReplayMode.TARGETED, "req-1", ids=("1", "2"))
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    actual = outbox_events(decided, CUSTOMERS, request, at)
    expected = spark.createDataFrame(
        [
            (
                "37cf174c-b140-01a8-4e7f-5fd1708abb25",
                "customers",
                "1",
                "customer.created",
                '{"id":"1","email":"a@x.io","first_name":"Ann","last_name":"Lee","phone":null,'
                '"status":"active","loyalty_points":1,"address_line1":null,"address_line2":null,'
                '"address_city":null,"address_postcode":null,"address_country":null,'
                '"created_at":"2025-01-01T00:00:00.000Z","updated_at":"2026-02-01T00:00:00.000Z"}',
                T(2026, 3, 1, 12),
                "req-1",
                "targeted",
                date(2026, 3, 1),
            )
        ],
        "event_id string, aggregate_type string, aggregate_id string, event_type string, "
        "payload string, occurred_at timestamp, request_id string, replay_mode string, "
        "event_date date",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)
    # The id is the documented derivation (point 2 of issue 8 changed it from a "|"-joined
    # text to an unambiguous JSON array, with "replay" first so that no BAU id can equal it):
    # sha256('["replay","req-1","customers","1","2026-02-01T00:00:00.000000"]') as a UUID.
    assert _documented_id("replay", "req-1", "customers", "1", "2026-02-01T00:00:00.000000") == (
        "37cf174c-b140-01a8-4e7f-5fd1708abb25"
    )
    again = outbox_events(decided, CUSTOMERS, request, datetime(2026, 3, 2, tzinfo=UTC))
    other = outbox_events(decided, CUSTOMERS, ReplayRequest(ReplayMode.FULL, "req-2"), at)
    assert again.first()["event_id"] == "37cf174c-b140-01a8-4e7f-5fd1708abb25"  # type: ignore[index]
    assert other.first()["event_id"] != "37cf174c-b140-01a8-4e7f-5fd1708abb25"  # type: ignore[index]


def test_bau_event_ids_name_the_change_not_the_run(spark: SparkSession) -> None:
    decided = spark.createDataFrame(
        [
            (*_customer("1", "a@x.io", T(2026, 2, 1)), "h1", False, True),
            (*_customer("1", "b@x.io", T(2026, 2, 1)), "h2", False, True),
        ],
        _extended(
            ("content_hash", StringType()), ("is_new", BooleanType()), ("emit", BooleanType())
        ),
    )
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)

    def ids(request: ReplayRequest) -> DataFrame:
        events = outbox_events(decided, CUSTOMERS, request, at)
        return events.select(F.get_json_object("payload", "$.email").alias("email"), "event_id")

    # Two BAU runs (two requests) emitting the same change: one id, the documented derivation
    # sha256('["bau-change","customers","1","2026-02-01T00:00:00.000000","h1"]') as a UUID.
    # Another content at the same version is another change, so another id.
    bau = [
        ("a@x.io", "h1", "15e855be-e7da-0e0e-45b2-979b09bd4337"),
        ("b@x.io", "h2", "fc49eacb-fa99-2a68-7bcd-7f9693284aed"),
    ]
    for request_id in ("bau-1", "bau-2"):
        assert_df_equality(
            ids(ReplayRequest(ReplayMode.BAU, request_id)),
            spark.createDataFrame([(e, i) for e, _, i in bau], "email string, event_id string"),
            ignore_row_order=True,
            ignore_nullable=True,
        )
    assert [
        _documented_id("bau-change", "customers", "1", "2026-02-01T00:00:00.000000", content)
        for _, content, _ in bau
    ] == [event_id for _, _, event_id in bau]
    # A replay, even by a request named like a BAU one, gets a replay id: from the request and
    # the version, never equal to a BAU id.
    replay_id = _documented_id("replay", "bau-1", "customers", "1", "2026-02-01T00:00:00.000000")
    assert replay_id == "4e85b2c7-5eae-cc63-880d-2301a527c15e"
    assert_df_equality(
        ids(ReplayRequest(ReplayMode.FULL, "bau-1")),
        spark.createDataFrame(
            [("a@x.io", replay_id), ("b@x.io", replay_id)], "email string, event_id string"
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def _documented_id(*parts: str) -> str:
    """An event id as the README documents it, computed without Spark."""
    digest = hashlib.sha256(json.dumps(list(parts), separators=(",", ":")).encode()).hexdigest()
    return "-".join((digest[:8], digest[8:12], digest[12:16], digest[16:20], digest[20:32]))


# --- soft deletes and schema drift ---------------------------------------------------------


def test_payload_shape_errors_name_every_field_whose_json_shape_changed(
    spark: SparkSession,
) -> None:
    shape = StructType(
        [
            StructField("name", StringType()),
            StructField("points", IntegerType()),
            StructField("vip", BooleanType()),
            StructField("address", StructType([StructField("city", StringType())])),
            StructField("tags", ArrayType(StringType())),
            StructField("lines", ArrayType(StructType([StructField("sku", StringType())]))),
            StructField(
                "contact",
                StructType(
                    [StructField("phone", StructType([StructField("number", StringType())]))]
                ),
            ),
        ]
    )
    payloads = spark.createDataFrame(
        [
            ("ok", '{"name":"Ann","points":"12","vip":true,"address":{"city":"Leeds"},'
                   '"tags":["a"],"lines":[{"sku":"X"}],"new_field":{"any":"shape"}}'),
            ("nulls", '{"name":null,"address":null}'),
            ("numbers-as-text-and-text-as-numbers", '{"name":7,"points":12}'),
            ("object-for-text", '{"name":{"given":"Ann"}}'),
            ("array-for-text", '{"name":["Ann"]}'),
            ("text-for-object", '{"address":"1 Main St"}'),
            ("nested", '{"address":{"city":{"name":"Leeds"}}}'),
            ("text-for-number", '{"points":"lots"}'),
            ("object-for-number", '{"points":{"value":3}}'),
            ("text-for-boolean", '{"vip":"yes"}'),
            ("text-for-array", '{"tags":"a,b"}'),
            ("array-of-values-for-objects", '{"lines":["X"]}'),
            ("several", '{"name":{"a":1},"address":[1]}'),
            ("not-an-object", "not json"),
            ("text-that-starts-like-an-object", '{"name":"{Ann","address":"{1 Main St"}'),
            ("two-levels-down", '{"contact":{"phone":{"number":["1"]}}}'),
            ("text-for-an-inner-object", '{"contact":{"phone":"555"}}'),
        ],
        "case string, payload string",
    )  # fmt: skip
    actual = payloads.transform(with_payload_shape_errors(shape, "payload", "reason")).drop(
        "payload"
    )
    expected = spark.createDataFrame(
        [
            ("ok", None),
            ("nulls", None),
            ("numbers-as-text-and-text-as-numbers", None),
            ("object-for-text", "name is an object, expected a single value"),
            ("array-for-text", "name is an array, expected a single value"),
            ("text-for-object", "address is a single value, expected an object"),
            ("nested", "address.city is an object, expected a single value"),
            ("text-for-number", "points is a single value, expected a number"),
            ("object-for-number", "points is an object, expected a number"),
            ("text-for-boolean", "vip is a single value, expected true or false"),
            ("text-for-array", "tags is a single value, expected an array"),
            ("array-of-values-for-objects", "lines has an item that is not an object"),
            (
                "several",
                "name is an object, expected a single value; "
                "address is an array, expected an object",
            ),
            ("not-an-object", None),
            ("text-that-starts-like-an-object", "address is a single value, expected an object"),
            ("two-levels-down", "contact.phone.number is an array, expected a single value"),
            ("text-for-an-inner-object", "contact.phone is a single value, expected an object"),
        ],
        "case string, reason string",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_the_shape_check_refuses_a_frame_holding_a_column_named_like_its_working_ones(
    spark: SparkSession,
) -> None:
    frame = spark.createDataFrame([("{}", 1)], "payload string, __glue_replay_shape_0 int")
    check = with_payload_shape_errors(StructType([StructField("name", StringType())]))
    with pytest.raises(ValueError, match="__glue_replay_shape_0"):
        frame.transform(check)


def test_customers_drift_is_quarantined_naming_the_field_and_a_new_field_is_ignored(
    spark: SparkSession,
) -> None:
    good = (
        '"id":"{id}","email":"a@b.io","updated_at":"2026-11-20T10:00:00Z","status":"active",'
        '"address":{{"city":"Leeds"}}'
    )
    raw = spark.createDataFrame(
        [
            ("1", "{" + good.format(id="1") + ',"tier":"gold"}'),
            ("2", "{" + good.format(id="2").replace('{"city":"Leeds"}', '"1 Main St"') + "}"),
            ("3", "{" + good.format(id="3") + ',"first_name":{"given":"Ann"}}'),
            ("4", "{" + good.format(id="4") + ',"loyalty_points":"a lot"}'),
            ("5", "{" + good.format(id="5") + ',"loyalty_points":{"value":3}}'),
        ],
        RAW_COLUMNS,
    ).select(
        *[
            F.col(c)
            if c in ("id", "payload")
            else F.lit(None).cast(RAW_SCHEMA[c].dataType).alias(c)
            for c in RAW_SCHEMA.fieldNames()
        ]
    )
    actual = raw.transform(with_entity_columns(CUSTOMERS)).select(
        "id", "address_city", "first_name", "quarantine_reason"
    )
    expected = spark.createDataFrame(
        [
            ("1", "Leeds", None, None),
            ("2", None, None, "address is a single value, expected an object"),
            ("3", "Leeds", '{"given":"Ann"}', "first_name is an object, expected a single value"),
            ("4", "Leeds", None, "loyalty_points is not an integer"),
            (
                "5",
                "Leeds",
                None,
                "loyalty_points is an object, expected a single value; "
                "loyalty_points is not an integer",
            ),
        ],
        "id string, address_city string, first_name string, quarantine_reason string",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_a_column_the_schema_type_cannot_hold_is_quarantined_not_nulled(
    spark: SparkSession,
) -> None:
    """The core's own check, for any entity: a transform that hands over text for a number."""
    schema = StructType(
        [
            StructField("id", StringType()),
            StructField("qty", IntegerType()),
            StructField("updated_at", StringType()),
        ]
    )

    def as_text(raw: DataFrame) -> DataFrame:
        record = F.from_json("payload", "id string, qty string, updated_at string")
        return raw.select(
            "*",
            record["qty"].alias("qty"),
            record["updated_at"].alias("updated_at"),
            F.lit(None).cast("string").alias("quarantine_reason"),
        )

    entity = Entity(name="parts", aggregate="part", schema=schema, normalize=as_text)
    raw = spark.createDataFrame(
        [("1", '{"qty":"3","updated_at":"v1"}'), ("2", '{"qty":"three","updated_at":"v1"}')],
        RAW_COLUMNS,
    ).select(
        *[
            F.col(c)
            if c in ("id", "payload")
            else F.lit(None).cast(RAW_SCHEMA[c].dataType).alias(c)
            for c in RAW_SCHEMA.fieldNames()
        ]
    )
    actual = raw.transform(with_entity_columns(entity)).select("id", "qty", "quarantine_reason")
    expected = spark.createDataFrame(
        [("1", 3, None), ("2", None, "qty is not an int")],
        "id string, qty int, quarantine_reason string",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_a_deleted_winner_is_a_deleted_event_and_an_undeleted_one_an_update(
    spark: SparkSession,
) -> None:
    def row(id_: str, status: str, is_new: bool) -> tuple[object, ...]:
        base = list(_customer(id_, f"{id_}@x.io", T(2026, 2, 1)))
        base[5] = status
        return (*base, is_new, True)

    decided = spark.createDataFrame(
        [
            row("1", "deleted", False),  # deleted at the source
            row("2", "active", False),  # un-deleted (or any update)
            row("3", "deleted", True),  # first seen already deleted
            row("4", "active", True),
        ],
        _extended(("is_new", BooleanType()), ("emit", BooleanType())),
    )
    request = ReplayRequest(ReplayMode.FULL, "req-1")
    actual = outbox_events(decided, CUSTOMERS, request, datetime(2026, 3, 1, tzinfo=UTC))
    assert_df_equality(
        actual.select("aggregate_id", "event_type"),
        spark.createDataFrame(
            [
                ("1", "customer.deleted"),
                ("2", "customer.updated"),
                ("3", "customer.deleted"),
                ("4", "customer.created"),
            ],
            "aggregate_id string, event_type string",
        ),
        ignore_nullable=True,
        ignore_row_order=True,
    )


def test_soft_delete_declarations_are_validated_at_definition() -> None:
    def entity(**changes: object) -> Entity:
        return replace(CUSTOMERS, **changes)  # type: ignore[arg-type]

    assert CUSTOMERS.event_types == EventTypes(
        "customer.created", "customer.updated", "customer.deleted"
    )
    assert entity(events=EventTypes("c.new", "c.changed")).event_types.deleted == (
        "customer.deleted"
    )
    assert entity(deleted=SoftDelete("status", ("gone",))).deleted == SoftDelete(
        "status", ("gone",)
    )
    for deleted, message in [
        (SoftDelete("state", ("deleted",)), "deleted column 'state' is not in the schema"),
        (SoftDelete("id", ("x",)), "deleted column 'id' is the key or the version"),
        (SoftDelete("status"), "deleted values [True] do not fit column 'status' (string)"),
        (SoftDelete("loyalty_points", ("0",)), "deleted values ['0'] do not fit column"),
        (SoftDelete("status", ()), "deleted values are empty"),
    ]:
        with pytest.raises(PipelineDefinitionError, match=re.escape(message)):
            entity(deleted=deleted)
    with pytest.raises(PipelineDefinitionError, match="SoftDelete values 'deleted'"):
        SoftDelete("status", "deleted")  # type: ignore[arg-type]
    with pytest.raises(PipelineDefinitionError, match=re.escape("['is_deleted']")):
        entity(schema=_extended(("is_deleted", BooleanType())))
