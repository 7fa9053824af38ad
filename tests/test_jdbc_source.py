"""The JDBC source against a real PostgreSQL (started by the suite): what each read returns,
what runs in the database, and how it fails.

Two small tables of the test's own: ``widgets`` (bigint key, a decimal, a nullable text, a
``timestamptz``) and ``people`` (text keys with quotes and SQL in them).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from chispa import assert_df_equality
from moto import mock_aws
from pyspark.sql import DataFrame, SparkSession

from glue_replay import IdRule, SourceSettings
from glue_replay.errors import InvalidRequestError, PipelineDefinitionError, SourceError
from glue_replay.sources.jdbc import (
    JdbcCredentials,
    JdbcSource,
    checked_jdbc_url,
    jdbc_credentials,
    read_secret_credentials,
)
from glue_replay_devtools.postgres import PostgresServer

pytest_plugins = ["postgres_fixture"]

RECORDS = "id string, updated_at timestamp, payload string"
SENTINEL = "Sentinel-Pw-7f3a9"  # a password no message, log or plan may show


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def naive(*parts: int) -> datetime:
    """A timestamp as Spark hands it back (UTC session, naive)."""
    return datetime(*parts)


@pytest.fixture(scope="module")
def tables(postgres: PostgresServer) -> PostgresServer:
    postgres.run_sql(
        """
        DROP TABLE IF EXISTS widgets, people;
        CREATE TABLE widgets (
            id bigint PRIMARY KEY, name text, price numeric(12, 2),
            updated_at timestamptz NOT NULL);
        INSERT INTO widgets VALUES
            (1, 'bolt', 0.25, '2026-05-01T10:00:00Z'),
            (2, 'nut''s', 1.50, '2026-05-02T10:00:00.123456Z'),
            (3, NULL, NULL, '2026-05-03T00:00:00Z'),
            (4, 'gear', 1234567890.99, '2026-05-03T23:59:59.999999Z'),
            (5, 'cog', -0.01, '2026-05-04T00:00:00Z'),
            (40, 'spring', 3.00, '2026-05-05T00:00:00Z');
        CREATE TABLE people (code text PRIMARY KEY, name text, changed_at timestamptz NOT NULL);
        INSERT INTO people VALUES
            ('O''Brien', 'Aoife', '2026-05-01T00:00:00Z'),
            ('x'' OR ''1''=''1', 'Mallory', '2026-05-01T00:00:00Z'),
            ('plain', 'Pat', '2026-05-01T00:00:00Z');
        """
    )
    return postgres


def widgets(server: PostgresServer, **options: Any) -> JdbcSource:
    credentials = JdbcCredentials(server.reader.user, server.reader.password)
    return JdbcSource(server.jdbc_url, table="widgets", credentials=credentials, **options)


WIDGET_ROWS = {
    "1": (
        naive(2026, 5, 1, 10),
        '{"id":1,"name":"bolt","price":"0.25","updated_at":"2026-05-01T10:00:00.000000Z"}',
    ),
    "2": (
        naive(2026, 5, 2, 10, 0, 0, 123456),
        '{"id":2,"name":"nut\'s","price":"1.50","updated_at":"2026-05-02T10:00:00.123456Z"}',
    ),
    "3": (
        naive(2026, 5, 3),
        '{"id":3,"name":null,"price":null,"updated_at":"2026-05-03T00:00:00.000000Z"}',
    ),
    "4": (
        naive(2026, 5, 3, 23, 59, 59, 999999),
        '{"id":4,"name":"gear","price":"1234567890.99","updated_at":"2026-05-03T23:59:59.999999Z"}',
    ),
    "5": (
        naive(2026, 5, 4),
        '{"id":5,"name":"cog","price":"-0.01","updated_at":"2026-05-04T00:00:00.000000Z"}',
    ),
    "40": (
        naive(2026, 5, 5),
        '{"id":40,"name":"spring","price":"3.00","updated_at":"2026-05-05T00:00:00.000000Z"}',
    ),
}


def expected(spark: SparkSession, ids: list[str]) -> DataFrame:
    return spark.createDataFrame([(i, *WIDGET_ROWS[i]) for i in ids], RECORDS)


def plan_of(frame: DataFrame) -> str:
    """``frame.explain(extended=True)``, with the scans' pushed filters written out in full."""
    conf = frame.sparkSession.conf
    before = conf.get("spark.sql.maxMetadataStringLength")
    conf.set("spark.sql.maxMetadataStringLength", "10000")
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            frame.explain(extended=True)
    finally:
        conf.set("spark.sql.maxMetadataStringLength", before)
    return captured.getvalue()


def assert_records(actual: DataFrame, wanted: DataFrame) -> None:
    assert_df_equality(
        actual, wanted, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True
    )


# --- the reads ---------------------------------------------------------------------------------


def test_a_full_read_runs_range_queries_in_parallel_and_misses_no_row(
    spark: SparkSession, tables: PostgresServer
) -> None:
    # Bounds from min/max (1..40): three range queries, the last open-ended.
    full = widgets(tables, num_partitions=3).read_full(spark)
    assert full.rdd.getNumPartitions() == 3
    assert "[numPartitions=3]" in plan_of(full)
    assert_records(full, expected(spark, ["1", "2", "3", "4", "5", "40"]))

    # Configured bounds narrower than the data only set the stride: no row is lost.
    narrow = widgets(tables, num_partitions=2, bounds=(2, 4)).read_full(spark)
    assert narrow.rdd.getNumPartitions() == 2
    assert_records(narrow, expected(spark, ["1", "2", "3", "4", "5", "40"]))


def test_a_since_read_runs_its_window_in_the_database(
    spark: SparkSession, tables: PostgresServer
) -> None:
    since = widgets(tables, num_partitions=2).read_since(
        spark, utc(2026, 5, 2, 10, 0, 0, 123456), utc(2026, 5, 4)
    )
    plan = plan_of(since)
    assert (
        "PushedFilters: [*IsNotNull(updated_at), "
        "*GreaterThanOrEqual(updated_at,2026-05-02 10:00:00.123456), "
        "*LessThan(updated_at,2026-05-04 00:00:00.0)]"
    ) in plan
    # The window itself is split in two time ranges, read in parallel.
    assert since.rdd.getNumPartitions() == 2
    assert "[numPartitions=2]" in plan
    assert_records(since, expected(spark, ["2", "3", "4"]))

    bau = widgets(tables).read_bau(spark, utc(2026, 5, 4), utc(2026, 6, 1))
    assert "*GreaterThanOrEqual(updated_at,2026-05-04 00:00:00.0)" in plan_of(bau)
    assert bau.rdd.getNumPartitions() == 1
    assert_records(bau, expected(spark, ["5", "40"]))


def test_a_targeted_read_sends_bounded_batches_of_ids_as_literals(
    spark: SparkSession, tables: PostgresServer
) -> None:
    ids = spark.createDataFrame([(i,) for i in ["40", "2", "999", "1", "5", "3"]], "id string")
    frame = widgets(tables, ids_batch_size=2).read_ids(spark, ids)
    plan = plan_of(frame)
    # Sorted, in batches of two, each pushed down as an IN list.
    for batch in ("In(id, [1,2])", "In(id, [3,5])", "In(id, [40,999])"):
        assert f"PushedFilters: [*{batch}]" in plan, batch
    assert frame.rdd.getNumPartitions() == 3
    assert_records(frame, expected(spark, ["1", "2", "3", "5", "40"]))


def test_a_text_id_with_quotes_and_sql_matches_only_itself(
    spark: SparkSession, tables: PostgresServer
) -> None:
    credentials = JdbcCredentials(tables.reader.user, tables.reader.password)
    people = JdbcSource(
        tables.jdbc_url,
        table="public.people",
        id_column="code",
        updated_column="changed_at",
        partition_column="changed_at",
        credentials=credentials,
    )
    ids = spark.createDataFrame([("O'Brien",), ("' OR '1'='1",)], "id string")
    assert_records(
        people.read_ids(spark, ids),
        spark.createDataFrame(
            [
                (
                    "O'Brien",
                    naive(2026, 5, 1),
                    '{"code":"O\'Brien","name":"Aoife","changed_at":"2026-05-01T00:00:00.000000Z"}',
                )
            ],
            RECORDS,
        ),
    )
    assert tables.run_sql("SELECT count(*) FROM people;").strip() == "3"


def test_the_sources_own_id_rule_refuses_before_connecting(spark: SparkSession) -> None:
    asked: list[str] = []

    def credentials() -> JdbcCredentials:
        asked.append("credentials")
        return JdbcCredentials("reader", SENTINEL)

    source = JdbcSource(
        "jdbc:postgresql://127.0.0.1:1/shop",
        table="widgets",
        credentials=credentials,
        ids=IdRule(r"[0-9]{1,9}", "1-9 digits"),
    )
    ids = spark.createDataFrame([("1",), ("1;DROP TABLE widgets",)], "id string")
    with pytest.raises(SourceError) as refused:
        source.read_ids(spark, ids)
    assert str(refused.value) == (
        "JDBC widgets at jdbc:postgresql://127.0.0.1:1/shop: a requested id is not valid for "
        "this source (1-9 digits); nothing was queried"
    )
    assert asked == []


# --- failures: one line, no password -------------------------------------------------------------


def _bad_password(server: PostgresServer) -> JdbcSource:
    return JdbcSource(
        server.jdbc_url, table="widgets", credentials=JdbcCredentials(server.reader.user, SENTINEL)
    )


def _unknown_table(server: PostgresServer) -> JdbcSource:
    return JdbcSource(server.jdbc_url, table="gadgets", credentials=_reader(server))


def _unknown_column(server: PostgresServer) -> JdbcSource:
    return JdbcSource(
        server.jdbc_url, table="widgets", updated_column="modified_at", credentials=_reader(server)
    )


def _unreachable(server: PostgresServer) -> JdbcSource:
    return JdbcSource(
        "jdbc:postgresql://127.0.0.1:1/shop",
        table="widgets",
        credentials=_reader(server),
        properties={"connectTimeout": "5"},
    )


def _reader(server: PostgresServer) -> JdbcCredentials:
    return JdbcCredentials(server.reader.user, server.reader.password)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            _bad_password,
            "JDBC widgets at {url}: the database refused the credentials: FATAL: password "
            'authentication failed for user "glue_replay_reader" [SQLSTATE 28P01]',
        ),
        (
            _unknown_table,
            "JDBC gadgets at {url}: the query was refused (unknown table or column, or no "
            'privilege): ERROR: relation "gadgets" does not exist [SQLSTATE 42P01]',
        ),
        (
            _unknown_column,
            "JDBC widgets at {url}: no column 'modified_at'; it has id, name, price, updated_at",
        ),
        (
            _unreachable,
            "JDBC widgets at jdbc:postgresql://127.0.0.1:1/shop: could not connect: Connection "
            "to 127.0.0.1:1 refused. Check that the hostname and port are correct and that the "
            "postmaster is accepting TCP/IP connections. [SQLSTATE 08001]",
        ),
    ],
    ids=["bad password", "unknown table", "unknown column", "unreachable host"],
)
def test_a_failed_read_is_one_line_without_the_password(
    spark: SparkSession,
    tables: PostgresServer,
    build: Callable[[PostgresServer], JdbcSource],
    message: str,
) -> None:
    with pytest.raises(SourceError) as failed:
        build(tables).read_full(spark)
    assert str(failed.value) == message.format(url=tables.jdbc_url)
    assert failed.value.__cause__ is None  # no Java stack trace chained to it
    assert tables.reader.password not in str(failed.value)


def test_no_plan_shows_the_password(spark: SparkSession, tables: PostgresServer) -> None:
    source = widgets(tables, num_partitions=2)
    frames = [
        source.read_full(spark),
        source.read_since(spark, utc(2026, 5, 1), None),
        source.read_ids(spark, spark.createDataFrame([("1",)], "id string")),
    ]
    for frame in frames:
        plan = plan_of(frame)
        assert "JDBCRelation" in plan
        assert tables.reader.password not in plan
        assert tables.reader.password not in frame._jdf.queryExecution().toString()


# --- credentials, URL and names -----------------------------------------------------------------


def test_credentials_come_from_the_secret_when_one_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GLUE_REPLAY_JDBC_USER", raising=False)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="eu-west-1")
        client.create_secret(
            Name="shop-db", SecretString=json.dumps({"username": "etl", "password": SENTINEL})
        )
        client.create_secret(Name="token-only", SecretString=SENTINEL)
        settings = SourceSettings("x", token_secret="shop-db", secrets_client=client)
        assert jdbc_credentials(settings)() == JdbcCredentials("etl", SENTINEL)
        assert SENTINEL not in repr(JdbcCredentials("etl", SENTINEL))

        with pytest.raises(SourceError) as malformed:
            read_secret_credentials("token-only", client)
        assert str(malformed.value) == (
            'secret token-only is not JSON with string "username" and "password" keys'
        )
        with pytest.raises(SourceError) as missing:
            read_secret_credentials("nope", client)
        assert str(missing.value) == "could not read secret nope: ResourceNotFoundException"


def test_credentials_come_from_the_environment_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLUE_REPLAY_JDBC_USER", "etl")
    monkeypatch.setenv("GLUE_REPLAY_JDBC_PASSWORD", SENTINEL)
    assert jdbc_credentials(SourceSettings("x"))() == JdbcCredentials("etl", SENTINEL)

    monkeypatch.delenv("GLUE_REPLAY_JDBC_USER")
    with pytest.raises(SourceError) as missing:
        jdbc_credentials(SourceSettings("x"))()
    assert "set $GLUE_REPLAY_JDBC_USER and $GLUE_REPLAY_JDBC_PASSWORD" in str(missing.value)


@pytest.mark.parametrize(
    "url",
    [
        f"jdbc:postgresql://etl:{SENTINEL}@db:5432/shop",
        f"jdbc:postgresql://db:5432/shop?user=etl&password={SENTINEL}",
        f"jdbc:postgresql://db:5432/shop?ssl=true&PASSWORD={SENTINEL}",
        f"jdbc:sqlserver://db:1433;databaseName=shop;password={SENTINEL}",
    ],
)
def test_a_url_with_credentials_is_refused_without_repeating_it(url: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        checked_jdbc_url(url)
    assert refused.value.field == "jdbc_url"
    assert str(refused.value).startswith("--jdbc_url: holds credentials (a user or a password)")
    assert SENTINEL not in str(refused.value)


def test_a_url_that_is_not_jdbc_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"^--jdbc_url: is not a JDBC URL; accepted"):
        checked_jdbc_url("postgresql://db:5432/shop")
    assert checked_jdbc_url(" jdbc:postgresql://db:5432/shop ") == "jdbc:postgresql://db:5432/shop"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"table": "widgets; DROP TABLE widgets"}, "JDBC table 'widgets; DROP TABLE widgets'"),
        ({"table": 'a"b'}, "JDBC table 'a\"b'"),
        ({"table": "a.b.c"}, "JDBC table 'a.b.c'"),
        ({"table": "widgets", "id_column": 'id" --'}, "JDBC column 'id\" --'"),
        ({"table": "widgets", "query": "SELECT 1"}, "exactly one of table= or query="),
        ({"query": "SELECT 1; DELETE FROM widgets"}, "query= must be one SQL statement"),
        ({"table": "widgets", "properties": {"password": "x"}}, "may not hold credentials"),
    ],
)
def test_names_and_definitions_are_checked_when_the_source_is_built(
    options: dict[str, Any], problem: str
) -> None:
    credentials = JdbcCredentials("etl", SENTINEL)
    with pytest.raises(PipelineDefinitionError, match=problem.replace("(", r"\(")):
        JdbcSource("jdbc:postgresql://db:5432/shop", credentials=credentials, **options)
