"""The bundled orders pipeline, end to end, against a real PostgreSQL started by the suite.

The shop's database gets the ten orders of :data:`SHOP` (four of them malformed) and the
pipeline runs through the conformance kit — full, the same full request again, BAU after the
shop changes two orders, targeted (with an id the shop does not have), since — through the job
entry points, as its Glue jobs run. The tests then compare what each of those requests wrote
with rows built from the orders inserted. Failures (bad credentials, a database without the
tables) and a targeted id with SQL in it are run on their own.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_replay import Pipeline, SourceSettings, run_ingest_job
from glue_replay.tables import Warehouse, read_outbox, read_quarantine, read_runs
from glue_replay.tables.delta import table_exists
from glue_replay.testing import REQUEST_IDS, ConformanceReport, SteppingClock, check_pipeline
from glue_replay_devtools.postgres import Login, Order, OrderLine, PostgresServer, insert_orders
from glue_replay_examples.orders import ORDERS, PIPELINE
from glue_replay_examples.orders.transforms import ORDER_SCHEMA, normalize_orders

pytest_plugins = ["postgres_fixture"]

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FULL, BAU = REQUEST_IDS["full"], REQUEST_IDS["bau"]
TARGETED, SINCE = REQUEST_IDS["targeted"], REQUEST_IDS["since"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def naive(moment: datetime) -> datetime:
    """A UTC instant as Spark hands it back (naive, in the UTC session)."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def line(sku: str, quantity: int, unit_price: str) -> OrderLine:
    return OrderLine(sku, quantity, Decimal(unit_price))


D = Decimal
#: The shop's orders, as the test inserts them.
SHOP = [
    Order(1001, "7", D("59.80"), "EUR", "paid", at("2026-03-01T09:00:00"),
          at("2026-03-02T10:30:00"), (line("SKU-0012", 2, "19.90"), line("SKU-0042", 1, "20.00"))),
    Order(1002, "17", D("19.90"), "GBP", "shipped", at("2026-04-28T09:00:00"),
          at("2026-05-03T10:00:00.250000"), (line("SKU-0012", 2, "9.95"),)),
    Order(1003, "23", D("1234.50"), "USD", "paid", at("2026-05-09T08:00:00"),
          at("2026-05-10T16:45:00"),
          (line("SKU-0058", 1, "1000.00"), line("SKU-0064", 3, "78.00"),
           line("SKU-0077", 1, "0.50"))),
    Order(1004, "31", D("75.00"), "CHF", "delivered", at("2026-05-20T07:00:00"),
          at("2026-06-01T08:00:00"), (line("SKU-0081", 3, "25.00"),)),
    Order(1005, "8", D("-5.00"), "EUR", "refunded", at("2026-04-01T10:00:00"),
          at("2026-04-02T10:00:00"), (line("SKU-0023", 1, "5.00"),)),
    Order(1006, "9", D("12.00"), "XYZ", "paid", at("2026-05-11T10:00:00"),
          at("2026-05-12T10:00:00"), (line("SKU-0031", 1, "12.00"),)),
    Order(1007, "10", D("20.00"), "EUR", "paid", at("2026-05-25T10:00:00"),
          at("2026-05-26T10:00:00"), (line("SKU-0012", 2, "9.95"),)),
    Order(1008, "11", D("30.00"), "GBP", "lost", at("2026-05-30T10:00:00"),
          at("2026-05-31T20:00:00"), (line("SKU-0042", 1, "30.00"),)),
    Order(1009, "42", D("9.99"), "SEK", "pending", at("2026-04-18T11:00:00"),
          at("2026-04-20T12:00:00"), (line("SKU-0095", 1, "9.99"),)),
    Order(1010, "58", D("0.00"), "EUR", "cancelled", at("2026-05-18T10:00:00"),
          at("2026-05-20T10:00:00"), (line("SKU-0017", 1, "0.00"),)),
]  # fmt: skip
BY_ID = {str(order.id): order for order in SHOP}
#: Why each malformed order is quarantined.
REASONS = {
    "1005": "amount is negative; line items total 5.00, not the amount -5.00",
    "1006": "currency XYZ is not an ISO 4217 code",
    "1007": "line items total 19.90, not the amount 20.00",
    "1008": "status lost is not one of pending, paid, shipped, delivered, cancelled, refunded",
}
GOOD = ["1001", "1002", "1003", "1004", "1009", "1010"]
#: The shop ships these two orders between the full backfill and the BAU run.
CHANGED = ["1001", "1003"]


def normalized_row(order: Order) -> tuple[Any, ...]:
    """An inserted order as normalized/orders should hold it."""
    return (
        str(order.id),
        order.customer_id,
        order.amount,
        order.currency,
        order.status,
        naive(order.created_at) if order.created_at else None,
        naive(order.updated_at),
        [(item.sku, item.quantity, item.unit_price) for item in order.lines],
    )


@pytest.fixture(scope="module")
def conformed(
    spark: SparkSession, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ConformanceReport, dict[str, Order]]:
    """The conformance kit's run of the orders pipeline: its report, and the shop's orders as
    they are after it (the kit's BAU step changes :data:`CHANGED`)."""
    postgres.run_sql("TRUNCATE order_lines, orders;")
    insert_orders(postgres, SHOP)
    clock = SteppingClock(NOW)
    now_shop = dict(BY_ID)

    def ship_two_orders() -> list[str]:
        changed = [replace(now_shop[i], status="shipped", updated_at=clock.now) for i in CHANGED]
        insert_orders(postgres, changed)
        now_shop.update({str(order.id): order for order in changed})
        return CHANGED

    with pytest.MonkeyPatch.context() as env:
        for name, value in postgres.reader.as_env().items():
            env.setenv(name, value)
        report = check_pipeline(
            spark,
            PIPELINE,
            warehouse=str(tmp_path_factory.mktemp("orders") / "warehouse"),
            job_args=["--jdbc_url", postgres.jdbc_url],
            known_ids=list(BY_ID),
            bad_ids=list(REASONS),
            missing_id="4242",
            since=date(2026, 5, 1),
            until=date(2026, 5, 15),
            since_ids=["1002", "1006"],
            targeted_ids=["1002", "1004", "1007"],
            change_source=ship_two_orders,
            clock=clock,
        )
    return report, now_shop


def read(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.format("delta").load(path)


def assert_rows(actual: DataFrame, rows: list[tuple[Any, ...]], schema: Any) -> None:
    assert_df_equality(
        actual,
        actual.sparkSession.createDataFrame(rows, schema),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def events(spark: SparkSession, tables: Warehouse, request: str) -> DataFrame:
    return (
        read_outbox(spark, tables)
        .where(F.col("request_id") == request)
        .select("aggregate_id", "event_type", "replay_mode")
    )


EVENTS = "aggregate_id string, event_type string, replay_mode string"
LEDGER = (
    "stage string, status string, rows_read long, rows_written long, rows_outboxed long, "
    "rows_quarantined long, missing_ids array<string>, has_watermark boolean"
)


def ledger(spark: SparkSession, tables: Warehouse, request: str) -> DataFrame:
    return (
        read_runs(spark, tables)
        .where(F.col("request_id") == request)
        .orderBy("started_at", "stage")
        .select(
            "stage",
            "status",
            "rows_read",
            "rows_written",
            "rows_outboxed",
            "rows_quarantined",
            "missing_ids",
            F.col("watermark").isNotNull().alias("has_watermark"),
        )
    )


# --- the pipeline's own transform ---------------------------------------------------------------


def test_normalize_orders_types_cleans_and_quarantines(spark: SparkSession) -> None:
    def payload(**fields: Any) -> str:
        record = {
            "id": 1, "customer_id": " 7 ", "amount": "19.90", "currency": " eur",
            "status": " Paid", "created_at": "2026-05-01T10:00:00.000000Z",
            "updated_at": "2026-05-02T10:00:00.500000Z",
            "line_items": [{"sku": "SKU-0012", "quantity": 2, "unit_price": "9.95"}],
        }  # fmt: skip
        return json.dumps(record | fields)

    raw = spark.createDataFrame(
        [
            ("1", payload()),
            ("2", "not json"),
            ("3", payload(id=3, amount="-1.00", line_items=[])),
            ("4", payload(id=4, currency="eu", status="gone", amount="19.999")),
            ("5", payload(id=5, line_items=[{"sku": " ", "quantity": 0, "unit_price": "x"}])),
            ("6", payload(id=6, created_at="2026-05-03T00:00:00Z", updated_at="yesterday")),
            ("7", payload(id=8, customer_id=None, amount="19.91")),
        ],
        "id string, payload string",
    )
    normalized = normalize_orders(raw).select(*ORDER_SCHEMA.fieldNames(), "quarantine_reason")
    cleaned = ("7", D("19.90"), "EUR", "paid")
    created, updated = datetime(2026, 5, 1, 10), datetime(2026, 5, 2, 10, 0, 0, 500000)
    one_line = [("SKU-0012", 2, D("9.95"))]
    assert_rows(
        normalized,
        [
            ("1", *cleaned, created, updated, one_line, None),
            ("2", None, None, None, None, None, None, None, "payload is not an order JSON object"),
            ("3", "7", D("-1.00"), "EUR", "paid", created, updated, [],
             "amount is negative; order has no line items"),
            ("4", "7", None, "EU", "gone", created, updated, one_line,
             "amount is missing or not a decimal with 2 places; currency EU is not an ISO 4217 "
             "code; status gone is not one of pending, paid, shipped, delivered, cancelled, "
             "refunded"),
            ("5", *cleaned, created, updated, [(None, 0, None)],
             "a line item has no sku; a line item's quantity is not a positive integer; "
             "a line item's unit_price is not a decimal of at least 0"),
            ("6", *cleaned, datetime(2026, 5, 3), None, one_line,
             "updated_at is missing or not a timestamp"),
            ("7", None, D("19.91"), "EUR", "paid", created, updated, one_line,
             "payload id differs from the record id; customer_id is missing; "
             "line items total 19.90, not the amount 19.91"),
        ],
        f"{ORDER_SCHEMA.simpleString()[7:-1]}, quarantine_reason string",
    )  # fmt: skip


def test_lines_summing_past_any_decimal_22_are_totalled_exactly_and_quarantined(
    spark: SparkSession,
) -> None:
    # 11 lines of the largest quantity and price: a sum past decimal(22,2), which ANSI mode
    # (Spark 4) raised as an error and Spark 3.5 made a null total that let the order through.
    largest = {"sku": "SKU-9", "quantity": "999999999", "unit_price": "9999999999.99"}
    record = {
        "id": "1", "customer_id": "7", "amount": "10.00", "currency": "EUR", "status": "paid",
        "created_at": "2026-05-01T10:00:00Z", "updated_at": "2026-05-02T10:00:00Z",
        "line_items": [largest] * 11,
    }  # fmt: skip
    raw = spark.createDataFrame([("1", json.dumps(record))], "id string, payload string")
    normalized = normalize_orders(raw).select("id", "amount", "quarantine_reason")
    assert_rows(
        normalized,
        [("1", D("10.00"), "line items total 109999999889890000000.11, not the amount 10.00")],
        "id string, amount decimal(12,2), quarantine_reason string",
    )


# --- every mode, through the job entry points ---------------------------------------------------


def test_the_orders_pipeline_conforms_on_a_real_postgresql(
    conformed: tuple[ConformanceReport, dict[str, Order]],
) -> None:
    report, _ = conformed
    assert report.checks == (
        "empty warehouse",
        "full",
        "same request twice",
        "bau",
        "targeted",
        "since",
        "table contracts",
    )
    assert report.changed_ids == tuple(CHANGED)


def test_full_ingests_the_shops_orders_as_postgresql_serves_them(
    spark: SparkSession, conformed: tuple[ConformanceReport, dict[str, Order]]
) -> None:
    tables = Warehouse(conformed[0].warehouse)
    raw = read(spark, tables.raw("orders")).where(F.col("request_id") == FULL)
    # Once each, although the request ran twice.
    assert_rows(
        raw.select("id", "source_updated_at", "replay_mode", "ingested_at"),
        [(i, naive(order.updated_at), "full", naive(NOW)) for i, order in BY_ID.items()],
        "id string, source_updated_at timestamp, replay_mode string, ingested_at timestamp",
    )
    # The payload is built by the database: line items in line order, decimals as strings.
    assert raw.where(F.col("id") == "1003").select("payload").first() == (
        '{"id" : 1003, "customer_id" : "23", "amount" : "1234.50", "currency" : "USD", '
        '"status" : "paid", "created_at" : "2026-05-09T08:00:00.000000Z", '
        '"updated_at" : "2026-05-10T16:45:00.000000Z", "line_items" : '
        '[{"sku" : "SKU-0058", "quantity" : 1, "unit_price" : "1000.00"}, '
        '{"sku" : "SKU-0064", "quantity" : 3, "unit_price" : "78.00"}, '
        '{"sku" : "SKU-0077", "quantity" : 1, "unit_price" : "0.50"}]}',
    )
    assert_rows(
        events(spark, tables, FULL),
        [(i, "order.created", "full") for i in GOOD],
        EVENTS,
    )
    assert_rows(
        read_quarantine(spark, tables, "orders")
        .where(F.col("request_id") == FULL)
        .select("id", "reason", "stage"),
        [(i, reason, "normalize") for i, reason in REASONS.items()],
        "id string, reason string, stage string",
    )
    assert_rows(
        ledger(spark, tables, FULL),
        [
            ("ingest", "succeeded", 10, 10, 0, 0, [], False),
            ("normalize", "succeeded", 10, 6, 6, 4, [], False),
            # The same request again (a Glue retry after success) writes nothing.
            ("ingest", "succeeded", 0, 0, 0, 0, [], False),
            ("normalize", "succeeded", 0, 0, 0, 0, [], False),
        ],
        LEDGER,
    )


def test_normalized_orders_are_the_shops_latest_versions(
    spark: SparkSession, conformed: tuple[ConformanceReport, dict[str, Order]]
) -> None:
    report, shop_now = conformed
    normalized = read(spark, Warehouse(report.warehouse).normalized("orders"))
    assert_df_equality(
        normalized.select(*ORDER_SCHEMA.fieldNames()),
        spark.createDataFrame([normalized_row(shop_now[i]) for i in GOOD], ORDER_SCHEMA),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    # The outbox payload is the normalized record; amounts survive exactly.
    event = (
        read_outbox(spark, Warehouse(report.warehouse))
        .where((F.col("request_id") == FULL) & (F.col("aggregate_id") == "1003"))
        .select("payload")
        .first()
    )
    assert event is not None
    record = json.loads(event["payload"], parse_float=Decimal)
    assert Decimal(str(record["amount"])) == D("1234.50")
    assert [Decimal(str(item["unit_price"])) for item in record["line_items"]] == [
        D("1000.00"), D("78.00"), D("0.50")
    ]  # fmt: skip


def test_bau_reads_its_window_and_emits_only_the_changed_orders(
    spark: SparkSession, conformed: tuple[ConformanceReport, dict[str, Order]]
) -> None:
    tables = Warehouse(conformed[0].warehouse)
    raw = read(spark, tables.raw("orders")).where(F.col("request_id") == BAU)
    # The first BAU window is the 24 hours before the run: 1004 and 1008 were updated in it,
    # and the two orders the shop changed.
    assert sorted(row["id"] for row in raw.select("id").collect()) == [
        "1001", "1003", "1004", "1008"
    ]  # fmt: skip
    assert_rows(
        events(spark, tables, BAU),
        [(i, "order.updated", "bau") for i in CHANGED],
        EVENTS,
    )
    assert_rows(
        ledger(spark, tables, BAU),
        [
            ("ingest", "succeeded", 4, 4, 0, 0, [], True),
            # normalize's window is on ingest time: the backfill's ten rows are in it too (and
            # its four malformed ones, with BAU's 1008), but only two orders changed.
            ("normalize", "succeeded", 14, 2, 2, 5, [], True),
        ],
        LEDGER,
    )


def test_targeted_reads_exactly_the_ids_and_reports_the_missing_one(
    spark: SparkSession, conformed: tuple[ConformanceReport, dict[str, Order]]
) -> None:
    tables = Warehouse(conformed[0].warehouse)
    raw = read(spark, tables.raw("orders")).where(F.col("request_id") == TARGETED)
    assert sorted(row["id"] for row in raw.select("id").collect()) == ["1002", "1004", "1007"]
    assert_rows(
        events(spark, tables, TARGETED),
        [("1002", "order.updated", "targeted"), ("1004", "order.updated", "targeted")],
        EVENTS,
    )
    assert_rows(
        ledger(spark, tables, TARGETED),
        [
            ("ingest", "succeeded", 3, 3, 0, 0, ["4242"], False),
            # Every raw version of the three ids (full, BAU's 1004, these): nothing newer to
            # merge, two events, 1007's two versions quarantined.
            ("normalize", "succeeded", 7, 0, 2, 2, ["4242"], False),
        ],
        LEDGER,
    )


def test_since_reads_the_window_in_the_database_and_re_emits_what_it_touched(
    spark: SparkSession, conformed: tuple[ConformanceReport, dict[str, Order]]
) -> None:
    tables = Warehouse(conformed[0].warehouse)
    raw = read(spark, tables.raw("orders")).where(F.col("request_id") == SINCE)
    assert sorted(row["id"] for row in raw.select("id").collect()) == ["1002", "1006"]
    # Normalize selects raw versions updated in the window: 1003's backfilled version is one,
    # and it re-emits 1003 as it is now.
    assert_rows(
        events(spark, tables, SINCE),
        [("1002", "order.updated", "since"), ("1003", "order.updated", "since")],
        EVENTS,
    )


# --- refusals and failures ----------------------------------------------------------------------


def test_an_id_with_sql_in_it_is_refused_before_the_source_exists(
    spark: SparkSession, postgres: PostgresServer, tmp_path: Path, jdbc_login: Login
) -> None:
    built: list[SourceSettings] = []

    def watched(settings: SourceSettings) -> Any:
        built.append(settings)
        return PIPELINE.source(settings)

    pipeline = Pipeline(ORDERS, source=watched, settings=PIPELINE.settings)
    argv = [
        "glue_jobs/ingest_orders.py",
        "--replay_mode", "targeted",
        "--ids", "1001,1002' OR '1'='1",
        "--jdbc_url", postgres.jdbc_url,
        "--warehouse", str(tmp_path / "warehouse"),
    ]  # fmt: skip
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert run_ingest_job(argv, pipeline, spark=spark) == 2
    assert stderr.getvalue() == (
        "ingest_orders: invalid request: --ids: \"1002' OR '1'='1\" is not a valid id; "
        "accepted: an order number: 1-18 digits, not starting with 0\n"
    )
    assert built == []
    assert not (tmp_path / "warehouse").exists()


@pytest.mark.parametrize(
    ("case", "error"),
    [
        (
            "bad password",
            "the database refused the credentials: FATAL: password authentication failed "
            'for user "glue_replay_reader" [SQLSTATE 28P01]',
        ),
        (
            "no orders table",
            "the query was refused (unknown table or column, or no privilege): ERROR: "
            'relation "orders" does not exist [SQLSTATE 42P01]',
        ),
    ],
)
def test_a_source_failure_fails_the_run_with_one_line_and_appends_nothing(
    spark: SparkSession,
    postgres: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    error: str,
) -> None:
    jdbc_url = postgres.jdbc_url
    monkeypatch.setenv("GLUE_REPLAY_JDBC_USER", postgres.reader.user)
    if case == "bad password":
        monkeypatch.setenv("GLUE_REPLAY_JDBC_PASSWORD", "Wrong-Sentinel-31")
    else:
        monkeypatch.setenv("GLUE_REPLAY_JDBC_PASSWORD", postgres.reader.password)
        postgres.run_sql("DROP DATABASE IF EXISTS warehouse_db; CREATE DATABASE warehouse_db;")
        jdbc_url = jdbc_url.rsplit("/", 1)[0] + "/warehouse_db"
    warehouse = tmp_path / "warehouse"
    argv = [
        "glue_jobs/ingest_orders.py",
        "--replay_mode", "full",
        "--request_id", "r-1",
        "--jdbc_url", jdbc_url,
        "--warehouse", str(warehouse),
    ]  # fmt: skip
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert run_ingest_job(argv, PIPELINE, spark=spark) == 1
    line = f"JDBC orders at {jdbc_url}: {error}"
    assert stderr.getvalue() == f"ingest_orders: failed: {line}\n"
    tables = Warehouse(str(warehouse))
    rows = read_runs(spark, tables).select("stage", "replay_mode", "status", "error").collect()
    assert rows == [("ingest", "full", "failed", f"SourceError: {line}")]
    assert not table_exists(spark, tables.raw("orders"))
    for secret in ("Wrong-Sentinel-31", postgres.reader.password):
        assert secret not in stderr.getvalue()
        assert secret not in str(rows)


def test_the_source_is_built_from_the_jobs_settings_only(postgres: PostgresServer) -> None:
    source = PIPELINE.source(SourceSettings("unused", extra={"jdbc_url": postgres.jdbc_url}))
    assert source.description == f"JDBC orders at {postgres.jdbc_url}"
