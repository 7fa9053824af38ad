"""The publish lease: one run per entity at a time, on a local folder and on S3 (moto_server)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from glue_replay.pipelines.lease import LEASE_TTL, Lease, LeaseLostError, acquire_lease
from moto_process import FAKE_AWS_ENVIRONMENT, REGION, running_moto_server

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_a_local_lease_is_exclusive_and_freed_when_its_holder_dies(tmp_path: Path) -> None:
    folder = str(tmp_path / "_publish" / "customers")
    first = acquire_lease(folder, "run p-1", Clock())
    assert isinstance(first, Lease)
    assert first.previous_finished  # nobody held it before
    assert acquire_lease(folder, "run p-2", Clock()) == "held by run p-1"
    first.release()
    second = acquire_lease(folder, "run p-2", Clock())
    assert isinstance(second, Lease)
    assert second.previous_finished
    second.release(finished=False)  # e.g. its end could not be recorded
    between = acquire_lease(folder, "run p-2b", Clock())
    assert isinstance(between, Lease)
    assert not between.previous_finished
    between.release()

    # A process that takes the lease and dies (SIGKILL) leaves nothing held behind.
    script = (
        "import os, signal, sys\n"
        "from datetime import datetime, UTC\n"
        "from glue_replay.pipelines.lease import acquire_lease\n"
        f"lease = acquire_lease({folder!r}, 'run p-dead', lambda: datetime.now(UTC))\n"
        "assert not isinstance(lease, str)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    died = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    assert died.returncode == -9
    third = acquire_lease(folder, "run p-3", Clock())
    assert isinstance(third, Lease)
    assert not third.previous_finished  # p-dead may have left a run marked running
    third.release()
    fourth = acquire_lease(folder, "run p-4", Clock())
    assert isinstance(fourth, Lease)
    assert fourth.previous_finished
    fourth.release()


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_moto_server(tmp_path_factory.mktemp("moto")) as endpoint:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=FAKE_AWS_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(
            Bucket="lake", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield client


def lease_objects(s3: Any, prefix: str) -> list[tuple[str, str]]:
    listed = s3.list_objects_v2(Bucket="lake", Prefix=prefix).get("Contents", [])
    return [
        (item["Key"], s3.get_object(Bucket="lake", Key=item["Key"])["Body"].read().decode())
        for item in listed
    ]


def test_an_s3_lease_is_exclusive_until_it_expires_and_a_superseded_holder_stops(s3: Any) -> None:
    folder, prefix = "s3://lake/wh/_publish/customers", "wh/_publish/customers/lease-"
    clock = Clock()
    first = acquire_lease(folder, "run p-1", clock, s3_client=s3)
    assert isinstance(first, Lease)
    assert first.previous_finished
    expires = (T0 + LEASE_TTL).isoformat()
    assert acquire_lease(folder, "run p-2", clock, s3_client=s3) == (
        f"held by run p-1 until {expires}"
    )
    clock.now += timedelta(minutes=10)
    first.renew()  # still the holder: the expiry moves on
    clock.now += LEASE_TTL - timedelta(minutes=1)
    assert isinstance(acquire_lease(folder, "run p-2", clock, s3_client=s3), str)

    # p-1 stops renewing (killed): once expired, p-3 takes over with the next generation.
    clock.now += timedelta(minutes=2)
    third = acquire_lease(folder, "run p-3", clock, s3_client=s3)
    assert isinstance(third, Lease)
    assert not third.previous_finished  # p-1 died holding it
    assert [key for key, _ in lease_objects(s3, prefix)] == [
        f"{prefix}0000000001",
        f"{prefix}0000000002",
    ]
    with pytest.raises(LeaseLostError, match="taken over by a later run"):
        first.renew()
    third.release()
    fourth = acquire_lease(folder, "run p-4", clock, s3_client=s3)
    assert isinstance(fourth, Lease)
    assert fourth.previous_finished
    fourth.release(finished=False)
    clock.now += timedelta(seconds=1)
    fifth = acquire_lease(folder, "run p-5", clock, s3_client=s3)
    assert isinstance(fifth, Lease)
    assert not fifth.previous_finished
    fifth.release()


def test_of_two_runs_creating_the_same_generation_one_wins(s3: Any) -> None:
    """The conditional put (If-None-Match) is what makes the lease exclusive on S3."""
    key = "wh/_publish/orders/lease-0000000001"
    s3.put_object(Bucket="lake", Key=key, Body=b"{}", IfNoneMatch="*")
    with pytest.raises(s3.exceptions.ClientError, match="PreconditionFailed"):
        s3.put_object(Bucket="lake", Key=key, Body=b"{}", IfNoneMatch="*")
