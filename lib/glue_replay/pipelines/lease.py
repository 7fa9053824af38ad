"""One publish run per entity at a time: a lease under the warehouse, taken or not, never awaited.

A start that finds the lease held exits at once (its events are caught up by the run that holds
it, or by the next one): two publishers reading one checkpoint would race its offset log.

- On a local folder the lease is an OS lock (``flock``) on ``<state>/lease``: the kernel releases
  it when the process dies, so a killed run never blocks the next.
- On S3 the lease is a generation of objects ``<state>/lease-<n>``, each created with a
  conditional put (``If-None-Match: *``: exactly one of two racing runs creates it). A holder
  renews its expiry after every batch; a lease past its expiry (a run that was killed) is taken
  over by creating generation ``n + 1``, and a holder whose generation was superseded stops.

Either way the lease says whether its previous holder **finished**: released it after recording
its end, rather than dying with it. Only after one that did not finish can the ledger hold a run
still marked ``running``, so only then does the next holder look for such runs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from glue_replay.aws import aws_error_code, parse_s3_uri
from glue_replay.errors import GlueReplayError

log = logging.getLogger(__name__)

#: How long an S3 lease stays valid without a renewal: longer than one batch takes.
LEASE_TTL = timedelta(minutes=30)
#: What a released lease says when its holder finished.
FINISHED = "finished"


class LeaseLostError(GlueReplayError):
    """Another run took over the lease (this run was presumed dead): stop before writing more."""


@dataclass
class Lease:
    """A held lease; :meth:`renew` after each batch, :meth:`release` at the end."""

    holder: str
    _renew: Callable[[], None]
    _release: Callable[[bool], None]
    #: False when the previous holder died holding the lease, or released it without saying it
    #: finished (or when that cannot be told: a lease written by an older version).
    previous_finished: bool = True

    def renew(self) -> None:
        self._renew()

    def release(self, finished: bool = True) -> None:
        """Free the lease; ``finished``: this run recorded its end (in the ledger)."""
        self._release(finished)


def acquire_lease(
    state_folder: str, holder: str, now: Callable[[], datetime], s3_client: Any = None
) -> Lease | str:
    """The lease of ``state_folder`` for ``holder``, or a sentence saying who holds it."""
    if "://" in state_folder and not state_folder.startswith("file:"):
        return _acquire_s3(state_folder, holder, now, s3_client)
    return _acquire_local(state_folder.removeprefix("file:"), holder)


def _acquire_local(folder: str, holder: str) -> Lease | str:
    import fcntl

    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / "lease"
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        try:
            current = path.read_text().partition("\n")[0].strip() or "another run"
        except OSError:
            current = "another run"
        return f"held by {current}"
    # "<holder>" while held, "<holder>\nfinished" once released by a run that finished.
    previous = os.pread(handle, 4096, 0).decode(errors="replace")
    os.ftruncate(handle, 0)
    os.pwrite(handle, holder.encode(), 0)

    def release(finished: bool) -> None:
        if finished:
            os.pwrite(handle, f"{holder}\n{FINISHED}".encode(), 0)
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)

    return Lease(holder, lambda: None, release, _finished_text(previous))


def _finished_text(previous: str) -> bool:
    """Whether a local lease file's earlier content says its holder finished (or there was
    none)."""
    lines = previous.splitlines()
    return not previous.strip() or (len(lines) > 1 and lines[1].strip() == FINISHED)


def _acquire_s3(folder: str, holder: str, now: Callable[[], datetime], client: Any) -> Lease | str:
    location = parse_s3_uri(folder)
    if location is None:
        raise GlueReplayError(f"{folder!r} is not an S3 URI")
    bucket, prefix = location
    if client is None:
        import boto3

        client = boto3.client("s3")
    prefix = prefix.rstrip("/") + "/lease-"
    generation, current = _latest_generation(client, bucket, prefix)
    if current is not None and datetime.fromisoformat(current["expires_at"]) > now():
        return f"held by {current['holder']} until {current['expires_at']}"
    mine = generation + 1
    key = f"{prefix}{mine:010d}"

    def body() -> bytes:
        expires = (now() + LEASE_TTL).isoformat()
        return json.dumps({"holder": holder, "expires_at": expires}).encode()

    try:
        client.put_object(Bucket=bucket, Key=key, Body=body(), IfNoneMatch="*")
    except Exception as exc:
        if aws_error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
            return "taken over by another run that started at the same time"
        raise
    if current is not None:
        log.warning("took over the lease of %s (%s's expired)", folder, current["holder"])

    def renew() -> None:
        newer, _ = _latest_generation(client, bucket, prefix)
        if newer != mine:
            raise LeaseLostError(
                f"the publish lease of {folder} was taken over by a later run (generation "
                f"{newer} > {mine}); this run stops"
            )
        client.put_object(Bucket=bucket, Key=key, Body=body())

    def release(finished: bool) -> None:
        stamp = {"holder": holder, "expires_at": now().isoformat(), FINISHED: finished}
        client.put_object(Bucket=bucket, Key=key, Body=json.dumps(stamp).encode())

    return Lease(holder, renew, release, current is None or current.get(FINISHED) is True)


def _latest_generation(client: Any, bucket: str, prefix: str) -> tuple[int, dict[str, Any] | None]:
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]
    if not keys:
        return 0, None
    key = max(keys)
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return int(key.removeprefix(prefix)), json.loads(body)
