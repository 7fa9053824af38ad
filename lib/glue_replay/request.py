"""The replay request: one typed model, one parser, complete validation — and no Spark.

Every job script parses ``sys.argv`` here before any JVM starts, so an invalid request is refused
in well under two seconds with exit code 2 and one line naming the argument.

Glue passes job arguments as ``--name value`` mixed with its own (``--JOB_NAME``, ``--JOB_RUN_ID``,
``--TempDir``, ``--job-bookmark-option``, ...). :func:`resolve_options` reads them with the
semantics of ``awsglue.utils.getResolvedOptions`` (unknown arguments ignored, underscores in
names) but every replay argument is optional and has a default.

    >>> args = parse_job_arguments(["job.py", "--replay_mode", "targeted", "--ids", " 7,3,7 "])
    >>> args.request.mode, args.request.ids
    (<ReplayMode.TARGETED: 'targeted'>, ('7', '3'))
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from glue_replay.errors import InvalidRequestError


class ReplayMode(StrEnum):
    """How a run selects records. ``BAU`` is the default incremental run (no ``--replay_mode``)."""

    BAU = "bau"
    FULL = "full"
    SINCE = "since"
    TARGETED = "targeted"

    @property
    def is_replay(self) -> bool:
        return self is not ReplayMode.BAU


REPLAY_MODES_ACCEPTED = "full, since or targeted (omit --replay_mode for the BAU run)"

#: Ids that may reach an HTTP query or a SQL predicate: letters, digits and ``_ . : @ + -``,
#: starting with a letter or digit — no spaces, quotes, semicolons or slashes. Entities may pass
#: a stricter (or different) pattern to :func:`parse_job_arguments`.
DEFAULT_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,127}"
DEFAULT_ID_PATTERN_HELP = (
    "1-128 letters, digits or _ . : @ + -, starting with a letter or digit "
    "(no spaces, quotes, semicolons or slashes)"
)
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
DEFAULT_WAREHOUSE = "./warehouse"
DEFAULT_SOURCE_URL = "http://127.0.0.1:8765"

_DATE_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}")
_S3_URI = re.compile(r"s3a?://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?")
_SECRET_NAME = re.compile(r"(arn:aws[\w-]*:secretsmanager:[\w-]+:\d{12}:secret:)?[\w/+=.@-]{1,512}")
_PRINCIPAL = re.compile(r"[\w.@:+/=,-]{1,128}")
_GLUE_ATTEMPT_SUFFIX = re.compile(r"_attempt_\d+$")

#: The replay arguments every job reads (DESIGN §4): overridable per run on Glue, and the only
#: ones a Glue workflow run's properties may set.
REPLAY_ARGUMENTS = (
    "replay_mode",
    "date",
    "until",
    "ids",
    "ids_file",
    "request_id",
    "dry_run",
    "requested_by",
)

#: Every argument a glue-replay job reads; anything else in argv belongs to Glue and is ignored.
JOB_ARGUMENTS = (
    *REPLAY_ARGUMENTS,
    # deployment settings, fixed per deployment:
    "warehouse",
    "source_url",
    "source_token_secret",
    # Glue's own, read but never required:
    "JOB_NAME",
    "JOB_RUN_ID",
    "WORKFLOW_NAME",
    "WORKFLOW_RUN_ID",
    "mode",
)


@dataclass(frozen=True)
class ReplayRequest:
    """What to (re)process: the mode and its window or ids, under one idempotency key.

    ``since``/``until`` are UTC dates (``until`` exclusive) and only set for ``SINCE``; ``ids`` is
    trimmed, deduplicated and validated, and only set for ``TARGETED``.
    """

    mode: ReplayMode
    request_id: str
    since: date | None = None
    until: date | None = None
    ids: tuple[str, ...] = ()
    ids_file: str | None = None
    dry_run: bool = False

    @property
    def since_start(self) -> datetime | None:
        """Start of a ``since`` window as a UTC instant (midnight of ``since``)."""
        return _midnight(self.since)

    @property
    def until_end(self) -> datetime | None:
        """Exclusive end of a ``since`` window as a UTC instant, if ``--until`` was given."""
        return _midnight(self.until)

    def fingerprint(self) -> str:
        """A digest of what the request selects, to refuse a ``request_id`` reused for another."""
        canonical = json.dumps(
            {
                "mode": self.mode.value,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "ids": sorted(self.ids),
            },
            sort_keys=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def describe(self) -> str:
        """One human line: ``targeted (3 ids)``, ``since 2026-01-01 until 2026-02-01``, ..."""
        if self.mode is ReplayMode.SINCE:
            end = f" until {self.until.isoformat()}" if self.until else ""
            return f"since {self.since.isoformat() if self.since else '?'}{end}"
        if self.mode is ReplayMode.TARGETED:
            origin = f" from {self.ids_file}" if self.ids_file else ""
            return f"targeted ({len(self.ids)} ids{origin})"
        return self.mode.value


@dataclass(frozen=True)
class JobArguments:
    """Everything a job run needs besides Spark: the request, where the tables are, who asked."""

    request: ReplayRequest
    warehouse: str = DEFAULT_WAREHOUSE
    source_url: str = DEFAULT_SOURCE_URL
    job_name: str = "local"
    run_id: str = field(default_factory=lambda: f"local-{uuid.uuid4().hex[:12]}")
    requested_by: str = "unknown"
    #: Name or ARN of the Secrets Manager secret holding the source's token (never the token).
    source_token_secret: str | None = None

    def for_ledger(self) -> str:
        """The arguments as JSON for the runs ledger: never ids in bulk, never a secret."""
        request = self.request
        return json.dumps(
            {
                "replay_mode": request.mode.value,
                "date": request.since.isoformat() if request.since else None,
                "until": request.until.isoformat() if request.until else None,
                "ids": list(request.ids[:20]) if not request.ids_file else None,
                "ids_file": request.ids_file,
                "id_count": len(request.ids),
                "dry_run": request.dry_run,
                "warehouse": self.warehouse,
                "source_url": self.source_url,
                "job_name": self.job_name,
            },
            sort_keys=True,
        )


def resolve_options(argv: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    """Read ``--name value`` / ``--name=value`` pairs for ``names``; ignore every other token.

    Like ``getResolvedOptions``, the last occurrence wins and arguments that are not ours (Glue's
    ``--job-bookmark-option job-bookmark-disable``, ``--enable-metrics true``, ...) are skipped
    with their values. Unlike it, nothing is required here: :func:`parse_job_arguments` decides.
    """
    wanted = set(names)
    found: dict[str, str] = {}
    position = 0
    while position < len(argv):
        token = argv[position]
        position += 1
        if not token.startswith("--"):
            continue
        name, has_value, value = token[2:].partition("=")
        if name not in wanted:
            continue
        if not has_value:
            if position >= len(argv) or argv[position].startswith("--"):
                raise InvalidRequestError(f"--{name}", "given without a value", "--name value")
            value = argv[position]
            position += 1
        found[name] = value
    return found


def parse_job_arguments(
    argv: Sequence[str],
    *,
    today: date | None = None,
    id_pattern: str = DEFAULT_ID_PATTERN,
    id_pattern_help: str = DEFAULT_ID_PATTERN_HELP,
    environ: Mapping[str, str] | None = None,
    read_s3_object: Callable[[str, str], bytes] | None = None,
) -> JobArguments:
    """Parse and completely validate a job's ``sys.argv`` (``argv[0]`` is the script).

    Raises :class:`InvalidRequestError` naming the first argument that is wrong. Empty values
    count as absent, so Glue default arguments can be blanked per run.
    """
    options = {k: v.strip() for k, v in resolve_options(argv[1:], JOB_ARGUMENTS).items()}
    options = {k: v for k, v in options.items() if v != ""}
    today = today or datetime.now(UTC).date()
    ids_policy = _IdPolicy(re.compile(id_pattern), id_pattern_help)

    mode = _parse_mode(options)
    since, until = _parse_window(options, mode, today)
    ids, ids_file = _parse_ids(options, mode, ids_policy, read_s3_object)
    request = ReplayRequest(
        mode=mode,
        request_id=_parse_request_id(options),
        since=since,
        until=until,
        ids=ids,
        ids_file=ids_file,
        dry_run=_parse_bool("--dry_run", options.get("dry_run", "false")),
    )
    env = environ if environ is not None else _default_environ()
    return JobArguments(
        request=request,
        warehouse=_parse_warehouse(options.get("warehouse", DEFAULT_WAREHOUSE)),
        source_url=_parse_source_url(options.get("source_url", DEFAULT_SOURCE_URL)),
        job_name=options.get("JOB_NAME", "local"),
        run_id=options.get("JOB_RUN_ID") or f"local-{uuid.uuid4().hex[:12]}",
        requested_by=_parse_requested_by(options.get("requested_by"), env.get("USER")),
        source_token_secret=_parse_secret_name(options.get("source_token_secret")),
    )


def parse_ids(
    text: str, *, argument: str = "--ids", id_pattern: str = DEFAULT_ID_PATTERN
) -> tuple[str, ...]:
    """Split a comma-separated id list: trimmed, deduplicated in order, validated."""
    policy = _IdPolicy(re.compile(id_pattern), DEFAULT_ID_PATTERN_HELP)
    return policy.clean(text.split(","), argument, text)


def load_ids_file(
    location: str,
    *,
    id_pattern: str = DEFAULT_ID_PATTERN,
    id_column: str | None = None,
    read_s3_object: Callable[[str, str], bytes] | None = None,
) -> tuple[str, ...]:
    """Read the ids of a local path or ``s3://`` URI (see :func:`ids_from_text` for the format)."""
    policy = _IdPolicy(re.compile(id_pattern), DEFAULT_ID_PATTERN_HELP)
    return policy.clean_file(_read_ids_file(location, read_s3_object), location, id_column)


def ids_from_text(
    text: str, *, id_pattern: str = DEFAULT_ID_PATTERN, id_column: str | None = None
) -> tuple[str, ...]:
    """Ids of an ids file's text.

    Accepted: a CSV with a header row (the ``id`` column — or ``id_column`` —, or its only
    column) or a plain list, one id a line. A one-column file is taken to have a header when its
    first line is ``id``, is not a valid id, or is the only non-numeric value above numeric ids.
    """
    policy = _IdPolicy(re.compile(id_pattern), DEFAULT_ID_PATTERN_HELP)
    return policy.clean_file(text, "<text>", id_column)


# -- one function per decision -------------------------------------------------------------


def _parse_mode(options: Mapping[str, str]) -> ReplayMode:
    raw = options.get("replay_mode")
    if raw is None:
        glue_mode = options.get("mode", "").lower()
        if glue_mode in {"full", "since", "targeted"}:
            raise InvalidRequestError(
                "--replay_mode",
                f"--mode {glue_mode} was given, but --mode is reserved by AWS Glue",
                f"--replay_mode {glue_mode}",
            )
        return ReplayMode.BAU
    try:
        return ReplayMode(raw.lower())
    except ValueError:
        raise InvalidRequestError(
            "--replay_mode", f"{raw!r} is not a replay mode", REPLAY_MODES_ACCEPTED
        ) from None


def _parse_window(
    options: Mapping[str, str], mode: ReplayMode, today: date
) -> tuple[date | None, date | None]:
    if mode is not ReplayMode.SINCE:
        for name in ("date", "until"):
            if name in options:
                raise InvalidRequestError(
                    f"--{name}",
                    f"is only valid with --replay_mode since (mode is {mode.value})",
                    f"--replay_mode since --{name} YYYY-MM-DD, or no --{name}",
                )
        return None, None
    if "date" not in options:
        raise InvalidRequestError(
            "--date", "is required with --replay_mode since", "--date YYYY-MM-DD (UTC)"
        )
    since = _parse_date("--date", options["date"])
    if since > today:
        raise InvalidRequestError(
            "--date",
            f"{since.isoformat()} is in the future (today is {today.isoformat()} UTC)",
            "a date on or before today",
        )
    if "until" not in options:
        return since, None
    until = _parse_date("--until", options["until"])
    if until <= since:
        raise InvalidRequestError(
            "--until",
            f"{until.isoformat()} is not after --date {since.isoformat()}",
            "a date after --date (the window is [date, until))",
        )
    return since, until


def _parse_date(argument: str, raw: str) -> date:
    accepted = "a UTC date YYYY-MM-DD, e.g. 2026-01-31"
    if not _DATE_SHAPE.fullmatch(raw):
        raise InvalidRequestError(argument, f"{raw!r} is not a date", accepted)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequestError(argument, f"{raw!r} is not a calendar date", accepted) from None


def _parse_ids(
    options: Mapping[str, str],
    mode: ReplayMode,
    policy: _IdPolicy,
    read_s3_object: Callable[[str, str], bytes] | None,
) -> tuple[tuple[str, ...], str | None]:
    if mode is not ReplayMode.TARGETED:
        for name in ("ids", "ids_file"):
            if name in options:
                raise InvalidRequestError(
                    f"--{name}",
                    f"is only valid with --replay_mode targeted (mode is {mode.value})",
                    f"--replay_mode targeted --{name} ..., or no --{name}",
                )
        return (), None
    if "ids" in options and "ids_file" in options:
        raise InvalidRequestError(
            "--ids_file", "was given together with --ids", "either --ids or --ids_file, not both"
        )
    if "ids" in options:
        return policy.clean(options["ids"].split(","), "--ids", options["ids"]), None
    if "ids_file" in options:
        location = options["ids_file"]
        text = _read_ids_file(location, read_s3_object)
        return policy.clean_file(text, location, None), location
    raise InvalidRequestError(
        "--ids",
        "--replay_mode targeted needs ids",
        "--ids 1,2,3 or --ids_file PATH|s3://bucket/key.csv",
    )


def _parse_request_id(options: Mapping[str, str]) -> str:
    raw = options.get("request_id")
    if raw is None:
        # Every job of one Glue workflow run shares its request; a Glue retry runs as
        # <JOB_RUN_ID>_attempt_<n>, and stripping the suffix keeps the request too.
        glue_run_id = options.get("WORKFLOW_RUN_ID") or options.get("JOB_RUN_ID")
        raw = _GLUE_ATTEMPT_SUFFIX.sub("", glue_run_id) if glue_run_id else uuid.uuid4().hex
    if not REQUEST_ID_PATTERN.fullmatch(raw):
        raise InvalidRequestError(
            "--request_id",
            f"{raw!r} is not a valid request id",
            "1-128 letters, digits or _ . : -, starting with a letter or digit",
        )
    return raw


def _parse_bool(argument: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    raise InvalidRequestError(argument, f"{raw!r} is not a boolean", "true or false")


def _parse_warehouse(raw: str) -> str:
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme in {"s3", "s3a"}:
        if not _S3_URI.fullmatch(raw):
            raise InvalidRequestError(
                "--warehouse", f"{raw!r} is not an S3 URI", "s3://bucket/prefix or a local folder"
            )
        return raw.rstrip("/")
    if scheme not in {"", "file"}:
        raise InvalidRequestError(
            "--warehouse", f"scheme {scheme!r} is not supported", "s3://bucket/prefix or a folder"
        )
    return raw.rstrip("/") or "/"


def _parse_source_url(raw: str) -> str:
    accepted = "http(s)://host[:port][/path], without credentials, query or fragment"
    # A value with an @ may hold user:password (whatever its shape): it is never echoed back.
    shown = repr(raw) if "@" not in raw else "the value (not shown: it may hold credentials)"
    try:
        parts = urlsplit(raw)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # an unbalanced [IPv6] host, a port out of range
        raise InvalidRequestError("--source_url", f"{shown} is not a URL", accepted) from None
    if parts.username is not None or parts.password is not None:
        raise InvalidRequestError(
            "--source_url",
            "contains credentials, which must not travel in job arguments",
            "a URL without user:password (keep the token in Secrets Manager)",
        )
    if parts.scheme not in {"http", "https"} or not parts.hostname or not port_ok:
        raise InvalidRequestError("--source_url", f"{shown} is not an HTTP URL", accepted)
    if parts.query or parts.fragment:
        # The REST source refuses these too (after Spark has started); a query may hold a token.
        raise InvalidRequestError(
            "--source_url", "has a query or fragment (not shown: it may hold a token)", accepted
        )
    return raw.rstrip("/")


def _parse_requested_by(raw: str | None, login: str | None) -> str:
    if raw is None:
        # The login name is a default, not an argument: an odd one is dropped, never refused.
        return login if login and _PRINCIPAL.fullmatch(login) else "unknown"
    if not _PRINCIPAL.fullmatch(raw):
        raise InvalidRequestError(
            "--requested_by", f"{raw!r} is not a principal name", "a user or role name"
        )
    return raw


def _parse_secret_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not _SECRET_NAME.fullmatch(raw):
        raise InvalidRequestError(
            "--source_token_secret",
            f"{raw!r} is not a Secrets Manager secret name or ARN",
            "the secret's name or ARN (never the token itself)",
        )
    return raw


def _default_environ() -> dict[str, str]:
    try:
        return {"USER": getpass.getuser()}
    except (KeyError, OSError):
        return {}


def _midnight(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


# -- ids ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _IdPolicy:
    pattern: re.Pattern[str]
    help: str

    def check(self, value: str, argument: str, where: str = "") -> str:
        if not self.pattern.fullmatch(value):
            raise InvalidRequestError(argument, f"{where}{value!r} is not a safe id", self.help)
        return value

    def clean(self, values: Sequence[str], argument: str, raw: str) -> tuple[str, ...]:
        ids = dict.fromkeys(self.check(v.strip(), argument) for v in values if v.strip())
        if not ids:
            raise InvalidRequestError(argument, f"no ids in {raw!r}", "--ids 1,2,3")
        return tuple(ids)

    def clean_file(self, text: str, location: str, id_column: str | None) -> tuple[str, ...]:
        argument = "--ids_file"
        # Universal newlines: CRLF and a bare CR (old Mac exports) end a row like LF does.
        reader = csv.reader(io.StringIO(text, newline=None))
        try:
            # (line number in the file, row): blank lines are skipped but still counted.
            numbered = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
        except csv.Error as exc:
            raise InvalidRequestError(
                argument, f"{location} is not a readable CSV ({exc})", _IDS_FILE_ACCEPTED
            ) from None
        if not numbered:
            raise InvalidRequestError(argument, f"no ids in {location}", _IDS_FILE_ACCEPTED)
        column, start = self._locate_ids([row for _, row in numbered], location, id_column)
        ids: dict[str, None] = {}
        for line, row in numbered[start:]:
            value = row[column].strip() if column < len(row) else ""
            if value:
                ids[self.check(value, argument, f"{location} row {line}: ")] = None
        if not ids:
            raise InvalidRequestError(argument, f"no ids in {location}", _IDS_FILE_ACCEPTED)
        return tuple(ids)

    def _locate_ids(
        self, rows: list[list[str]], location: str, id_column: str | None
    ) -> tuple[int, int]:
        """(column index, first data row) of the ids in ``rows``."""
        header = [cell.strip().lower() for cell in rows[0]]
        wanted = (id_column or "id").lower()
        if wanted in header:
            return header.index(wanted), 1
        if len(header) > 1 or id_column:
            raise InvalidRequestError(
                "--ids_file",
                f"{location} has no {wanted!r} column (header: {', '.join(header)})",
                _IDS_FILE_ACCEPTED,
            )
        first = rows[0][0].strip()
        rest = [row[0].strip() for row in rows[1:]]
        looks_like_header = not self.pattern.fullmatch(first) or (
            not first.isdigit() and bool(rest) and all(v.isdigit() for v in rest)
        )
        return 0, 1 if looks_like_header else 0


_IDS_FILE_ACCEPTED = "a CSV with a header row (column 'id', or its only column) or one id a line"


def _read_ids_file(location: str, read_s3_object: Callable[[str, str], bytes] | None) -> str:
    if location.startswith(("s3://", "s3a://")):
        if not _S3_URI.fullmatch(location) or "/" not in location.split("://", 1)[1].strip("/"):
            raise InvalidRequestError(
                "--ids_file", f"{location!r} is not an S3 object URI", "s3://bucket/key.csv"
            )
        bucket, key = location.split("://", 1)[1].split("/", 1)
        reader = read_s3_object or _read_s3_object
        body = reader(bucket, key)
    else:
        path = Path(location)
        shown = repr(location) if "@" not in location else "(path not shown: it has an @)"
        if not path.is_file():
            raise InvalidRequestError(
                "--ids_file", f"no such file {shown}", "a readable local path or s3:// URI"
            )
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise InvalidRequestError(
                "--ids_file", f"cannot read {shown} ({exc.strerror})", "a readable local file"
            ) from None
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRequestError(
            "--ids_file", f"{location} is not UTF-8 text", "a UTF-8 CSV or text file"
        ) from None


def _read_s3_object(bucket: str, key: str) -> bytes:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = boto3.client("s3").get_object(Bucket=bucket, Key=key)
        return bytes(response["Body"].read())
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise InvalidRequestError(
            "--ids_file", f"cannot read s3://{bucket}/{key} ({code})", "a readable s3:// object"
        ) from None
    except BotoCoreError as exc:
        raise InvalidRequestError(
            "--ids_file",
            f"cannot read s3://{bucket}/{key} ({type(exc).__name__})",
            "a readable s3:// object",
        ) from None
