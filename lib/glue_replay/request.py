"""The replay request: one typed model, built and validated in one place, with no Spark.

Every boundary turns what it receives into one mapping of canonical field names to text —
a job's ``sys.argv`` (:mod:`glue_replay.arguments`), a Glue workflow run's properties, the
Lambda's JSON event, the CLI's flags — and hands it to :func:`build_job_arguments`. Validation
happens here and only here; a refusal is an :class:`~glue_replay.errors.InvalidRequestError`
naming the canonical field, which each boundary renders in its own spelling.

    >>> args = build_job_arguments({"replay_mode": "targeted", "ids": " 7,3,7 "})
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
from types import MappingProxyType
from urllib.parse import urlsplit

from glue_replay.aws import aws_error_code, is_s3_uri, parse_s3_uri, read_s3_object
from glue_replay.errors import InvalidRequestError, ref

ReadS3Object = Callable[[str, str], bytes]


class ReplayMode(StrEnum):
    """How a run selects records. ``BAU`` is the default incremental run (no ``replay_mode``)."""

    BAU = "bau"
    FULL = "full"
    SINCE = "since"
    TARGETED = "targeted"

    @property
    def is_replay(self) -> bool:
        return self is not ReplayMode.BAU


#: The modes a replay trigger may ask for (BAU is the schedule's, never a replay).
REPLAY_MODES: tuple[ReplayMode, ...] = tuple(m for m in ReplayMode if m.is_replay)
REPLAY_MODES_ACCEPTED = f"full, since or targeted (omit {ref('replay_mode')} for the BAU run)"


@dataclass(frozen=True)
class IdRule:
    """Which record ids an entity accepts: a full-match regex and its help text.

    Requests are validated against it before anything starts, so an id the source would refuse
    (or one that could change an HTTP query or a SQL predicate) never gets further.
    """

    pattern: str
    help: str

    def __post_init__(self) -> None:
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"IdRule pattern {self.pattern!r} is not a regex: {exc}") from None

    def check(self, value: str, field_name: str, where: str = "") -> str:
        if not re.fullmatch(self.pattern, value):
            raise InvalidRequestError(field_name, f"{where}{value!r} is not a valid id", self.help)
        return value


#: Ids safe in an HTTP query or a SQL predicate: letters, digits and ``_ . : @ + -``.
DEFAULT_IDS = IdRule(
    r"[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,127}",
    "1-128 letters, digits or _ . : @ + -, starting with a letter or digit "
    "(no spaces, quotes, semicolons or slashes)",
)
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
REQUEST_ID_ACCEPTED = "1-128 letters, digits or _ . : -, starting with a letter or digit"
DEFAULT_WAREHOUSE = "./warehouse"
DEFAULT_SOURCE_URL = "http://127.0.0.1:8765"
DEFAULT_ID_COLUMN = "id"

#: The replay fields (DESIGN §4): overridable per run on Glue, and the only ones a Glue
#: workflow run's properties may set.
REPLAY_FIELDS = (
    "replay_mode",
    "date",
    "until",
    "ids",
    "ids_file",
    "id_column",
    "request_id",
    "dry_run",
    "requested_by",
)
#: Deployment settings every job reads: fixed per deployment, never per request.
SETTING_FIELDS = ("warehouse", "source_url", "source_token_secret")
#: Glue's own arguments that a job reads (never required, never refused).
GLUE_CONTEXT_FIELDS = ("JOB_NAME", "JOB_RUN_ID", "WORKFLOW_NAME", "WORKFLOW_RUN_ID", "mode")

_DATE_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SECRET_NAME = re.compile(r"(arn:aws[\w-]*:secretsmanager:[\w-]+:\d{12}:secret:)?[\w/+=.@-]{1,512}")
_PRINCIPAL = re.compile(r"[\w.@:+/=,-]{1,128}")
_SETTING_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_COLUMN_NAME = re.compile(r"[^\s,\"']{1,128}")
_GLUE_ATTEMPT_SUFFIX = re.compile(r"_attempt_\d+$")
IDS_FILE_ACCEPTED = (
    "a CSV whose first line is a header naming the id column, or one id a line with no header"
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
        """Exclusive end of a ``since`` window as a UTC instant, if ``until`` was given."""
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

    def as_fields(self) -> dict[str, str]:
        """The request as canonical fields, only the set ones: what a trigger sends to a job.

        ``ids`` are sent inline; a trigger that uploads them replaces ``ids`` by ``ids_file``.
        """
        fields = {"replay_mode": self.mode.value}
        if self.since:
            fields["date"] = self.since.isoformat()
        if self.until:
            fields["until"] = self.until.isoformat()
        if self.ids:
            fields["ids"] = ",".join(self.ids)
        fields["request_id"] = self.request_id
        if self.dry_run:
            fields["dry_run"] = "true"
        return fields


@dataclass(frozen=True)
class JobArguments:
    """Everything a job run needs besides Spark: the request, where the tables are, who asked.

    ``settings`` holds the extra deployment settings a pipeline declared (``jdbc_url``, ...),
    as given: the pipeline's source validates them.
    """

    request: ReplayRequest
    warehouse: str = DEFAULT_WAREHOUSE
    source_url: str = DEFAULT_SOURCE_URL
    job_name: str = "local"
    run_id: str = field(default_factory=lambda: f"local-{uuid.uuid4().hex[:12]}")
    requested_by: str = "unknown"
    #: Name or ARN of the Secrets Manager secret holding the source's token (never the token).
    source_token_secret: str | None = None
    settings: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

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


def build_job_arguments(
    options: Mapping[str, str],
    *,
    ids: IdRule = DEFAULT_IDS,
    settings: Sequence[str] = (),
    today: date | None = None,
    environ: Mapping[str, str] | None = None,
    read_s3_object: ReadS3Object | None = None,
) -> JobArguments:
    """Validate a request given as canonical fields and build the job's arguments.

    ``options`` maps field names (``replay_mode``, ``date``, ``ids``, ..., the deployment
    settings and Glue's ``JOB_RUN_ID``/``WORKFLOW_RUN_ID``/``mode``) to text; values are trimmed
    and an empty value counts as absent. ``ids`` is the entity's id rule; ``settings`` the extra
    settings the pipeline declared. Raises :class:`InvalidRequestError` naming the first field
    that is wrong; reads nothing but an ``ids_file``.
    """
    stripped = {k: v.strip() for k, v in options.items() if v is not None}
    values = {k: v for k, v in stripped.items() if v != ""}
    today = today or datetime.now(UTC).date()
    request = build_request(values, ids=ids, today=today, read_s3_object=read_s3_object)
    env = environ if environ is not None else _default_environ()
    extra: dict[str, str] = {}
    for name in settings:
        if not _SETTING_NAME.fullmatch(name):
            raise ValueError(f"pipeline setting {name!r} is not a lower_snake_case name")
        if name in values:
            extra[name] = values[name]
    return JobArguments(
        request=request,
        warehouse=parse_warehouse(values.get("warehouse", DEFAULT_WAREHOUSE)),
        source_url=_parse_source_url(values.get("source_url", DEFAULT_SOURCE_URL)),
        job_name=values.get("JOB_NAME", "local"),
        run_id=values.get("JOB_RUN_ID") or f"local-{uuid.uuid4().hex[:12]}",
        requested_by=_parse_requested_by(values.get("requested_by"), env.get("USER")),
        source_token_secret=_parse_secret_name(values.get("source_token_secret")),
        settings=MappingProxyType(extra),
    )


def build_request(
    values: Mapping[str, str],
    *,
    ids: IdRule = DEFAULT_IDS,
    today: date | None = None,
    read_s3_object: ReadS3Object | None = None,
) -> ReplayRequest:
    """The :class:`ReplayRequest` of already trimmed, non-empty canonical fields."""
    today = today or datetime.now(UTC).date()
    mode = _parse_mode(values)
    since, until = _parse_window(values, mode, today)
    record_ids, ids_file = _parse_ids(values, mode, ids, read_s3_object)
    return ReplayRequest(
        mode=mode,
        request_id=_parse_request_id(values),
        since=since,
        until=until,
        ids=record_ids,
        ids_file=ids_file,
        dry_run=parse_bool("dry_run", values.get("dry_run", "false")),
    )


def parse_ids(text: str, *, ids: IdRule = DEFAULT_IDS, field_name: str = "ids") -> tuple[str, ...]:
    """Split a comma-separated id list: trimmed, deduplicated in order, validated."""
    found = dict.fromkeys(ids.check(v.strip(), field_name) for v in text.split(",") if v.strip())
    if not found:
        raise InvalidRequestError(field_name, f"no ids in {text!r}", "comma-separated ids: 1,2,3")
    return tuple(found)


def read_ids_file(
    location: str,
    *,
    ids: IdRule = DEFAULT_IDS,
    id_column: str = DEFAULT_ID_COLUMN,
    read_s3_object: ReadS3Object | None = None,
) -> tuple[str, ...]:
    """The ids of an ids file, a local path or an ``s3://`` URI: the one reader of jobs and CLI.

    See :func:`ids_from_text` for the accepted formats.
    """
    return ids_from_text(
        _read_ids_file(location, read_s3_object), ids=ids, id_column=id_column, location=location
    )


def ids_from_text(
    text: str,
    *,
    ids: IdRule = DEFAULT_IDS,
    id_column: str = DEFAULT_ID_COLUMN,
    location: str = "the ids file",
) -> tuple[str, ...]:
    """Ids of an ids file's text: trimmed, deduplicated in order, validated.

    Accepted: a CSV whose first line is a header with a cell exactly ``id_column`` (the ids are
    that column), or a plain list with one id a line and no header. A line is never guessed to
    be a header: a file with several columns and no such header is refused.

        "name,id\\nAnn,7\\nBob,3\\n" -> ("7", "3")        "7\\n3\\n7\\n" -> ("7", "3")
    """
    field_name = "ids_file"
    # Universal newlines: CRLF and a bare CR (old Mac exports) end a row like LF does.
    reader = csv.reader(io.StringIO(text, newline=None))
    try:
        # (line number in the file, row): blank lines are skipped but still counted.
        numbered = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise InvalidRequestError(
            field_name, f"{location} is not a readable CSV ({exc})", IDS_FILE_ACCEPTED
        ) from None
    if not numbered:
        raise InvalidRequestError(field_name, f"no ids in {location}", IDS_FILE_ACCEPTED)
    header = [cell.strip() for cell in numbered[0][1]]
    if id_column in header:
        column, rows = header.index(id_column), numbered[1:]
    else:
        if len(header) > 1:
            raise InvalidRequestError(
                field_name,
                f"{location} has no {id_column!r} column (header: {', '.join(header)})",
                f"{IDS_FILE_ACCEPTED} (name the column with {ref('id_column')})",
            )
        wide = next(((line, row) for line, row in numbered if len(row) > 1), None)
        if wide is not None:
            raise InvalidRequestError(
                field_name,
                f"{location} row {wide[0]} has {len(wide[1])} columns but the first line is not "
                f"a header with an {id_column!r} column",
                f"{IDS_FILE_ACCEPTED} (name the column with {ref('id_column')})",
            )
        column, rows = 0, numbered
    found: dict[str, None] = {}
    for line, row in rows:
        value = row[column].strip() if column < len(row) else ""
        if value:
            found[ids.check(value, field_name, f"{location} row {line}: ")] = None
    if not found:
        raise InvalidRequestError(field_name, f"no ids in {location}", IDS_FILE_ACCEPTED)
    return tuple(found)


# -- one function per decision -------------------------------------------------------------


def _parse_mode(values: Mapping[str, str]) -> ReplayMode:
    raw = values.get("replay_mode")
    if raw is None:
        glue_mode = values.get("mode", "").lower()
        if glue_mode in {m.value for m in REPLAY_MODES}:
            raise InvalidRequestError(
                "replay_mode",
                f"--mode {glue_mode} was given, but --mode is reserved by AWS Glue",
                f"{ref('replay_mode')} {glue_mode}",
            )
        return ReplayMode.BAU
    try:
        return ReplayMode(raw.lower())
    except ValueError:
        raise InvalidRequestError(
            "replay_mode", f"{raw!r} is not a replay mode", REPLAY_MODES_ACCEPTED
        ) from None


def _parse_window(
    values: Mapping[str, str], mode: ReplayMode, today: date
) -> tuple[date | None, date | None]:
    if mode is not ReplayMode.SINCE:
        for name in ("date", "until"):
            if name in values:
                raise InvalidRequestError(
                    name,
                    f"is only valid with {ref('replay_mode')} since (mode is {mode.value})",
                    f"{ref('replay_mode')} since {ref(name)} YYYY-MM-DD, or no {ref(name)}",
                )
        return None, None
    if "date" not in values:
        raise InvalidRequestError(
            "date", f"is required with {ref('replay_mode')} since", "a UTC date YYYY-MM-DD"
        )
    since = _parse_date("date", values["date"])
    if since > today:
        raise InvalidRequestError(
            "date",
            f"{since.isoformat()} is in the future (today is {today.isoformat()} UTC)",
            "a date on or before today",
        )
    if "until" not in values:
        return since, None
    until = _parse_date("until", values["until"])
    if until <= since:
        raise InvalidRequestError(
            "until",
            f"{until.isoformat()} is not after {ref('date')} {since.isoformat()}",
            f"a date after {ref('date')} (the window is [date, until))",
        )
    return since, until


def _parse_date(field_name: str, raw: str) -> date:
    accepted = "a UTC date YYYY-MM-DD, e.g. 2026-01-31"
    if not _DATE_SHAPE.fullmatch(raw):
        raise InvalidRequestError(field_name, f"{raw!r} is not a date", accepted)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequestError(field_name, f"{raw!r} is not a calendar date", accepted) from None


def _parse_ids(
    values: Mapping[str, str],
    mode: ReplayMode,
    rule: IdRule,
    read_s3_object: ReadS3Object | None,
) -> tuple[tuple[str, ...], str | None]:
    if mode is not ReplayMode.TARGETED:
        for name in ("ids", "ids_file", "id_column"):
            if name in values:
                raise InvalidRequestError(
                    name,
                    f"is only valid with {ref('replay_mode')} targeted (mode is {mode.value})",
                    f"{ref('replay_mode')} targeted {ref(name)} ..., or no {ref(name)}",
                )
        return (), None
    if "ids" in values and "ids_file" in values:
        raise InvalidRequestError(
            "ids_file",
            f"was given together with {ref('ids')}",
            f"either {ref('ids')} or {ref('ids_file')}, not both",
        )
    if "id_column" in values and "ids_file" not in values:
        raise InvalidRequestError(
            "id_column",
            f"is only valid with {ref('ids_file')}",
            f"{ref('ids_file')} FILE {ref('id_column')} NAME",
        )
    if "ids" in values:
        return parse_ids(values["ids"], ids=rule), None
    if "ids_file" in values:
        column = values.get("id_column", DEFAULT_ID_COLUMN)
        if not _COLUMN_NAME.fullmatch(column):
            raise InvalidRequestError(
                "id_column", f"{column!r} is not a column name", "a CSV header cell, e.g. id"
            )
        location = values["ids_file"]
        return read_ids_file(
            location, ids=rule, id_column=column, read_s3_object=read_s3_object
        ), location
    raise InvalidRequestError(
        "ids",
        f"{ref('replay_mode')} targeted needs ids",
        f"{ref('ids')} 1,2,3 or {ref('ids_file')} PATH|s3://bucket/key.csv",
    )


def _parse_request_id(values: Mapping[str, str]) -> str:
    raw = values.get("request_id")
    if raw is None:
        # Every job of one Glue workflow run shares its request; a Glue retry runs as
        # <JOB_RUN_ID>_attempt_<n>, and stripping the suffix keeps the request too.
        glue_run_id = values.get("WORKFLOW_RUN_ID") or values.get("JOB_RUN_ID")
        raw = _GLUE_ATTEMPT_SUFFIX.sub("", glue_run_id) if glue_run_id else uuid.uuid4().hex
    if not REQUEST_ID_PATTERN.fullmatch(raw):
        raise InvalidRequestError(
            "request_id", f"{raw!r} is not a valid request id", REQUEST_ID_ACCEPTED
        )
    return raw


def parse_bool(field_name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    raise InvalidRequestError(field_name, f"{raw!r} is not a boolean", "true or false")


def parse_warehouse(raw: str) -> str:
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme in {"s3", "s3a"}:
        if parse_s3_uri(raw) is None:
            raise InvalidRequestError(
                "warehouse", f"{raw!r} is not an S3 URI", "s3://bucket/prefix or a local folder"
            )
        return raw.rstrip("/")
    if scheme not in {"", "file"}:
        raise InvalidRequestError(
            "warehouse", f"scheme {scheme!r} is not supported", "s3://bucket/prefix or a folder"
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
        raise InvalidRequestError("source_url", f"{shown} is not a URL", accepted) from None
    if parts.username is not None or parts.password is not None:
        raise InvalidRequestError(
            "source_url",
            "contains credentials, which must not travel in job arguments",
            "a URL without user:password (keep the token in Secrets Manager)",
        )
    if parts.scheme not in {"http", "https"} or not parts.hostname or not port_ok:
        raise InvalidRequestError("source_url", f"{shown} is not an HTTP URL", accepted)
    if parts.query or parts.fragment:
        raise InvalidRequestError(
            "source_url", "has a query or fragment (not shown: it may hold a token)", accepted
        )
    return raw.rstrip("/")


def _parse_requested_by(raw: str | None, login: str | None) -> str:
    if raw is None:
        # The login name is a default, not an argument: an odd one is dropped, never refused.
        return login if login and _PRINCIPAL.fullmatch(login) else "unknown"
    if not _PRINCIPAL.fullmatch(raw):
        raise InvalidRequestError(
            "requested_by", f"{raw!r} is not a principal name", "a user or role name"
        )
    return raw


def _parse_secret_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not _SECRET_NAME.fullmatch(raw):
        raise InvalidRequestError(
            "source_token_secret",
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


def _read_ids_file(location: str, reader: ReadS3Object | None) -> str:
    if is_s3_uri(location):
        parsed = parse_s3_uri(location)
        if parsed is None or not parsed[1]:
            raise InvalidRequestError(
                "ids_file", f"{location!r} is not an S3 object URI", "s3://bucket/key.csv"
            )
        bucket, key = parsed
        try:
            body = reader(bucket, key) if reader is not None else read_s3_object(bucket, key)
        except InvalidRequestError:
            raise
        except Exception as exc:
            raise InvalidRequestError(
                "ids_file",
                f"cannot read s3://{bucket}/{key} ({aws_error_code(exc)})",
                "a readable s3:// object",
            ) from None
    else:
        path = Path(location)
        shown = repr(location) if "@" not in location else "(path not shown: it has an @)"
        if not path.is_file():
            raise InvalidRequestError(
                "ids_file", f"no such file {shown}", "a readable local path or s3:// URI"
            )
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise InvalidRequestError(
                "ids_file", f"cannot read {shown} ({exc.strerror})", "a readable local file"
            ) from None
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRequestError(
            "ids_file", f"{location} is not UTF-8 text", "a UTF-8 CSV or text file"
        ) from None
