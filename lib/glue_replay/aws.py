"""The few AWS helpers every boundary shares: S3 URIs, reading an object, describing an error.

boto3 is imported only inside the functions that call AWS, so importing this module is free.
Errors are described by their code (and, for the operator's CLI, the service's message), never
by anything that could echo a secret.
"""

from __future__ import annotations

import re
from typing import Any

#: ``s3://bucket`` or ``s3://bucket/key`` (``s3a://`` too, as Spark spells it).
_S3_URI = re.compile(r"s3a?://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<key>\S*))?")


def is_s3_uri(text: str) -> bool:
    """True for anything that claims to be an S3 location (valid or not)."""
    return text.lower().startswith(("s3://", "s3a://"))


def parse_s3_uri(text: str) -> tuple[str, str] | None:
    """``"s3://bucket/a/b.csv"`` -> ``("bucket", "a/b.csv")``; ``None`` if it is not an S3 URI.

    The key may be empty (``s3://bucket`` -> ``("bucket", "")``) and keeps no leading slash.
    """
    match = _S3_URI.fullmatch(text)
    if match is None:
        return None
    return match.group("bucket"), (match.group("key") or "").lstrip("/")


def aws_error_code(exc: BaseException) -> str:
    """The AWS error code (``AccessDenied``), else the exception's type: never its message."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__


def describe_aws_error(exc: BaseException) -> str:
    """``GetJobRuns: EntityNotFoundException (Job not found)`` for a botocore error, briefly."""
    response = getattr(exc, "response", None)
    operation = getattr(exc, "operation_name", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code, message = error.get("Code", "error"), error.get("Message", "")
        text = f"{operation}: {code}" if operation else str(code)
        return f"{text} ({message})" if message else text
    return f"{type(exc).__name__}: {exc}"


def is_aws_error(exc: BaseException) -> bool:
    """True for botocore's client and transport errors."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - boto3 is an install requirement
        return False
    return isinstance(exc, (ClientError, BotoCoreError))


def read_s3_object(bucket: str, key: str, client: Any = None) -> bytes:
    """The bytes of ``s3://bucket/key``; botocore's errors propagate to the caller."""
    if client is None:
        import boto3

        client = boto3.client("s3")
    return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
