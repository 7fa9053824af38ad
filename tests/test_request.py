"""The replay request: argument resolution, parsing and validation (DESIGN §4, §6). No Spark.

Every result is spelled out: the parser gets ``today`` and the run/request ids explicitly, so a
whole :class:`JobArguments` or :class:`ReplayRequest` can be compared with ``==``.
"""

from __future__ import annotations

import json
import pickle
import re
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from glue_replay.arguments import fields_from_argv, job_fields, parse_job_arguments
from glue_replay.errors import GlueReplayError, InvalidRequestError, job_spelling, render
from glue_replay.request import (
    DEFAULT_IDS,
    GLUE_CONTEXT_FIELDS,
    IDS_FILE_ACCEPTED,
    IdRule,
    JobArguments,
    ReplayMode,
    ReplayRequest,
    ids_from_text,
    parse_ids,
    read_ids_file,
)

DEFAULT_ID_PATTERN_HELP = DEFAULT_IDS.help
JOB_ARGUMENTS = (*job_fields(), *GLUE_CONTEXT_FIELDS)


def resolve_options(argv: list[str], names: tuple[str, ...]) -> dict[str, str]:
    return fields_from_argv(argv, names)


TODAY = date(2026, 11, 27)
#: What Glue itself puts in sys.argv around the job's own arguments.
GLUE_ARGS = (
    "--JOB_NAME",
    "normalize",
    "--JOB_RUN_ID",
    "jr_0a1b2c",
    "--TempDir",
    "s3://aws-glue-assets/temporary/",
    "--job-bookmark-option",
    "job-bookmark-disable",
    "--enable-metrics",
    "true",
)


def parse(*args: str, **kwargs: object) -> JobArguments:
    """``parse_job_arguments`` as a job sees it, on a fixed day, run by ``tester``."""
    return parse_job_arguments(
        ["glue_jobs/normalize_customers.py", *args],
        today=TODAY,
        environ={"USER": "tester"},
        **kwargs,  # type: ignore[arg-type]
    )


def job(request: ReplayRequest, **overrides: str) -> JobArguments:
    """The JobArguments that ``parse(*GLUE_ARGS, ...)`` yields for ``request``."""
    fields = {
        "warehouse": "./warehouse",
        "source_url": "http://127.0.0.1:8765",
        "job_name": "normalize",
        "run_id": "jr_0a1b2c",
        "requested_by": "tester",
        **overrides,
    }
    return JobArguments(request=request, **fields)


def refusal(error: pytest.ExceptionInfo[InvalidRequestError]) -> tuple[str, str, str]:
    exc = error.value
    return (
        job_spelling(exc.field),
        render(exc.problem, job_spelling),
        render(exc.accepted, job_spelling),
    )


# -- resolve_options: getResolvedOptions semantics ---------------------------------------------


def test_resolve_options_skips_unknown_arguments_with_their_values() -> None:
    argv = [
        "--job-bookmark-option",
        "job-bookmark-disable",
        "--replay_mode",
        "since",
        "--enable-metrics",
        "true",
        "--TempDir",
        "s3://x",
        "--date",
        "2026-01-01",
        "--JOB_NAME",
        "normalize",
        "stray-positional",
        "--enable-glue-datacatalog",
    ]

    assert resolve_options(argv, JOB_ARGUMENTS) == {
        "replay_mode": "since",
        "date": "2026-01-01",
        "JOB_NAME": "normalize",
    }


def test_resolve_options_reads_name_equals_value() -> None:
    argv = ["--replay_mode=targeted", "--ids=a=1,b", "--date=", "--dry_run", "true"]

    assert resolve_options(argv, JOB_ARGUMENTS) == {
        "replay_mode": "targeted",
        "ids": "a=1,b",
        "date": "",
        "dry_run": "true",
    }


def test_resolve_options_last_occurrence_wins() -> None:
    argv = ["--replay_mode", "full", "--ids", "1", "--replay_mode=since", "--ids", "2"]

    assert resolve_options(argv, JOB_ARGUMENTS) == {"replay_mode": "since", "ids": "2"}


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--replay_mode", "since", "--date"], id="last-token"),
        pytest.param(["--date", "--until", "2026-02-01"], id="followed-by-an-option"),
    ],
)
def test_resolve_options_refuses_a_known_option_without_value(argv: list[str]) -> None:
    with pytest.raises(InvalidRequestError) as error:
        resolve_options(argv, JOB_ARGUMENTS)

    assert refusal(error) == ("--date", "given without a value", "--name value")


def test_an_unknown_option_without_value_is_ignored() -> None:
    assert resolve_options(["--enable-glue-datacatalog"], JOB_ARGUMENTS) == {}


# -- modes ---------------------------------------------------------------------------------------


def test_no_replay_mode_is_the_bau_run() -> None:
    assert parse(*GLUE_ARGS) == job(ReplayRequest(mode=ReplayMode.BAU, request_id="jr_0a1b2c"))


@pytest.mark.parametrize("value", ["bau", "BAU", " bau "])
def test_replay_mode_bau_is_accepted_explicitly(value: str) -> None:
    assert parse(*GLUE_ARGS, "--replay_mode", value) == job(
        ReplayRequest(mode=ReplayMode.BAU, request_id="jr_0a1b2c")
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["--replay_mode", "full"],
            ReplayRequest(mode=ReplayMode.FULL, request_id="req-1"),
            id="full",
        ),
        pytest.param(
            ["--replay_mode", "Full", "--dry_run", "TRUE"],
            ReplayRequest(mode=ReplayMode.FULL, request_id="req-1", dry_run=True),
            id="full-dry-run",
        ),
        pytest.param(
            ["--replay_mode", "since", "--date", "2026-01-01"],
            ReplayRequest(mode=ReplayMode.SINCE, request_id="req-1", since=date(2026, 1, 1)),
            id="since",
        ),
        pytest.param(
            ["--replay_mode", "since", "--date", "2026-11-27"],
            ReplayRequest(mode=ReplayMode.SINCE, request_id="req-1", since=date(2026, 11, 27)),
            id="since-today",
        ),
        pytest.param(
            ["--replay_mode", "since", "--date", "2026-01-01", "--until", "2026-01-02"],
            ReplayRequest(
                mode=ReplayMode.SINCE,
                request_id="req-1",
                since=date(2026, 1, 1),
                until=date(2026, 1, 2),
            ),
            id="since-until",
        ),
        pytest.param(
            ["--replay_mode", "since", "--date", "2026-11-01", "--until", "2027-01-01"],
            ReplayRequest(
                mode=ReplayMode.SINCE,
                request_id="req-1",
                since=date(2026, 11, 1),
                until=date(2027, 1, 1),
            ),
            id="since-until-in-the-future",
        ),
        pytest.param(
            ["--replay_mode", "targeted", "--ids", " 7, 3 ,7,,C-9 ", "--dry_run", "false"],
            ReplayRequest(mode=ReplayMode.TARGETED, request_id="req-1", ids=("7", "3", "C-9")),
            id="targeted",
        ),
    ],
)
def test_each_mode_parses_to_its_request(args: list[str], expected: ReplayRequest) -> None:
    assert parse(*GLUE_ARGS, "--request_id", "req-1", *args) == job(expected)


def test_locations_and_requester_are_normalized() -> None:
    parsed = parse(
        *GLUE_ARGS,
        "--warehouse",
        "s3://lake-bucket/glue-replay/",
        "--source_url",
        "https://api.example.com/v1/",
        "--requested_by",
        "arn:aws:iam::123456789012:role/operator",
    )

    assert parsed == job(
        ReplayRequest(mode=ReplayMode.BAU, request_id="jr_0a1b2c"),
        warehouse="s3://lake-bucket/glue-replay",
        source_url="https://api.example.com/v1",
        requested_by="arn:aws:iam::123456789012:role/operator",
    )


@pytest.mark.parametrize(
    ("warehouse", "expected"),
    [
        ("/data/warehouse/", "/data/warehouse"),
        ("relative/wh", "relative/wh"),
        ("file:///data/wh", "file:///data/wh"),
        ("s3a://lake-bucket", "s3a://lake-bucket"),
    ],
)
def test_warehouse_forms(warehouse: str, expected: str) -> None:
    assert parse("--warehouse", warehouse).warehouse == expected


def test_ids_are_trimmed_and_deduplicated_in_order() -> None:
    assert parse_ids(" b, a ,b,, c ,a") == ("b", "a", "c")


def test_ids_accept_every_safe_shape() -> None:
    ids = "42,9f1c2d3e-0b7a-4c5d-8e9f-001122334455,CUST_0001,acme:eu.7,a+b@x-y"

    assert parse_ids(ids) == (
        "42",
        "9f1c2d3e-0b7a-4c5d-8e9f-001122334455",
        "CUST_0001",
        "acme:eu.7",
        "a+b@x-y",
    )


@pytest.mark.parametrize("unsafe", ["1;DROP TABLE x", "O'Brien", 'a"b', "a/b", "a b", "-1", "é"])
def test_unsafe_ids_are_refused_by_name(unsafe: str) -> None:
    with pytest.raises(InvalidRequestError) as error:
        parse("--replay_mode", "targeted", "--ids", f"1,{unsafe}")

    assert refusal(error) == ("--ids", f"{unsafe!r} is not a valid id", DEFAULT_ID_PATTERN_HELP)


# -- request id ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_run_id", "request_id"),
    [
        ("jr_0a1b2c", "jr_0a1b2c"),
        ("jr_0a1b2c_attempt_1", "jr_0a1b2c"),
        ("jr_0a1b2c_attempt_12", "jr_0a1b2c"),
    ],
)
def test_request_id_comes_from_the_job_run_id_across_glue_retries(
    job_run_id: str, request_id: str
) -> None:
    parsed = parse("--JOB_NAME", "normalize", "--JOB_RUN_ID", job_run_id, "--replay_mode", "full")

    assert parsed == job(
        ReplayRequest(mode=ReplayMode.FULL, request_id=request_id), run_id=job_run_id
    )


def test_explicit_request_id_wins_over_the_job_run_id() -> None:
    parsed = parse(*GLUE_ARGS, "--JOB_RUN_ID", "jr_0a1b2c_attempt_2", "--request_id", "req-7")

    assert parsed == job(
        ReplayRequest(mode=ReplayMode.BAU, request_id="req-7"), run_id="jr_0a1b2c_attempt_2"
    )


def test_a_local_run_gets_fresh_ids() -> None:
    first, second = parse(), parse()

    assert re.fullmatch(r"[0-9a-f]{32}", first.request.request_id)
    assert re.fullmatch(r"local-[0-9a-f]{12}", first.run_id)
    assert first.request.request_id != second.request.request_id
    assert first.run_id != second.run_id


# -- empty values and the --mode rule ------------------------------------------------------------


def test_empty_values_count_as_absent() -> None:
    parsed = parse(
        *GLUE_ARGS,
        "--replay_mode",
        "",
        "--date",
        " ",
        "--until=",
        "--ids",
        "",
        "--ids_file",
        "",
        "--dry_run",
        "",
        "--warehouse",
        "",
        "--source_url",
        "",
        "--request_id",
        "",
        "--requested_by",
        "",
    )

    assert parsed == job(ReplayRequest(mode=ReplayMode.BAU, request_id="jr_0a1b2c"))


@pytest.mark.parametrize(
    ("args", "mode"),
    [
        (["--mode", "full"], "full"),
        (["--mode", "since", "--date", "2026-01-01"], "since"),
        (["--mode", "targeted", "--ids", "1,2"], "targeted"),
        (["--mode", "FULL"], "full"),
        (["--mode", "full", "--replay_mode", ""], "full"),
    ],
)
def test_glue_reserved_mode_with_a_replay_value_names_replay_mode(
    args: list[str], mode: str
) -> None:
    with pytest.raises(InvalidRequestError) as error:
        parse(*GLUE_ARGS, *args)

    assert refusal(error) == (
        "--replay_mode",
        f"--mode {mode} was given, but --mode is reserved by AWS Glue",
        f"--replay_mode {mode}",
    )
    assert str(error.value).startswith("--replay_mode: ")


@pytest.mark.parametrize("glue_value", ["bookmark", "streaming", "bau"])
def test_glue_reserved_mode_with_another_value_is_ignored(glue_value: str) -> None:
    assert parse(*GLUE_ARGS, "--mode", glue_value) == job(
        ReplayRequest(mode=ReplayMode.BAU, request_id="jr_0a1b2c")
    )


def test_replay_mode_wins_over_glue_reserved_mode() -> None:
    parsed = parse(*GLUE_ARGS, "--mode", "full", "--replay_mode", "since", "--date", "2026-03-01")

    assert parsed == job(
        ReplayRequest(mode=ReplayMode.SINCE, request_id="jr_0a1b2c", since=date(2026, 3, 1))
    )


# -- window messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["--replay_mode", "weekly"],
            (
                "--replay_mode",
                "'weekly' is not a replay mode",
                "full, since or targeted (omit --replay_mode for the BAU run)",
            ),
            id="unknown-mode",
        ),
        pytest.param(
            ["--replay_mode", "since", "--date", "2026-11-28"],
            (
                "--date",
                "2026-11-28 is in the future (today is 2026-11-27 UTC)",
                "a date on or before today",
            ),
            id="tomorrow",
        ),
        pytest.param(
            ["--replay_mode", "since", "--date", "2026-02-30"],
            (
                "--date",
                "'2026-02-30' is not a calendar date",
                "a UTC date YYYY-MM-DD, e.g. 2026-01-31",
            ),
            id="impossible-date",
        ),
        pytest.param(
            ["--replay_mode", "since", "--date", "2026-01-01", "--until", "20260201"],
            ("--until", "'20260201' is not a date", "a UTC date YYYY-MM-DD, e.g. 2026-01-31"),
            id="until-malformed",
        ),
        pytest.param(
            ["--replay_mode", "since", "--date", "2026-02-01", "--until", "2026-01-31"],
            (
                "--until",
                "2026-01-31 is not after --date 2026-02-01",
                "a date after --date (the window is [date, until))",
            ),
            id="until-before-date",
        ),
        pytest.param(
            ["--replay_mode", "targeted", "--ids", "1", "--date", "2026-01-01"],
            (
                "--date",
                "is only valid with --replay_mode since (mode is targeted)",
                "--replay_mode since --date YYYY-MM-DD, or no --date",
            ),
            id="date-with-targeted",
        ),
    ],
)
def test_refusals_say_what_was_seen_and_what_is_accepted(
    args: list[str], expected: tuple[str, str, str]
) -> None:
    with pytest.raises(InvalidRequestError) as error:
        parse(*args)

    assert refusal(error) == expected


def test_window_as_utc_instants() -> None:
    request = parse(
        "--replay_mode", "since", "--date", "2026-01-01", "--until", "2026-02-01"
    ).request

    assert (request.since_start, request.until_end) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
    )
    assert request.describe() == "since 2026-01-01 until 2026-02-01"


# -- ids files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "ids"),
    [
        pytest.param(
            b"name,id,email\nAnn,C-1,ann@example.com\nBob,C-2,bob@example.com\n"
            b"Ann again,C-1,ann2@example.com\n",
            ("C-1", "C-2"),
            id="csv-id-among-columns",
        ),
        pytest.param(
            b'"Name","id"\n"Lee, Ann","42"\n"Bob","7"\n',
            ("42", "7"),
            id="quoted-csv-header",
        ),
        # Never guessed to be a header: a first line that is not exactly "id" is an id.
        pytest.param(
            b"customer_id\n101\n102\n",
            ("customer_id", "101", "102"),
            id="a-first-line-other-than-id-is-an-id",
        ),
        pytest.param(b"id\n101\n102", ("101", "102"), id="id-header-no-final-newline"),
        pytest.param(b"C-1\nC-2\n", ("C-1", "C-2"), id="plain-list"),
        pytest.param(b"7\n3\n", ("7", "3"), id="plain-numeric-list"),
        pytest.param(b"\xef\xbb\xbfid\r\n1\r\n2\r\n", ("1", "2"), id="bom-crlf-header"),
        pytest.param(b"\xef\xbb\xbf5\r\n6\r\n", ("5", "6"), id="bom-crlf-plain-list"),
        pytest.param(b"id\r1\r2\r", ("1", "2"), id="bare-cr"),
        pytest.param(
            b"id\n\n 1 \n   \n2\n1\n\n2\n\n", ("1", "2"), id="blank-lines-spaces-duplicates"
        ),
    ],
)
def test_ids_file_formats(tmp_path: Path, content: bytes, ids: tuple[str, ...]) -> None:
    path = tmp_path / "ids.csv"
    path.write_bytes(content)

    parsed = parse(*GLUE_ARGS, "--replay_mode", "targeted", "--ids_file", str(path))

    assert parsed == job(
        ReplayRequest(mode=ReplayMode.TARGETED, request_id="jr_0a1b2c", ids=ids, ids_file=str(path))
    )
    assert parsed.request.describe() == f"targeted ({len(ids)} ids from {path})"


def test_ids_file_bad_id_names_the_file_row(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    # Row 5 of the file, the blank line 3 included: what an editor shows.
    path.write_text("id\n1\n\n2\nx;DROP TABLE customers\n3\n")

    with pytest.raises(InvalidRequestError) as error:
        parse("--replay_mode", "targeted", "--ids_file", str(path))

    assert refusal(error) == (
        "--ids_file",
        f"{path} row 5: 'x;DROP TABLE customers' is not a valid id",
        DEFAULT_ID_PATTERN_HELP,
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(b"", "no ids in {path}", id="empty"),
        pytest.param(b"\n \n\r\n", "no ids in {path}", id="blank-lines-only"),
        pytest.param(b"id\n", "no ids in {path}", id="header-only"),
        pytest.param(b"id,name\n,Ann\n ,Bob\n", "no ids in {path}", id="id-column-empty"),
        pytest.param(
            b"name,email\nAnn,ann@example.com\n",
            "{path} has no 'id' column (header: name, email)",
            id="no-id-column",
        ),
        pytest.param(b"\xff\xfe1\x002\x00", "{path} is not UTF-8 text", id="utf-16-not-utf-8"),
        pytest.param(
            b"x" * 200_000 + b"\n",
            "{path} is not a readable CSV (field larger than field limit (131072))",
            id="not-a-csv",
        ),
    ],
)
def test_ids_file_without_usable_ids_is_refused(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "ids.csv"
    path.write_bytes(content)

    with pytest.raises(InvalidRequestError) as error:
        parse("--replay_mode", "targeted", "--ids_file", str(path))

    accepted = "a UTF-8 CSV or text file" if "UTF-8" in problem else IDS_FILE_ACCEPTED
    if "column" in problem:
        accepted += " (name the column with --id_column)"
    assert refusal(error) == ("--ids_file", problem.format(path=path), accepted)


def test_missing_ids_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"

    with pytest.raises(InvalidRequestError) as error:
        parse("--replay_mode", "targeted", "--ids_file", str(missing))

    assert refusal(error) == (
        "--ids_file",
        f"no such file {str(missing)!r}",
        "a readable local path or s3:// URI",
    )


def test_ids_file_helpers_share_the_format(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("customer_id,name\nC-1,Ann\nC-2,Bob\n")

    assert read_ids_file(str(path), id_column="customer_id") == ("C-1", "C-2")
    assert ids_from_text("id,name\n9,Ann\n8,Bob\n9,Ann\n") == ("9", "8")
    assert ids_from_text("11\n12\n", ids=IdRule(r"\d+", "digits")) == ("11", "12")


def test_s3_ids_file_is_read_through_the_hook() -> None:
    calls: list[tuple[str, str]] = []

    def read_s3_object(bucket: str, key: str) -> bytes:
        calls.append((bucket, key))
        return b"\xef\xbb\xbfid,reason\r\nC-1,complaint\r\nC-2,audit\r\nC-1,again\r\n"

    uri = "s3://replay-requests/2026/11/27/ids.csv"
    parsed = parse(
        *GLUE_ARGS, "--replay_mode", "targeted", "--ids_file", uri, read_s3_object=read_s3_object
    )

    assert parsed == job(
        ReplayRequest(
            mode=ReplayMode.TARGETED, request_id="jr_0a1b2c", ids=("C-1", "C-2"), ids_file=uri
        )
    )
    assert calls == [("replay-requests", "2026/11/27/ids.csv")]


@pytest.mark.parametrize("uri", ["s3://replay-requests", "s3://replay-requests/", "s3://A_B/x"])
def test_s3_ids_file_needs_an_object_uri(uri: str) -> None:
    def read_s3_object(bucket: str, key: str) -> bytes:
        raise AssertionError(f"read s3://{bucket}/{key}")

    with pytest.raises(InvalidRequestError) as error:
        parse("--replay_mode", "targeted", "--ids_file", uri, read_s3_object=read_s3_object)

    assert refusal(error) == (
        "--ids_file",
        f"{uri!r} is not an S3 object URI",
        "s3://bucket/key.csv",
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and a region for moto; no real profile or config file is read."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")


@pytest.mark.usefixtures("aws")
def test_s3_ids_file_through_boto3() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(
            Bucket="replay-requests",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
        s3.put_object(
            Bucket="replay-requests",
            Key="2026/11/27/ids.csv",
            Body=b"\xef\xbb\xbfcustomer_id\r\n101\r\n\r\n102\r\n101\r\n",
        )
        uri = "s3://replay-requests/2026/11/27/ids.csv"

        parsed = parse(
            *GLUE_ARGS,
            "--replay_mode",
            "targeted",
            "--ids_file",
            uri,
            "--id_column",
            "customer_id",
        )

        assert parsed == job(
            ReplayRequest(
                mode=ReplayMode.TARGETED,
                request_id="jr_0a1b2c",
                ids=("101", "102"),
                ids_file=uri,
            )
        )

        for missing, code in [
            ("s3://replay-requests/2026/11/27/missing.csv", "NoSuchKey"),
            ("s3://no-such-bucket/ids.csv", "NoSuchBucket"),
        ]:
            with pytest.raises(InvalidRequestError) as error:
                parse("--replay_mode", "targeted", "--ids_file", missing)
            assert refusal(error) == (
                "--ids_file",
                f"cannot read {missing} ({code})",
                "a readable s3:// object",
            )


# -- fingerprint and ledger ----------------------------------------------------------------------


def test_fingerprint_identifies_the_selection(tmp_path: Path) -> None:
    ids_file = tmp_path / "ids.csv"
    ids_file.write_text("id\n3\n1\n2\n")
    targeted = parse("--replay_mode", "targeted", "--ids", "1,2,3", "--request_id", "r-1")
    same_selections = [
        parse("--replay_mode", "targeted", "--ids", " 3,2,1,2 ", "--request_id", "r-2"),
        parse("--replay_mode", "targeted", "--ids_file", str(ids_file), "--dry_run", "true"),
    ]
    other_selections = [
        parse("--replay_mode", "targeted", "--ids", "1,2"),
        parse("--replay_mode", "targeted", "--ids", "1,2,4"),
        parse("--replay_mode", "full"),
        parse(),
        parse("--replay_mode", "since", "--date", "2026-01-01"),
        parse("--replay_mode", "since", "--date", "2026-01-01", "--until", "2026-02-01"),
    ]

    # Pinned: fingerprints are stored in the runs ledger, so their form must not drift.
    assert targeted.request.fingerprint() == (
        "1cecd177585a508dcd97aa4bffaffeaf64db54c66d907bb9a2a43d86adb9bf20"
    )
    assert [a.request.fingerprint() for a in same_selections] == [
        targeted.request.fingerprint()
    ] * 2
    fingerprints = {a.request.fingerprint() for a in [targeted, *other_selections]}
    assert len(fingerprints) == 1 + len(other_selections)


def test_ledger_arguments_cap_the_ids_and_hold_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLUE_REPLAY_SOURCE_TOKEN", "tok-SECRET-123")
    ids = ",".join(str(n) for n in range(1, 26))
    parsed = parse(
        *GLUE_ARGS,
        "--replay_mode",
        "targeted",
        "--ids",
        ids,
        "--warehouse",
        "s3://lake-bucket/prod",
        "--source_url",
        "https://api.example.com/v1",
    )

    ledger = parsed.for_ledger()

    assert json.loads(ledger) == {
        "replay_mode": "targeted",
        "date": None,
        "until": None,
        "ids": [str(n) for n in range(1, 21)],
        "ids_file": None,
        "id_count": 25,
        "dry_run": False,
        "warehouse": "s3://lake-bucket/prod",
        "source_url": "https://api.example.com/v1",
        "job_name": "normalize",
    }
    assert "SECRET" not in ledger


def test_ledger_arguments_of_an_ids_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id\n" + "\n".join(str(n) for n in range(1000)) + "\n")

    parsed = parse("--replay_mode", "targeted", "--ids_file", str(path), "--dry_run", "true")

    assert json.loads(parsed.for_ledger()) == {
        "replay_mode": "targeted",
        "date": None,
        "until": None,
        "ids": None,
        "ids_file": str(path),
        "id_count": 1000,
        "dry_run": True,
        "warehouse": "./warehouse",
        "source_url": "http://127.0.0.1:8765",
        "job_name": "local",
    }


# -- source URL ----------------------------------------------------------------------------------

CREDENTIALS_REFUSAL = (
    "--source_url",
    "contains credentials, which must not travel in job arguments",
    "a URL without user:password (keep the token in Secrets Manager)",
)
SOURCE_URL_ACCEPTED = "http(s)://host[:port][/path], without credentials, query or fragment"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("http://user:pw-SECRET@host:8765", CREDENTIALS_REFUSAL, id="user-password"),
        pytest.param("https://:pw-SECRET@api.example.com/v1", CREDENTIALS_REFUSAL, id="password"),
        pytest.param("https://pw-SECRET@api.example.com", CREDENTIALS_REFUSAL, id="token-as-user"),
        pytest.param("ftp://user:pw-SECRET@host", CREDENTIALS_REFUSAL, id="other-scheme"),
        pytest.param("http://user:pw-SECRET@", CREDENTIALS_REFUSAL, id="no-host"),
        pytest.param(
            "http://user:pw-SECRET@[::1",
            (
                "--source_url",
                "the value (not shown: it may hold credentials) is not a URL",
                SOURCE_URL_ACCEPTED,
            ),
            id="unparseable",
        ),
        pytest.param(
            "user:pw-SECRET@host",
            (
                "--source_url",
                "the value (not shown: it may hold credentials) is not an HTTP URL",
                SOURCE_URL_ACCEPTED,
            ),
            id="no-scheme",
        ),
        pytest.param(
            "https://api.example.com/v1?api_key=pw-SECRET",
            (
                "--source_url",
                "has a query or fragment (not shown: it may hold a token)",
                SOURCE_URL_ACCEPTED,
            ),
            id="token-in-query",
        ),
    ],
)
def test_source_url_with_a_secret_is_refused_without_echoing_it(
    url: str, expected: tuple[str, str, str]
) -> None:
    with pytest.raises(InvalidRequestError) as error:
        parse("--source_url", url)

    assert refusal(error) == expected
    assert "SECRET" not in str(error.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("localhost:8765", "'localhost:8765' is not an HTTP URL"),
        ("http://", "'http://' is not an HTTP URL"),
        ("file:///etc/passwd", "'file:///etc/passwd' is not an HTTP URL"),
        ("http://127.0.0.1:99999", "'http://127.0.0.1:99999' is not a URL"),
    ],
)
def test_source_url_must_be_an_http_url(url: str, problem: str) -> None:
    with pytest.raises(InvalidRequestError) as error:
        parse("--source_url", url)

    assert refusal(error) == ("--source_url", problem, SOURCE_URL_ACCEPTED)


def test_source_url_may_have_an_at_sign_in_its_path() -> None:
    assert parse("--source_url", "http://127.0.0.1:8765/api/@v2/").source_url == (
        "http://127.0.0.1:8765/api/@v2"
    )


# -- the error itself ----------------------------------------------------------------------------


def test_invalid_request_error_pickles() -> None:
    with pytest.raises(InvalidRequestError) as error:
        parse("--replay_mode", "since", "--date", "2026-13-01")

    copy = pickle.loads(pickle.dumps(error.value))  # noqa: S301 - our own bytes

    assert type(copy) is InvalidRequestError
    assert isinstance(copy, GlueReplayError)
    assert (copy.field, copy.problem, copy.accepted) == (
        "date",
        "'2026-13-01' is not a calendar date",
        "a UTC date YYYY-MM-DD, e.g. 2026-01-31",
    )
    assert str(copy) == (
        "--date: '2026-13-01' is not a calendar date; "
        "accepted: a UTC date YYYY-MM-DD, e.g. 2026-01-31"
    )
    assert str(copy) == str(error.value)


def test_every_job_of_a_workflow_run_shares_its_request_id() -> None:
    argv = ["normalize.py", "--JOB_RUN_ID", "jr_5_attempt_1", "--WORKFLOW_RUN_ID", "wr_77"]
    assert parse_job_arguments(argv, today=TODAY).request.request_id == "wr_77"


@pytest.mark.parametrize(
    "secret",
    ["glue-replay/source-token", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tok-AbCd"],
)
def test_the_source_token_secret_is_a_name_or_arn(secret: str) -> None:
    argv = ["ingest.py", "--source_token_secret", secret]
    assert parse_job_arguments(argv, today=TODAY).source_token_secret == secret


def test_a_source_token_secret_that_looks_like_a_token_is_refused() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_job_arguments(["ingest.py", "--source_token_secret", "Bearer abc def"], today=TODAY)
    assert raised.value.field == "source_token_secret"
