"""The conformance kit against the bundled customers pipeline and the sample API on loopback.

The API serves 60 customers anchored at ``NOW``; ids 20, 40 and 60 are malformed and must be
quarantined. The kit's clock is the API's, so the records ``api.mutate`` changes are stamped
inside the kit's BAU window.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from glue_replay.testing import ConformanceError, SteppingClock, check_pipeline
from glue_replay_devtools.sample_api import SampleApiServer
from glue_replay_examples.customers import PIPELINE
from sample_data import ALL_IDS, NOW

MALFORMED = ["20", "40", "60"]


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(NOW)


@pytest.fixture
def api(clock: SteppingClock) -> Iterator[SampleApiServer]:
    with SampleApiServer(records=60, now=NOW, clock=clock) as server:
        yield server


def test_the_customers_pipeline_conforms(
    spark: SparkSession, api: SampleApiServer, clock: SteppingClock, tmp_path: Path
) -> None:
    report = check_pipeline(
        spark,
        PIPELINE,
        warehouse=str(tmp_path / "warehouse"),
        job_args=["--source_url", api.url],
        known_ids=ALL_IDS,
        bad_ids=MALFORMED,
        missing_id="999",
        # The sample data's records updated in [2026-01-01, 2026-03-15), as test_pipelines has.
        since=date(2026, 1, 1),
        until=date(2026, 3, 15),
        since_ids=["21", "23", "27", "32", "42"],
        change_source=lambda: api.mutate(ids=["6", "7"]),
        clock=clock,
    )

    assert report.checks == (
        "empty warehouse",
        "full",
        "same request twice",
        "bau",
        "targeted",
        "since",
        "table contracts",
    )
    assert report.changed_ids == ("6", "7")


def test_a_failing_run_names_the_entity_the_check_and_the_jobs_verdict(
    spark: SparkSession, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    # A deployment setting the job refuses: the first run exits 2 and the kit says which, and why.
    with pytest.raises(ConformanceError) as failure:
        check_pipeline(
            spark,
            PIPELINE,
            warehouse=str(warehouse),
            job_args=["--source_url", "ftp://127.0.0.1/customers"],
            known_ids=["1", "2"],
            missing_id="999",
            since=date(2026, 1, 1),
        )
    assert str(failure.value) == (
        "pipeline 'customers' fails the 'full' check:\n"
        "  - ingest --replay_mode full exited 2, expected 0: ingest_customers: invalid request: "
        "--source_url: 'ftp://127.0.0.1/customers' is not an HTTP URL; "
        "accepted: http(s)://host[:port][/path], without credentials, query or fragment"
    )
    assert failure.value.entity == "customers"
    assert failure.value.check == "full"


def test_the_kit_refuses_a_setup_that_cannot_tell_anything(spark: SparkSession) -> None:
    with pytest.raises(ConformanceError) as failure:
        check_pipeline(
            spark,
            PIPELINE,
            warehouse="/nonexistent/warehouse",
            known_ids=["1", "2"],
            bad_ids=["3"],
            missing_id="1",
            since=date(2026, 1, 1),
            until=date(2025, 1, 1),
        )
    assert failure.value.problems == (
        "bad_ids ['3'] are not in known_ids",
        "targeted_ids ['3'] are not in known_ids",
        "missing_id '1' is known",
        "until must be after since",
    )
