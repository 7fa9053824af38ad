"""One request id, one request, for every stage and entity — refused before any JVM.

The registry (``glue_replay.identity``) on a local disk and on S3 (moto), claims racing each
other, and the finding that motivated it: a ``normalize --replay_mode full`` run under the
request id of a ``targeted --ids 1,2`` ingest was accepted (and emitted every record) because the
check compared runs of the same stage only. Here the job script refuses it with exit 2 in a
process that has no Java, so the refusal provably comes before Spark.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from glue_replay.errors import RequestConflictError
from glue_replay.identity import (
    RegistryError,
    _put_if_absent,
    claim_request,
    registry_location,
)
from glue_replay.request import ReplayMode, ReplayRequest
from processes import without_java

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def targeted(*ids: str, request_id: str = "r-1", dry_run: bool = False) -> ReplayRequest:
    return ReplayRequest(mode=ReplayMode.TARGETED, ids=ids, request_id=request_id, dry_run=dry_run)


def full(request_id: str = "r-1") -> ReplayRequest:
    return ReplayRequest(mode=ReplayMode.FULL, request_id=request_id)


def test_the_first_stage_claims_the_request_id(tmp_path: Path) -> None:
    claim_request(str(tmp_path), targeted("2", "1"), "customers", "ingest", "jr_1", now=AT)

    claim = json.loads(Path(registry_location(str(tmp_path), "r-1")).read_text())
    assert claim == {
        "request_id": "r-1",
        "entity": "customers",
        "mode": "targeted",
        "date": None,
        "until": None,
        "id_count": 2,
        # The sorted ids, one a line, digested: the claim never holds the ids themselves.
        "ids_sha256": hashlib.sha256(b"1\n2").hexdigest(),
        "claimed_by": {"stage": "ingest", "run_id": "jr_1"},
        "claimed_at": "2026-11-29T09:00:00+00:00",
    }


def test_every_later_stage_of_the_same_request_is_accepted(tmp_path: Path) -> None:
    warehouse = str(tmp_path)
    claim_request(warehouse, targeted("1", "2"), "customers", "ingest", "jr_1")
    before = Path(registry_location(warehouse, "r-1")).read_bytes()
    # The normalize stage, a retry, the ids in another order: the same request.
    claim_request(warehouse, targeted("2", "1"), "customers", "normalize", "jr_2")
    claim_request(warehouse, targeted("1", "2"), "customers", "ingest", "jr_3")
    assert Path(registry_location(warehouse, "r-1")).read_bytes() == before


@pytest.mark.parametrize(
    ("request_", "entity", "described"),
    [
        pytest.param(full(), "customers", "full of customers", id="another-mode"),
        pytest.param(targeted("1", "3"), "customers", "targeted (2 ids) of customers", id="ids"),
        pytest.param(targeted("1"), "customers", "targeted (1 id) of customers", id="fewer-ids"),
        pytest.param(targeted("1", "2"), "orders", "targeted (2 ids) of orders", id="entity"),
    ],
)
def test_a_request_id_reused_for_another_request_is_refused_in_any_stage(
    tmp_path: Path, request_: ReplayRequest, entity: str, described: str
) -> None:
    warehouse = str(tmp_path)
    claim_request(warehouse, targeted("1", "2"), "customers", "ingest", "jr_1")
    for stage in ("ingest", "normalize"):
        with pytest.raises(RequestConflictError) as refused:
            claim_request(warehouse, request_, entity, stage, "jr_2")
        assert str(refused.value) == (
            "--request_id r-1 names another request: targeted (2 ids) of customers "
            f"(claimed by ingest run jr_1), not {described}; use a new request_id"
        )


def test_a_since_window_is_part_of_the_identity(tmp_path: Path) -> None:
    warehouse = str(tmp_path)
    since = ReplayRequest(
        mode=ReplayMode.SINCE,
        since=date(2026, 1, 1),
        until=date(2026, 2, 1),
        request_id="s-1",
    )
    claim_request(warehouse, since, "orders", "ingest", "jr_1")
    open_ended = ReplayRequest(mode=ReplayMode.SINCE, since=date(2026, 1, 1), request_id="s-1")
    with pytest.raises(RequestConflictError, match="names another request: since "):
        claim_request(warehouse, open_ended, "orders", "normalize", "jr_2")


def test_a_dry_run_checks_but_claims_nothing(tmp_path: Path) -> None:
    warehouse = str(tmp_path)
    claim_request(warehouse, targeted("1", dry_run=True), "customers", "ingest", "jr_1")
    assert not (tmp_path / "requests").exists()
    claim_request(warehouse, full(), "customers", "ingest", "jr_2")
    with pytest.raises(RequestConflictError):
        claim_request(warehouse, targeted("1", dry_run=True), "customers", "ingest", "jr_3")


def test_claims_racing_each_other_have_one_winner(tmp_path: Path) -> None:
    """Eight stages claim one id at once for eight different requests: exactly one wins."""
    warehouse, start = str(tmp_path), threading.Barrier(8)
    outcomes: dict[int, str] = {}

    def claim(number: int) -> None:
        start.wait()
        try:
            claim_request(warehouse, targeted(str(number)), "customers", "ingest", f"jr_{number}")
            outcomes[number] = "claimed"
        except RequestConflictError:
            outcomes[number] = "refused"

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [n for n, outcome in outcomes.items() if outcome == "claimed"]
    assert len(outcomes) == 8
    assert len(winners) == 1
    claim = json.loads(Path(registry_location(warehouse, "r-1")).read_text())
    assert claim["claimed_by"]["run_id"] == f"jr_{winners[0]}"


def test_an_unreadable_claim_is_an_error_not_a_new_claim(tmp_path: Path) -> None:
    location = Path(registry_location(str(tmp_path), "r-1"))
    location.parent.mkdir(parents=True)
    location.write_text("{not json")
    with pytest.raises(RegistryError, match=r"requests/r-1.json is not JSON"):
        claim_request(str(tmp_path), full(), "customers", "ingest", "jr_1")


@mock_aws
def test_claims_on_s3_are_conditional_creates() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="lake")
    warehouse = "s3://lake/glue-replay"
    claim_request(warehouse, targeted("1", "2"), "customers", "ingest", "jr_1", s3_client=s3)
    stored = s3.get_object(Bucket="lake", Key="glue-replay/requests/r-1.json")["Body"].read()
    assert json.loads(stored)["claimed_by"] == {"stage": "ingest", "run_id": "jr_1"}

    claim_request(warehouse, targeted("2", "1"), "customers", "normalize", "jr_2", s3_client=s3)
    with pytest.raises(RequestConflictError, match="names another request: targeted"):
        claim_request(warehouse, full(), "customers", "normalize", "jr_3", s3_client=s3)
    # The conditional write itself refuses to replace a claim (S3 answers 412).
    with pytest.raises(Exception, match="PreconditionFailed"):
        s3.put_object(
            Bucket="lake", Key="glue-replay/requests/r-1.json", Body=b"{}", IfNoneMatch="*"
        )


class OlderBotocore:
    """An S3 client whose botocore predates ``IfNoneMatch`` (1.34, as older Glue runtimes)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        no_if_none_match = SimpleNamespace(input_shape=SimpleNamespace(members={}))
        self.meta = SimpleNamespace(
            service_model=SimpleNamespace(operation_model=lambda _name: no_if_none_match),
            events=client.meta.events,
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@mock_aws
def test_an_older_botocore_sends_the_condition_as_a_header() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="lake")
    older = OlderBotocore(s3)
    claim_request("s3://lake/wh", full(), "customers", "ingest", "jr_1", s3_client=older)
    with pytest.raises(RequestConflictError):
        claim_request("s3://lake/wh", targeted("1"), "customers", "ingest", "jr_2", s3_client=older)
    # The header went out: S3 refused to replace the claim, and kept the first one.
    with pytest.raises(Exception, match="PreconditionFailed"):
        _put_if_absent(older, "lake", "wh/requests/r-1.json", b"{}")
    stored = s3.get_object(Bucket="lake", Key="wh/requests/r-1.json")["Body"].read()
    assert json.loads(stored)["mode"] == "full"
    # And the hook is gone: a plain put of another object is unconditional again.
    s3.put_object(Bucket="lake", Key="wh/other", Body=b"1")
    s3.put_object(Bucket="lake", Key="wh/other", Body=b"2")


@mock_aws
def test_an_unreachable_registry_on_s3_is_a_clear_error() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")  # no bucket "missing"
    with pytest.raises(RegistryError, match=r"cannot read the request registry s3://missing/"):
        claim_request("s3://missing/wh", full(), "customers", "ingest", "jr_1", s3_client=s3)


def test_a_normalize_under_a_targeted_ingests_request_id_is_refused_before_spark(
    tmp_path: Path,
) -> None:
    """The finding: ``normalize --replay_mode full`` under the request id of a ``targeted
    --ids 1,2`` ingest. The job script, without Java, answers exit 2 with one line."""
    warehouse = str(tmp_path / "warehouse")
    claim_request(warehouse, targeted("1", "2", request_id="t-7"), "customers", "ingest", "jr_1")
    before = sorted(str(p) for p in Path(warehouse).rglob("*"))
    result = subprocess.run(
        [
            sys.executable, "glue_jobs/normalize_customers.py", "--replay_mode", "full",
            "--request_id", "t-7", "--warehouse", warehouse,
        ],
        cwd=REPO, env=without_java(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "normalize_customers: invalid request: --request_id t-7 names another request: "
        "targeted (2 ids) of customers (claimed by ingest run jr_1), not full of customers; "
        "use a new request_id"
    ]
    assert result.stdout == ""
    assert sorted(str(p) for p in Path(warehouse).rglob("*")) == before
