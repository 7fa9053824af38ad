"""One request id, one request: the request registry, read and claimed before Spark starts.

A request id names one request — its entity, mode, explicit window (``--date``/``--until``) and
id set — for every stage (DESIGN §6). The first stage that runs a request claims its id by
creating ``<warehouse>/requests/<request_id>.json``, only if it is absent (an S3 conditional
write, ``If-None-Match: *``, or an exclusive create on a local disk); every later stage and
retry reads it back and refuses the id when the request differs. Two stages claiming at once
cannot both win: the loser reads the winner's claim and compares.

The check costs one small read, before any JVM: a reused request id is refused in well under a
second with exit 2, never after Spark has started. BAU windows, which each stage derives from
its own watermark, are not part of the identity; neither is ``--dry_run`` (a dry run checks
the registry but claims nothing: its ledger row stays its only write).

    claim_request(warehouse, request, "invoices", "ingest", "jr_1")   # first stage: claims
    claim_request(warehouse, other, "invoices", "normalize", "jr_2")  # RequestConflictError
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from glue_replay.aws import aws_error_code, describe_aws_error, is_s3_uri, parse_s3_uri
from glue_replay.errors import GlueReplayError, RequestConflictError
from glue_replay.request import ReplayRequest

#: The registry's folder under the warehouse.
REGISTRY_FOLDER = "requests"
#: S3's answers to a conditional create of an object that exists (or is being created).
_ALREADY_CLAIMED = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


@dataclass(frozen=True)
class RequestIdentity:
    """What a request id stands for: the same for every stage of the request."""

    request_id: str
    entity: str
    mode: str
    date: str | None
    until: str | None
    id_count: int
    ids_sha256: str | None

    @classmethod
    def of(cls, request: ReplayRequest, entity: str) -> RequestIdentity:
        ids = sorted(request.ids)
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest() if ids else None
        return cls(
            request_id=request.request_id,
            entity=entity,
            mode=request.mode.value,
            date=request.since.isoformat() if request.since else None,
            until=request.until.isoformat() if request.until else None,
            id_count=len(ids),
            ids_sha256=digest,
        )

    def describe(self) -> str:
        """``targeted (3 ids) of invoices``, ``since 2026-01-01 until 2026-02-01 of invoices``."""
        what = self.mode
        if self.date:
            what += f" {self.date}" + (f" until {self.until}" if self.until else "")
        if self.id_count:
            what += f" ({self.id_count} id{'' if self.id_count == 1 else 's'})"
        return f"{what} of {self.entity}"

    def as_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "entity": self.entity,
            "mode": self.mode,
            "date": self.date,
            "until": self.until,
            "id_count": self.id_count,
            "ids_sha256": self.ids_sha256,
        }


class RegistryError(GlueReplayError):
    """The registry could not be read or written (exit 1: nothing was run)."""


def registry_location(warehouse: str, request_id: str) -> str:
    """Where a request's claim lives: ``<warehouse>/requests/<request_id>.json``."""
    return f"{warehouse.rstrip('/')}/{REGISTRY_FOLDER}/{request_id}.json"


def claim_request(
    warehouse: str,
    request: ReplayRequest,
    entity: str,
    stage: str,
    run_id: str,
    *,
    s3_client: Any = None,
    now: datetime | None = None,
) -> RequestIdentity:
    """Claim ``request``'s id for it, or check an existing claim; refuse a different request.

    Raises :class:`RequestConflictError` (exit 2) when the id was claimed for another request,
    :class:`RegistryError` when the registry cannot be reached. A dry run only checks.
    """
    identity = RequestIdentity.of(request, entity)
    store = _store(warehouse, request.request_id, s3_client)
    claim = store.read()
    if claim is None and not request.dry_run:
        body = {
            **identity.as_json(),
            "claimed_by": {"stage": stage, "run_id": run_id},
            "claimed_at": (now or datetime.now(UTC)).isoformat(),
        }
        if store.create(json.dumps(body, indent=2, sort_keys=True).encode()):
            return identity
        claim = store.read()  # another stage claimed it in between: compare with theirs
    if claim is not None:
        _refuse_other_request(identity, claim)
    return identity


def _refuse_other_request(identity: RequestIdentity, claim: dict[str, Any]) -> None:
    claimed = {key: claim.get(key) for key in identity.as_json()}
    if claimed == identity.as_json():
        return
    other = RequestIdentity(**claimed)  # type: ignore[arg-type]
    by = claim.get("claimed_by") or {}
    raise RequestConflictError(
        f"--request_id {identity.request_id} names another request: "
        f"{other.describe()} (claimed by {by.get('stage', '?')} run {by.get('run_id', '?')}), "
        f"not {identity.describe()}; use a new request_id"
    )


class _LocalClaim:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Any] | None:
        try:
            return _parse(self.path.read_bytes(), str(self.path))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RegistryError(f"cannot read the request registry {self.path}: {exc}") from exc

    def create(self, body: bytes) -> bool:
        """Write the claim to a private file, then link it into place: the link is created only
        if absent and, once visible, is complete (a reader never sees a half-written claim)."""
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            private = folder / f".{self.path.name}.{os.getpid()}.{threading.get_ident()}"
            private.write_bytes(body)
            try:
                os.link(private, self.path)
            except FileExistsError:
                return False
            finally:
                private.unlink(missing_ok=True)
        except OSError as exc:
            raise RegistryError(f"cannot write the request registry {self.path}: {exc}") from exc
        return True


class _S3Claim:
    def __init__(self, bucket: str, key: str, client: Any) -> None:
        self.bucket, self.key, self.client = bucket, key, client
        self.uri = f"s3://{bucket}/{key}"

    def read(self) -> dict[str, Any] | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except Exception as exc:
            if aws_error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise RegistryError(
                f"cannot read the request registry {self.uri}: {describe_aws_error(exc)}"
            ) from exc
        return _parse(body, self.uri)

    def create(self, body: bytes) -> bool:
        try:
            _put_if_absent(self.client, self.bucket, self.key, body)
        except Exception as exc:
            if aws_error_code(exc) in _ALREADY_CLAIMED:
                return False
            raise RegistryError(
                f"cannot write the request registry {self.uri}: {describe_aws_error(exc)}"
            ) from exc
        return True


def _put_if_absent(client: Any, bucket: str, key: str, body: bytes) -> None:
    """``PutObject`` with ``If-None-Match: *``. botocore knows the parameter from 1.35; an older
    one (an older Glue runtime's) gets the header added to this one request."""
    put = {"Bucket": bucket, "Key": key, "Body": body, "ContentType": "application/json"}
    operation = client.meta.service_model.operation_model("PutObject")
    if "IfNoneMatch" in operation.input_shape.members:
        client.put_object(**put, IfNoneMatch="*")
        return

    def if_none_match(request: Any, **_: Any) -> None:
        request.headers["If-None-Match"] = "*"

    hook, name = "before-sign.s3.PutObject", "glue-replay-if-none-match"
    client.meta.events.register_first(hook, if_none_match, unique_id=name)
    try:
        client.put_object(**put)
    finally:
        client.meta.events.unregister(hook, unique_id=name)


def _store(warehouse: str, request_id: str, s3_client: Any) -> _LocalClaim | _S3Claim:
    location = registry_location(warehouse, request_id)
    if not is_s3_uri(location):
        return _LocalClaim(Path(location))
    parsed = parse_s3_uri(location)
    if parsed is None:
        raise RegistryError(f"the warehouse {warehouse} is not a valid S3 URI")
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3")
    return _S3Claim(*parsed, s3_client)


def _parse(body: bytes, where: str) -> dict[str, Any]:
    try:
        claim = json.loads(body)
    except ValueError as exc:
        raise RegistryError(f"the request registry entry {where} is not JSON") from exc
    if not isinstance(claim, dict):
        raise RegistryError(f"the request registry entry {where} is not a JSON object")
    return claim
