"""A source's credentials from AWS Secrets Manager: read when the source asks, never logged."""

from __future__ import annotations

import json
from typing import Any

from glue_replay.aws import aws_error_code
from glue_replay.errors import GlueReplayError


def read_secret_string(
    secret: str, client: Any = None, error: type[GlueReplayError] = GlueReplayError
) -> str:
    """The ``SecretString`` of secret ``secret``; a failure raises ``error`` naming the secret
    and AWS's error code, never the secret's value."""
    if client is None:
        import boto3

        client = boto3.client("secretsmanager")
    try:
        return str(client.get_secret_value(SecretId=secret)["SecretString"])
    except Exception as exc:
        raise error(f"could not read secret {secret}: {aws_error_code(exc)}") from None


def read_secret_token(secret: str, client: Any = None) -> str:
    """The token in secret ``secret``: a plain string, or JSON with a ``token`` key.

    Errors name the secret and AWS's error code, never the secret's value.
    """
    value = read_secret_string(secret, client)
    try:
        parsed = json.loads(value)
    except ValueError:
        return str(value).strip()
    if isinstance(parsed, dict) and isinstance(parsed.get("token"), str):
        return str(parsed["token"])
    raise GlueReplayError(f"secret {secret} is neither a plain token nor JSON with a 'token' key")
