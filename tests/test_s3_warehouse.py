"""The warehouse on S3, for real: the customers pipeline with ``--warehouse s3://lake/wh``.

On AWS Glue 5.1 the warehouse is read and written through Hadoop's S3A file system; here the
jobs do the same, through the S3A connector a local session puts on its class path
(``glue_replay.runtime``), against ``moto_server`` speaking TLS only, with a certificate made
for the run. The jobs run in one process of their own (``tests/jobs_driver.py``, one Spark
session for all of them), whose JVM trusts that certificate from its start; the source is the
sample API on loopback, moved by hand as in ``test_pipelines``. Every replay mode runs (full,
BAU, since, targeted by ``--ids`` and by an ``--ids_file`` on S3), then a retry of a finished
request (nothing written twice), then a normalize killed by SIGKILL between its outbox commit
and its MERGE, finished by its retry in a second process.

The tables are then read from the same bucket by delta-rs (no JVM: what ``glue-replay status``
uses), over TLS with the same certificate trusted (``SSL_CERT_FILE``: delta-rs's TLS reads the
platform's roots, which that variable replaces), and compared whole with explicit expectations:
raw, normalized, the outbox's events per request and the runs ledger. Every object in the
bucket came through the TLS-only endpoint, and no credential shows in the jobs' logs.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import boto3
import pyspark
import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable, QueryBuilder
from pyspark.sql import SparkSession

from conftest import JOB_JVM_OPTIONS, TEST_SESSION_SETTINGS
from glue_replay.errors import GlueReplayError
from glue_replay.runtime import build_spark_session
from glue_replay.runtime.spark import s3a_artifacts, s3a_settings
from glue_replay.testing import SteppingClock
from glue_replay_devtools.sample_api import SampleApiServer
from glue_replay_examples.customers.transforms import CUSTOMER_SCHEMA
from moto_process import FAKE_AWS_ENVIRONMENT, REGION, TlsEndpoint, running_tls_moto_server
from sample_data import ALL_IDS, NOW

REPO = Path(__file__).resolve().parents[1]
BUCKET = "lake"
WAREHOUSE = f"s3://{BUCKET}/wh"
IDS_FILE_KEY = "inbox/ids.csv"
MALFORMED = {"20", "40", "60"}
VALID_IDS = [i for i in ALL_IDS if i not in MALFORMED]
#: Credentials only moto sees, distinct enough to be looked for in every log.
SECRET_KEY = "secret-key-7f3a9c1e-never-logged"
SESSION_TOKEN = "session-token-5b2d8e04-never-logged"
CREDENTIALS = {
    **FAKE_AWS_ENVIRONMENT,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_SESSION_TOKEN": SESSION_TOKEN,
}
#: The suite's session's small sizes, for the driver's session too.
DRIVER_SETTINGS = TEST_SESSION_SETTINGS
DIE_BEFORE_MERGE = "glue_replay.pipelines.normalize:_merge_latest"
JOB_TIMEOUT = 300


def _java_tools_missing() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    for tool in ("java", "keytool"):
        in_home = java_home is not None and Path(java_home, "bin", tool).is_file()
        if shutil.which(tool) is None and not in_home:
            return f"{tool} not found (on the PATH or in JAVA_HOME): the S3A test needs a JDK"
    return None


JAVA_MISSING = _java_tools_missing()


def T(hours: float = 0) -> datetime:  # noqa: N802 - reads as a time literal in expectations
    """``NOW + hours`` as the naive UTC datetime Spark hands back."""
    return (NOW + timedelta(hours=hours)).replace(tzinfo=None)


class Driver:
    """``tests/jobs_driver.py -`` in a process of its own: one job a line, answered in turn."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        conf = [
            arg for key, value in DRIVER_SETTINGS.items() for arg in ("--conf", f"{key}={value}")
        ]
        with log.open("a") as stderr:  # its Spark session starts at once, for the warehouse
            self.process = subprocess.Popen(
                [sys.executable, "tests/jobs_driver.py", "-", *conf, "--warehouse", WAREHOUSE],
                cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                text=True,
            )  # fmt: skip

    def run(self, stage: str, argv: list[str], clock: datetime, die_at: str | None = None) -> int:
        """Run one job; its exit code, or ``-SIGKILL`` style negative codes when the driver died."""
        invocation: dict[str, Any] = {
            "pipeline": "customers",
            "stage": stage,
            "argv": argv,
            "clock": clock.isoformat(),
        }
        if die_at is not None:
            invocation["die_at"] = die_at
        stdin, stdout = self._pipes()
        stdin.write(json.dumps(invocation) + "\n")
        stdin.flush()
        ready, _, _ = select.select([stdout], [], [], JOB_TIMEOUT)
        line = stdout.readline() if ready else ""
        if not line:
            if ready:  # the driver ended: report how
                return self.process.wait(timeout=60)
            threads = self._jvm_threads()
            self.process.kill()
            raise AssertionError(
                f"{stage} {argv} did not answer in {JOB_TIMEOUT} s: {self.tail()}\n{threads}"
            )
        result = json.loads(line)
        assert (result["stage"], result["pipeline"]) == (stage, "customers"), result
        return int(result["exit_code"])

    def close(self) -> None:
        stdin, _ = self._pipes()
        stdin.close()
        code = self.process.wait(timeout=120)
        assert code == 0, self.tail()

    def tail(self) -> str:
        return self.log.read_text()[-4000:]

    def _jvm_threads(self) -> str:
        """The driver's JVM's threads (``jstack``), written to the log: what a hung job waits on."""
        jvms = [
            stat.parent.name
            for stat in Path("/proc").glob("[0-9]*/stat")
            if _parent_pid(stat) == self.process.pid
        ]
        jstack = shutil.which("jstack") or "jstack"
        dumps = [
            subprocess.run([jstack, pid], capture_output=True, text=True, timeout=60, check=False)
            for pid in jvms
        ]
        text = "\n".join(dump.stdout + dump.stderr for dump in dumps)
        with self.log.open("a") as log:
            log.write(f"\n--- jstack of the driver's JVM ---\n{text}")
        return f"(jstack of the driver's JVM appended to {self.log})"

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self.process.stdin is not None and self.process.stdout is not None
        return self.process.stdin, self.process.stdout


def _parent_pid(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


class Jobs:
    """The customers jobs as Glue would start them, in a :class:`Driver`, on the shared clock."""

    def __init__(self, driver: Driver, api: SampleApiServer, clock: SteppingClock) -> None:
        self.driver, self.clock = driver, clock
        self.common = ["--warehouse", WAREHOUSE, "--source_url", api.url]

    def ingest(self, *arguments: str) -> int:
        return self.driver.run("ingest", [*arguments, *self.common], self.clock.now)

    def normalize(self, *arguments: str, die_at: str | None = None) -> int:
        return self.driver.run("normalize", [*arguments, *self.common], self.clock.now, die_at)

    def both(self, *arguments: str) -> None:
        """Ingest then normalize one minute later, as the workflow cascade does."""
        assert self.ingest(*arguments) == 0, self.driver.tail()
        self.clock.advance(minutes=1)
        assert self.normalize(*arguments) == 0, self.driver.tail()


class Bucket:
    """The bucket as delta-rs and boto3 see it, over TLS, trusting the test's certificate only."""

    def __init__(self, endpoint: TlsEndpoint) -> None:
        self.endpoint = endpoint
        self.s3 = boto3.client(
            "s3",
            endpoint_url=endpoint.url,
            verify=str(endpoint.ca_bundle),
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=SECRET_KEY,
            aws_session_token=SESSION_TOKEN,
        )
        self.storage_options = {
            "AWS_ENDPOINT_URL": endpoint.url,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_SESSION_TOKEN": SESSION_TOKEN,
        }

    def read(self, table: str, columns: str, where: str = "") -> list[tuple[Any, ...]]:
        """``SELECT columns FROM <warehouse>/<table> [WHERE ...]`` with delta-rs."""
        delta = DeltaTable(f"{WAREHOUSE}/{table}", storage_options=self.storage_options)
        query = f"SELECT {columns} FROM t" + (f" WHERE {where}" if where else "")
        result = QueryBuilder().register("t", delta).execute(query).read_all()
        values = [result.column(name).to_pylist() for name in result.column_names]
        return list(zip(*values, strict=True))

    def version(self, table: str) -> int:
        location = f"{WAREHOUSE}/{table}"
        return int(DeltaTable(location, storage_options=self.storage_options).version())

    def object_keys(self) -> set[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(NOW)


@pytest.fixture
def api(clock: SteppingClock) -> Iterator[SampleApiServer]:
    with SampleApiServer(records=60, now=NOW, clock=clock) as server:
        yield server


#: S3A's credential providers by Spark line: its own keys, then the AWS SDK's default chain (S3A
#: 3.3.4, pyspark 3.5's, is built on SDK v1; S3A 3.4.2, pyspark 4.1's, on SDK v2).
CREDENTIAL_PROVIDERS = {
    "3.5.6": "com.amazonaws.auth.DefaultAWSCredentialsProviderChain",
    "4.1.1": "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
}


@pytest.mark.parametrize("spark_version", sorted(CREDENTIAL_PROVIDERS))
def test_local_sessions_read_the_s3_endpoint_and_region_from_the_aws_environment(
    spark_version: str,
) -> None:
    base = {
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider,"
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider,"
            + CREDENTIAL_PROVIDERS[spark_version]
        ),
    }
    assert s3a_settings({}, spark_version) == base
    secrets = {"AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_SESSION_TOKEN": SESSION_TOKEN}
    environment = {
        **secrets,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ENDPOINT_URL_S3": "https://s3.internal.example:9443",
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_REGION": "eu-west-1",
    }
    assert s3a_settings(environment, spark_version) == {
        **base,
        "spark.hadoop.fs.s3a.endpoint": "https://s3.internal.example:9443",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "true",
        "spark.hadoop.fs.s3a.endpoint.region": "eu-west-1",
    }
    # The generic endpoint and region when there is no S3 one; plain HTTP only when it says so.
    del environment["AWS_ENDPOINT_URL_S3"], environment["AWS_REGION"]
    assert s3a_settings(environment, spark_version) == {
        **base,
        "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:9000",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.endpoint.region": "us-west-2",
    }
    ignored = {**environment, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert s3a_settings(ignored, spark_version) == {
        **base,
        "spark.hadoop.fs.s3a.endpoint.region": "us-west-2",
    }


def test_a_session_for_an_s3_warehouse_needs_the_s3a_jars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before any JVM starts, naming what is missing and how to get it."""
    hadoop_aws, sdk_bundle = s3a_artifacts().jars  # the installed Spark line's
    for jar in Path(os.environ["GLUE_REPLAY_JARS_DIR"]).glob("*.jar"):
        if jar.name not in (hadoop_aws, sdk_bundle):
            (tmp_path / jar.name).symlink_to(jar)
    monkeypatch.setenv("GLUE_REPLAY_JARS_DIR", str(tmp_path))
    with pytest.raises(GlueReplayError) as refused:
        build_spark_session("never-started", warehouse="s3://lake/wh")
    fetch = "run `make setup`"  # what fills the installed line's jar cache
    if not pyspark.__version__.startswith("3.5."):
        command = "python scripts/fetch_jars.py --spark 4.1 <jar folder>"
        fetch = f"run `{command}`, as `make test-spark4` does"
    assert str(refused.value) == (
        f"the warehouse s3://lake/wh is on S3 but {tmp_path} does not hold "
        f"{hadoop_aws} and {sdk_bundle} (Hadoop's S3A file system); {fetch}"
    )


@pytest.mark.skipif(JAVA_MISSING is not None, reason=str(JAVA_MISSING))
def test_every_replay_mode_and_retries_on_an_s3_warehouse_through_s3a(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    api: SampleApiServer,
    clock: SteppingClock,
) -> None:
    jars = Path(os.environ["GLUE_REPLAY_JARS_DIR"])
    missing = [name for name in s3a_artifacts().jars if not (jars / name).is_file()]
    assert not missing, f"{', '.join(missing)} not in {jars}: run `make setup`"

    with running_tls_moto_server(tmp_path) as endpoint:
        bucket = Bucket(endpoint)
        bucket.s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        env = {
            **os.environ,
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": endpoint.url,
            "AWS_CA_BUNDLE": str(endpoint.ca_bundle),
            "SPARK_SUBMIT_OPTS": f"{JOB_JVM_OPTIONS} {endpoint.java_options()}",
        }
        driver_log = tmp_path / "jobs_driver.log"
        jobs = Jobs(Driver(env, driver_log), api, clock)
        # The suite's session starts while the driver's JVM does (before any AWS setting is in
        # this process's environment: it is only the reader of what the driver wrote).
        spark: SparkSession = request.getfixturevalue("spark")
        # delta-rs trusts the platform's roots, which SSL_CERT_FILE replaces: the test's alone.
        monkeypatch.setenv("SSL_CERT_FILE", str(endpoint.ca_bundle))

        # full, then BAU after two changes at the source
        jobs.both("--replay_mode", "full", "--request_id", "full-1", "--JOB_RUN_ID", "jr_full")
        clock.advance(hours=1)
        assert api.mutate(ids=["6", "7"]) == ["6", "7"]  # at NOW + 1h01
        clock.advance(hours=1)  # NOW + 2h01
        jobs.both("--request_id", "bau-1", "--JOB_RUN_ID", "jr_bau")

        # since a date, until another
        clock.advance(minutes=10)
        window = ("--replay_mode", "since", "--date", "2026-01-01", "--until", "2026-03-15")
        jobs.both(*window, "--request_id", "since-1", "--JOB_RUN_ID", "jr_since")

        # targeted: a list of ids
        clock.advance(minutes=10)
        targeted = ("--replay_mode", "targeted", "--ids", "3,4", "--request_id", "t-ids")
        jobs.both(*targeted, "--JOB_RUN_ID", "jr_t1")

        # The same request again (a Glue retry after the first attempt succeeded): no commit.
        data_tables = [
            "raw/customers", "normalized/customers", "outbox/customers",
            "quarantine/customers/normalize",
        ]  # fmt: skip
        versions = {table: bucket.version(table) for table in data_tables}
        clock.advance(minutes=5)
        jobs.both(*targeted, "--JOB_RUN_ID", "jr_t1_attempt_1")
        assert {table: bucket.version(table) for table in data_tables} == versions

        # targeted by a CSV on S3 (its header named by --id_column; 999 is unknown), after 8 and
        # 9 changed at the source; its normalize is killed between its outbox commit and its
        # MERGE, as a lost Glue worker dies ...
        clock.advance(minutes=10)
        assert api.mutate(ids=["8", "9"]) == ["8", "9"]
        changed_at = clock.now
        body = b"customer_id\r\n9\r\n999\r\n8\r\n9\r\n"
        bucket.s3.put_object(Bucket=BUCKET, Key=IDS_FILE_KEY, Body=body)
        clock.advance(minutes=1)
        from_file = (
            "--replay_mode", "targeted", "--ids_file", f"s3://{BUCKET}/{IDS_FILE_KEY}",
            "--id_column", "customer_id", "--request_id", "t-file",
        )  # fmt: skip
        assert jobs.ingest(*from_file, "--JOB_RUN_ID", "jr_t2") == 0, jobs.driver.tail()
        clock.advance(minutes=1)
        retrying = Driver(env, driver_log)  # the retry's process (a new JVM), starting already
        killed = jobs.normalize(*from_file, "--JOB_RUN_ID", "jr_t2", die_at=DIE_BEFORE_MERGE)
        assert killed == -signal.SIGKILL, jobs.driver.tail()
        # ... and left its events in the outbox, the old versions in normalized.
        jobs.driver = retrying
        unmerged = bucket.read("normalized/customers", "id, request_id", "id IN ('8', '9')")
        assert sorted(unmerged) == [("8", "full-1"), ("9", "full-1")]
        events = bucket.read("outbox/customers", "aggregate_id", "request_id = 't-file'")
        assert sorted(events) == [("8",), ("9",)]

        # The retry finishes the request: the MERGE, no second event.
        clock.advance(minutes=5)
        retried_at = clock.now
        retry = jobs.normalize(*from_file, "--JOB_RUN_ID", "jr_t2_attempt_1")
        assert retry == 0, jobs.driver.tail()
        jobs.driver.close()

        _assert_tables(spark, bucket, changed_at, retried_at)
        _assert_written_over_tls_only(bucket, tmp_path / "moto_server.log")
    logs = driver_log.read_text()
    assert "INFO glue_replay" in logs  # the jobs did log, to where we look
    assert SECRET_KEY not in logs and SESSION_TOKEN not in logs


def _assert_tables(
    spark: SparkSession, bucket: Bucket, changed_at: datetime, retried_at: datetime
) -> None:
    """The tables after the scenario, whole: ``changed_at`` is when 8 and 9 changed at the
    source, ``retried_at`` when the killed normalize was retried."""
    since_ids = ["21", "23", "27", "32", "42"]

    def rows(*requests: tuple[list[str], str, str]) -> list[tuple[str, str, str]]:
        return [(i, request_id, mode) for ids, request_id, mode in requests for i in ids]

    # raw: what each request read from the source, once each (the retry of t-ids added none)
    replays = [
        (["6", "7"], "bau-1", "bau"),
        (since_ids, "since-1", "since"),
        (["3", "4"], "t-ids", "targeted"),
        (["8", "9"], "t-file", "targeted"),
    ]
    assert_df_equality(
        spark.createDataFrame(
            bucket.read("raw/customers", "id, request_id, replay_mode"),
            "id string, request_id string, replay_mode string",
        ),
        spark.createDataFrame(
            rows((ALL_IDS, "full-1", "full"), *replays),
            "id string, request_id string, replay_mode string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )

    # normalized: one row per valid id, from the request that last changed it
    last_change = dict.fromkeys(VALID_IDS, ("full-1", "full"))
    last_change.update({"6": ("bau-1", "bau"), "7": ("bau-1", "bau")})
    last_change.update({"8": ("t-file", "targeted"), "9": ("t-file", "targeted")})
    assert_df_equality(
        spark.createDataFrame(
            bucket.read("normalized/customers", "id, request_id, replay_mode, is_deleted"),
            "id string, request_id string, replay_mode string, is_deleted boolean",
        ),
        spark.createDataFrame(
            [(i, *last_change[i], False) for i in VALID_IDS],
            "id string, request_id string, replay_mode string, is_deleted boolean",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    columns = ", ".join(CUSTOMER_SCHEMA.fieldNames())
    assert_df_equality(
        spark.createDataFrame(
            bucket.read("normalized/customers", columns, "id IN ('1', '2', '3')"), CUSTOMER_SCHEMA
        ).orderBy("id"),
        spark.createDataFrame(
            [
                ("1", "amira.smith1@example.org", "Amira", "Smith", "+31 20 555 0001",
                 "suspended", 4249, "153 Damrak", "c/o Reception", "Utrecht", "3511 AA", "NL",
                 datetime(2024, 5, 3, 19, 5, 42), datetime(2025, 3, 3, 0, 7, 13)),
                ("2", "aoife.obrien2@example.net", "Aoife", "O'Brien", "+353 1 555 0002",
                 "suspended", 1441, None, None, None, None, None,
                 datetime(2024, 8, 4, 7, 57, 25, 568000), datetime(2025, 2, 21, 8, 42, 52, 90000)),
                ("3", "liam.muller3@mail.example.com", "Liam", "Müller", "+44 20 7946 0003",
                 "active", 4000, "160 High Street", None, "London", "SW1A 1AA", "GB",
                 datetime(2023, 2, 28, 18, 48, 47), datetime(2023, 7, 21, 17, 53, 35)),
            ],
            CUSTOMER_SCHEMA,
        ),
        ignore_nullable=True,
    )  # fmt: skip
    assert_df_equality(
        spark.createDataFrame(
            bucket.read("normalized/customers", "id, updated_at", "id IN ('6', '7', '8', '9')"),
            "id string, updated_at timestamp",
        ),
        spark.createDataFrame(
            [("6", T(1 + 1 / 60)), ("7", T(1 + 1 / 60)),
             ("8", changed_at.replace(tzinfo=None)), ("9", changed_at.replace(tzinfo=None))],
            "id string, updated_at timestamp",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )  # fmt: skip

    # outbox: one event per record a request touched, none twice, however often it ran
    assert_df_equality(
        spark.createDataFrame(
            bucket.read("outbox/customers", "aggregate_id, event_type, request_id, replay_mode"),
            "aggregate_id string, event_type string, request_id string, replay_mode string",
        ),
        spark.createDataFrame(
            [(i, "customer.created", "full-1", "full") for i in VALID_IDS]
            + [(i, "customer.updated", r, m) for i, r, m in rows(*replays)],
            "aggregate_id string, event_type string, request_id string, replay_mode string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert bucket.read("outbox/customers", "count(*) - count(DISTINCT event_id)") == [(0,)]

    # the ledger: every run, its status, counts, missing ids and note
    ledger_columns = (
        "request_id string, stage string, run_id string, replay_mode string, status string, "
        "rows_read long, rows_written long, rows_unchanged long, rows_outboxed long, "
        "rows_quarantined long, missing_ids array<string>, note string"
    )
    select = ", ".join(column.split()[0] for column in ledger_columns.split(", "))
    ledger = [
        row
        for stage in ("ingest", "normalize")
        for row in bucket.read(f"runs/{stage}/customers", select)
    ]
    again = "request already succeeded in run jr_t1; nothing written"
    assert_df_equality(
        spark.createDataFrame(ledger, ledger_columns),
        spark.createDataFrame(
            [
                ("full-1", "ingest", "jr_full", "full", "succeeded", 60, 60, 0, 0, 0, [], None),
                ("full-1", "normalize", "jr_full", "full", "succeeded", 60, 57, 0, 57, 3, [], None),
                ("bau-1", "ingest", "jr_bau", "bau", "succeeded", 2, 2, 0, 0, 0, [], None),
                ("bau-1", "normalize", "jr_bau", "bau", "succeeded", 62, 2, 57, 2, 3, [], None),
                ("since-1", "ingest", "jr_since", "since", "succeeded", 5, 5, 0, 0, 0, [], None),
                ("since-1", "normalize", "jr_since", "since", "succeeded", 10, 0, 10, 5, 0, [],
                 None),
                ("t-ids", "ingest", "jr_t1", "targeted", "succeeded", 2, 2, 0, 0, 0, [], None),
                ("t-ids", "normalize", "jr_t1", "targeted", "succeeded", 4, 0, 4, 2, 0, [], None),
                ("t-ids", "ingest", "jr_t1_attempt_1", "targeted", "succeeded", 0, 0, 0, 0, 0, [],
                 again),
                ("t-ids", "normalize", "jr_t1_attempt_1", "targeted", "succeeded", 0, 0, 0, 0, 0,
                 [], again),
                ("t-file", "ingest", "jr_t2", "targeted", "succeeded", 2, 2, 0, 0, 0, ["999"],
                 None),
                # the killed attempt: its start row, marked abandoned by the next attempt
                ("t-file", "normalize", "jr_t2", "targeted", "abandoned", 0, 0, 0, 0, 0, [],
                 "abandoned: run jr_t2_attempt_1 of the same request started at "
                 f"{retried_at.isoformat()} while this attempt was still marked running"),
                ("t-file", "normalize", "jr_t2_attempt_1", "targeted", "succeeded", 4, 2, 2, 2, 0,
                 ["999"], None),
            ],
            ledger_columns,
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )  # fmt: skip


def _assert_written_over_tls_only(bucket: Bucket, server_log: Path) -> None:
    """Every object in the bucket was PUT through the endpoint, which speaks nothing but TLS, and
    no client tried plain HTTP on it (the server logs such an attempt: shown at the end)."""
    log = server_log.read_text()
    put = set(re.findall(rf'"PUT /{BUCKET}/(\S+) HTTP/1\.1" 200', log))
    keys = bucket.object_keys()
    assert {key for key in keys if key.startswith("wh/raw/customers/_delta_log/")}
    assert keys - {urllib.parse.unquote(key) for key in put} == set()
    assert "[SSL: HTTP_REQUEST]" not in log  # what plain HTTP on a TLS port logs (see below)

    plain = bucket.endpoint.url.replace("https://", "http://")
    put_plain = urllib.request.Request(f"{plain}/{BUCKET}/plain.txt", data=b"x", method="PUT")
    with pytest.raises(OSError):  # noqa: PT011 - refused at the connection, whatever the error
        urllib.request.urlopen(put_plain, timeout=10)
    assert "plain.txt" not in bucket.object_keys()
    deadline = time.monotonic() + 10
    while "[SSL: HTTP_REQUEST]" not in server_log.read_text():
        # tests/moto_launcher.py shakes hands in each connection's thread, which logs this
        assert time.monotonic() < deadline, "moto_server did not log a plain HTTP attempt"
        time.sleep(0.2)
