"""A job's argv, as Glue builds it: our arguments, Glue's own, and near misses of ours.

Table-driven: every near miss of one of our arguments is refused with exit 2 and a "did you
mean" naming the real one, before Spark starts (the job entry point returns before any session
exists: none is passed in and none is built); every argument of Glue's own, with or without a
value, leaves the request exactly as if it were absent.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from glue_replay import run_ingest_job, run_normalize_job
from glue_replay.arguments import (
    GLUE_OWN_ARGUMENTS,
    MaintenanceArguments,
    job_fields,
    near_miss,
    parse_job_arguments,
    parse_maintenance_arguments,
)
from glue_replay.request import JobArguments, ReplayMode, ReplayRequest
from glue_replay_examples.customers import PIPELINE

TODAY = date(2026, 11, 27)


def parse(*args: str) -> JobArguments:
    return parse_job_arguments(
        ["glue_jobs/ingest_customers.py", *args],
        ids=PIPELINE.entity.ids,
        today=TODAY,
        environ={"USER": "tester"},
    )


@pytest.mark.parametrize(
    ("args", "meant"),
    [
        pytest.param(["--replay-mode", "full"], "replay_mode", id="hyphen-for-underscore"),
        pytest.param(["--Replay_Mode", "full"], "replay_mode", id="wrong-case"),
        pytest.param(["--REPLAY-MODE", "full"], "replay_mode", id="upper-case-hyphen"),
        pytest.param(["--replaymode", "full"], "replay_mode", id="underscore-dropped"),
        pytest.param(["--replay", "full"], "replay_mode", id="prefix-as-glue-resolves"),
        pytest.param(["--replay_mod", "full"], "replay_mode", id="prefix-one-short"),
        pytest.param(["--repaly_mode", "full"], "replay_mode", id="transposed-letters"),
        pytest.param(["--replay_modes", "full"], "replay_mode", id="extra-letter"),
        pytest.param(["--replay_mode=full", "--dryrun", "true"], "dry_run", id="dryrun"),
        pytest.param(["--replay_mode=full", "--dry-run", "true"], "dry_run", id="dry-run"),
        pytest.param(["--replay_mode=full", "--Dry_Run=true"], "dry_run", id="dry-run-equals"),
        pytest.param(
            ["--replay_mode", "targeted", "--ids-file", "x.csv"], "ids_file", id="ids-file"
        ),
        pytest.param(["--replay_mode", "targeted", "--Ids", "1"], "ids", id="ids-wrong-case"),
        pytest.param(["--replay_mode", "targeted", "--id", "1"], "ids", id="id-for-ids"),
        pytest.param(["--replay_mode", "since", "--Date", "2026-01-01"], "date", id="date-case"),
        pytest.param(["--replay_mode", "since", "--data", "2026-01-01"], "date", id="date-typo"),
        pytest.param(["--untill", "2026-02-01"], "until", id="until-typo"),
        pytest.param(["--request-id", "r-1"], "request_id", id="request-id"),
        pytest.param(["--requestid", "r-1"], "request_id", id="requestid"),
        pytest.param(["--warehose", "/tmp/wh"], "warehouse", id="setting-typo"),
        pytest.param(["--source-url", "http://x"], "source_url", id="setting-hyphen"),
        pytest.param(["--since", "2026-11-01"], "date", id="since-for-date"),
        pytest.param(["--to=2026-11-02"], "until", id="to-for-until"),
        pytest.param(["--id", "42"], "ids", id="id-for-ids"),
    ],
)
def test_a_near_miss_of_our_argument_is_refused_with_did_you_mean(
    args: list[str], meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    given = args[-2] if "=" not in args[-1] else args[-1].split("=")[0]
    assert run_ingest_job(["glue_jobs/ingest_customers.py", *args], PIPELINE) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"ingest_customers: invalid request: --{meant}: {given} is not an argument of this job; "
        f"did you mean --{meant}?; accepted: " + ", ".join(f"--{name}" for name in job_fields())
    ]


@pytest.mark.parametrize(
    "glue_args",
    [
        pytest.param(["--JOB_NAME"], id="job-name-without-value"),
        pytest.param(["--JOB_NAME", "--JOB_RUN_ID"], id="two-valueless"),
        pytest.param(["--JOB_ID", "j_1", "--JOB_RUN_ID"], id="job-run-id-without-value"),
        pytest.param(["--WORKFLOW_NAME"], id="workflow-name-without-value"),
        pytest.param(["--WORKFLOW_RUN_ID="], id="workflow-run-id-empty"),
        pytest.param(["--mode"], id="glue-mode-without-value"),
        pytest.param(["--mode", "streaming"], id="glue-mode-other-value"),
        pytest.param(["--mode=bookmark"], id="glue-mode-equals"),
        pytest.param(["--enable-metrics"], id="enable-metrics-without-value"),
        pytest.param(["--enable-metrics", "true"], id="enable-metrics"),
        pytest.param(["--job-bookmark-option"], id="bookmark-option-without-value"),
        pytest.param(["--job-bookmark-option", "job-bookmark-disable"], id="bookmark-option"),
        pytest.param(["--TempDir", "s3://tmp/x/"], id="temp-dir"),
        pytest.param(["--TempDir"], id="temp-dir-without-value"),
        pytest.param(["--enable-continuous-cloudwatch-log", "true"], id="continuous-log"),
        pytest.param(["--enable-glue-datacatalog"], id="datacatalog-without-value"),
        pytest.param(["--continuous-log-logGroup", "/aws-glue/jobs"], id="log-group"),
        pytest.param(["--extra-py-files", "s3://a/b.py"], id="extra-py-files"),
        pytest.param(["--additional-python-modules", "s3://a/w.whl"], id="python-modules"),
        pytest.param(["--datalake-formats", "delta"], id="datalake-formats"),
        pytest.param(["--conf", "spark.x=1 --conf spark.y=2"], id="conf"),
        pytest.param(["--enable-spark-ui", "true", "--spark-event-logs-path", "s3://l/"], id="ui"),
        pytest.param(["--scriptLocation", "s3://a/job.py"], id="script-location"),
        pytest.param(["--some-team-flag", "x"], id="an-unrelated-argument"),
    ],
)
def test_glue_arguments_with_or_without_value_never_change_the_request(
    glue_args: list[str],
) -> None:
    before = ["--request_id", "r-1"]
    after = ["--warehouse", "/tmp/wh"]
    parsed = parse(*before, *glue_args, *after)
    assert parsed.request == ReplayRequest(mode=ReplayMode.BAU, request_id="r-1")
    assert parsed.warehouse == "/tmp/wh"


def test_glue_arguments_with_or_without_value_keep_a_replay() -> None:
    parsed = parse("--JOB_NAME", "--replay_mode", "targeted", "--enable-metrics", "--ids", "7")
    assert parsed.request == ReplayRequest(
        mode=ReplayMode.TARGETED, request_id=parsed.request.request_id, ids=("7",)
    )


@pytest.mark.parametrize("mode", ["full", "since", "targeted", "FULL"])
def test_glue_reserved_mode_with_a_replay_value_names_replay_mode(
    mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["glue_jobs/normalize_customers.py", "--JOB_NAME", "--mode", mode]
    assert run_normalize_job(argv, PIPELINE) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"normalize_customers: invalid request: --replay_mode: --mode {mode.lower()} was given, "
        f"but --mode is reserved by AWS Glue; accepted: --replay_mode {mode.lower()}"
    ]


def test_no_glue_argument_is_a_near_miss_of_ours() -> None:
    assert [name for name in sorted(GLUE_OWN_ARGUMENTS) if near_miss(name, job_fields())] == []


def test_a_maintenance_run_takes_its_own_arguments_and_no_request() -> None:
    job = "glue_jobs/normalize_customers.py"
    assert parse_maintenance_arguments([job, "--replay_mode", "full"]) is None
    assert parse_maintenance_arguments([job, "--maintenance", "false"]) is None
    assert parse_maintenance_arguments(
        [job, "--JOB_NAME", "j", "--maintenance", "TRUE", "--warehouse", "s3://lake/wh"]
    ) == MaintenanceArguments("s3://lake/wh", None)
    assert parse_maintenance_arguments(
        [job, "--maintenance=true", "--vacuum_retention_days", "30"]
    ) == MaintenanceArguments("./warehouse", timedelta(days=30))


@pytest.mark.parametrize(
    ("args", "line"),
    [
        pytest.param(
            ["--maintenance", "true", "--replay_mode", "full"],
            "--replay_mode: a maintenance run (--maintenance true) takes no request; accepted: "
            "--maintenance true [--vacuum_retention_days N] and deployment settings",
            id="with-a-replay",
        ),
        pytest.param(
            ["--maintenance", "true", "--dry_run", "false"],
            "--dry_run: a maintenance run (--maintenance true) takes no request; accepted: "
            "--maintenance true [--vacuum_retention_days N] and deployment settings",
            id="with-dry-run",
        ),
        pytest.param(
            ["--maintenance", "yes"],
            "--maintenance: 'yes' is not a boolean; accepted: true or false",
            id="not-a-boolean",
        ),
        pytest.param(
            ["--vacuum_retention_days", "30"],
            "--vacuum_retention_days: is only for a maintenance run; accepted: --maintenance true",
            id="retention-without-maintenance",
        ),
        pytest.param(
            ["--maintenance", "true", "--vacuum_retention_days", "6"],
            "--vacuum_retention_days: '6' is not a number of days VACUUM may keep; accepted: "
            "a whole number of days, at least 7",
            id="retention-too-short",
        ),
        pytest.param(
            ["--maintainance", "true"],
            "--maintenance: --maintainance is not an argument of this job; did you mean "
            "--maintenance?; accepted: " + ", ".join(f"--{name}" for name in job_fields()),
            id="near-miss",
        ),
    ],
)
def test_a_bad_maintenance_run_is_refused_before_spark_starts(
    args: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_normalize_job(["glue_jobs/normalize_customers.py", *args], PIPELINE) == 2
    assert capsys.readouterr().err.splitlines() == [f"normalize_customers: invalid request: {line}"]
