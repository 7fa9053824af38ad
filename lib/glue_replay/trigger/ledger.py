"""The runs ledger as the operator's CLI reads it: every ledger table, with delta-rs (no JVM).

Each job writes its own ledger table, ``<warehouse>/runs/<stage>/<entity>``, so that every table
has one writer; a deployment from before that split has one table at ``<warehouse>/runs``, and
its history stays readable. :func:`ledger_tables` finds them all (a folder is a table when it has
a ``_delta_log/``), on the local filesystem or on S3; :func:`read_runs` reads the columns an
operator looks at from each (a column an older table lacks reads as ``None``) and returns one
list of rows::

    ledger_tables("/data/wh")
    -> ["/data/wh/runs/ingest/invoices", "/data/wh/runs/normalize/invoices"]

A killed attempt stays ``running`` in the ledger. :func:`with_abandoned` shows it as
``abandoned`` once a later attempt of the same request, stage and entity has started, or once
its Glue job run is known to have ended; the Glue side of that lives in
:mod:`glue_replay.trigger.status`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from glue_replay.aws import describe_aws_error, is_aws_error, is_s3_uri, parse_s3_uri
from glue_replay.errors import GlueReplayError
from glue_replay.request import REQUEST_ID_PATTERN

#: The stages that write a ledger table (``<warehouse>/runs/<stage>/<entity>``).
LEDGER_STAGES = ("ingest", "normalize", "publish")
RUNNING = "running"
#: Shown for a ``running`` row whose attempt is known to be over (and written by the jobs for
#: the dead attempts they find).
ABANDONED = "abandoned"
#: How ``glue-replay runs`` shortens an error to fit its table.
ERROR_WIDTH = 60

#: The ledger columns read as they are (``missing_ids`` is read as its length only: a replay of
#: 100,000 ids that the source lacks must not make ``runs`` fetch 100,000 strings).
_COLUMNS = (
    "run_id",
    "request_id",
    "stage",
    "entity",
    "job_name",
    "replay_mode",
    "status",
    "requested_by",
    "id_count",
    "started_at",
    "finished_at",
    "rows_read",
    "rows_written",
    "rows_unchanged",
    "rows_outboxed",
    "rows_quarantined",
    "note",
    "error",
    "rows_delivered",
    "rows_dead_lettered",
    "first_outbox_version",
    "last_outbox_version",
    "sink",
)
_DELTA_LOG = "_delta_log"


class LedgerUnavailableError(GlueReplayError):
    """The runs ledger exists but could not be read (permissions, network, a broken table)."""


@dataclass(frozen=True)
class LedgerRow:
    """The columns of one runs-ledger row that an operator looks at.

    A count is ``None`` when the row's table has no such column (``rows_unchanged`` in a table
    written before it existed). ``abandoned_because`` says why a ``running`` row is shown as
    ``abandoned``.
    """

    run_id: str
    stage: str
    entity: str
    job_name: str
    replay_mode: str
    status: str
    request_id: str = ""
    requested_by: str | None = None
    id_count: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    rows_read: int | None = None
    rows_written: int | None = None
    rows_unchanged: int | None = None
    rows_outboxed: int | None = None
    rows_quarantined: int | None = None
    missing_id_count: int = 0
    note: str | None = None
    error: str | None = None
    abandoned_because: str | None = None
    rows_delivered: int | None = None
    rows_dead_lettered: int | None = None
    first_outbox_version: int | None = None
    last_outbox_version: int | None = None
    sink: str | None = None

    @property
    def elapsed(self) -> timedelta | None:
        """How long the run took; ``None`` while it has not finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return utc(self.finished_at) - utc(self.started_at)

    def describe(self) -> str:
        """One line for ``glue-replay status``::

        ingest     invoices   succeeded  read 2, written 2, unchanged 0, outboxed 0,
        quarantined 0, missing ids 0  run jr_1 (started 2026-01-05 10:00:00Z, took 21s)
        """
        unchanged = "" if self.rows_unchanged is None else f"unchanged {self.rows_unchanged}, "
        counts = (
            f"read {self.rows_read or 0}, written {self.rows_written or 0}, {unchanged}"
            f"outboxed {self.rows_outboxed or 0}, quarantined {self.rows_quarantined or 0}, "
            f"missing ids {self.missing_id_count}"
        )
        if self.stage == "publish":
            counts = (
                f"delivered {self.rows_delivered or 0}, "
                f"dead-lettered {self.rows_dead_lettered or 0}"
            )
            if self.first_outbox_version is not None:
                counts += (
                    f", outbox versions {self.first_outbox_version}..{self.last_outbox_version}"
                )
            if self.sink:
                counts += f", to {self.sink}"
        timing = f"started {iso(self.started_at)}" if self.started_at else "not started"
        if self.elapsed is not None:
            timing += f", took {format_elapsed(self.elapsed)}"
        line = (
            f"{self.stage:<10} {self.entity:<10} {self.status:<10} {counts}  "
            f"run {self.run_id} ({timing})"
        )
        if self.abandoned_because:
            line += f"  abandoned: {self.abandoned_because}"
        if self.error:
            line += f"  error: {one_line(self.error)}"
        if self.note:
            line += f"  note: {one_line(self.note)}"
        return line


@dataclass(frozen=True)
class RunsFilter:
    """Which ledger rows to read: all of them by default, the newest ``last`` when given.

    ``request_id`` must be a valid request id and ``stage`` one of :data:`LEDGER_STAGES`; every
    value is still quoted as an SQL string.
    """

    request_id: str | None = None
    entity: str | None = None
    stage: str | None = None
    last: int | None = None

    def __post_init__(self) -> None:
        if self.request_id is not None and not REQUEST_ID_PATTERN.fullmatch(self.request_id):
            raise ValueError(f"not a request id: {self.request_id!r}")
        if self.last is not None and self.last < 1:
            raise ValueError(f"last must be 1 or more, not {self.last}")

    def admits_table(self, location: str, folder: str) -> bool:
        """False for a per-job table of another stage or entity (its rows need not be read)."""
        stage, _, entity = location[len(folder) :].strip("/").partition("/")
        if not entity:  # the legacy single table holds every stage and entity
            return True
        return (self.stage in (None, stage)) and (self.entity in (None, entity))

    def admits(self, row: LedgerRow) -> bool:
        return all(
            wanted is None or wanted == value
            for wanted, value in (
                (self.request_id, row.request_id),
                (self.entity, row.entity),
                (self.stage, row.stage),
            )
        )

    def where(self) -> str:
        conditions = [
            f"{column} = {sql_string(value)}"
            for column, value in (
                ("request_id", self.request_id),
                ("entity", self.entity),
                ("stage", self.stage),
            )
            if value is not None
        ]
        return f" WHERE {' AND '.join(conditions)}" if conditions else ""

    def describe(self) -> str:
        """``request fix-1, entity invoices`` (empty without a filter)."""
        parts = [
            f"{name} {value}"
            for name, value in (
                ("request", self.request_id),
                ("entity", self.entity),
                ("stage", self.stage),
            )
            if value is not None
        ]
        return ", ".join(parts)


def runs_folder(warehouse: str) -> str:
    """Where the ledger lives under ``warehouse`` (as ``glue_replay.tables.Warehouse`` puts it).

    ``"s3://lake/wh/"`` -> ``"s3://lake/wh/runs"``; a local folder is made absolute.
    """
    root = warehouse if "://" in warehouse else str(Path(warehouse).resolve())
    return f"{root.rstrip('/')}/runs"


def ledger_tables(warehouse: str, *, s3: Any | None = None) -> list[str]:
    """Every ledger table under ``warehouse``: the legacy single table first (when
    ``runs/_delta_log`` exists), then ``runs/<stage>/<entity>`` sorted by stage and entity.

    ``s3`` is the boto3 S3 client to list an ``s3://`` warehouse with (default: a new one).
    Raises :class:`LedgerUnavailableError` when the folder cannot be listed.
    """
    folder = runs_folder(warehouse)
    if not is_s3_uri(folder):
        return _local_tables(Path(folder))
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    try:
        return _s3_tables(s3, folder)
    except Exception as exc:
        if not is_aws_error(exc):
            raise
        raise LedgerUnavailableError(
            f"cannot list the runs ledger {folder} (AWS {describe_aws_error(exc)})"
        ) from None


def _local_tables(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    tables = [str(folder)] if (folder / _DELTA_LOG).is_dir() else []
    for stage in sorted(_subfolders(folder)):
        tables.extend(
            str(entity) for entity in sorted(_subfolders(stage)) if (entity / _DELTA_LOG).is_dir()
        )
    return tables


def _subfolders(folder: Path) -> Iterable[Path]:
    """Child folders, leaving out Delta's and Spark's own (``_delta_log``, ``.hidden``)."""
    return (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def _s3_tables(s3: Any, folder: str) -> list[str]:
    parsed = parse_s3_uri(folder)
    if parsed is None:
        raise LedgerUnavailableError(f"the warehouse {folder} is not a valid S3 URI")
    bucket, key = parsed
    children = _s3_children(s3, bucket, f"{key.strip('/')}/")
    tables = [folder] if _DELTA_LOG in children else []
    for stage in sorted(c for c in children if not c.startswith(("_", "."))):
        stage_key = f"{key.strip('/')}/{stage}/"
        for entity in sorted(_s3_children(s3, bucket, stage_key)):
            if entity.startswith(("_", ".")):
                continue
            if _DELTA_LOG in _s3_children(s3, bucket, f"{stage_key}{entity}/"):
                tables.append(f"{folder}/{stage}/{entity}")
    return tables


def _s3_children(s3: Any, bucket: str, prefix: str) -> set[str]:
    """The names of the "folders" directly under ``prefix`` (which ends with ``/``)."""
    names: set[str] = set()
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/"
    )
    for page in pages:
        for common in page.get("CommonPrefixes", []):
            names.add(common["Prefix"][len(prefix) :].rstrip("/"))
    return names


def read_runs(
    warehouse: str,
    runs_filter: RunsFilter | None = None,
    *,
    region: str | None = None,
    s3: Any | None = None,
) -> tuple[list[LedgerRow], int] | None:
    """The rows of every ledger table under ``warehouse`` that ``runs_filter`` admits, oldest
    first, and how many tables were read; ``None`` when there is no ledger table at all.

    With ``runs_filter.last``, only the newest ``last`` rows (each table gives at most that many,
    newest first, and the newest of them all are kept).
    """
    runs_filter = runs_filter or RunsFilter()
    try:
        from deltalake import DeltaTable, QueryBuilder
    except ImportError:
        raise LedgerUnavailableError(
            "reading the runs ledger needs the deltalake package: pip install 'glue-replay[cli]'"
        ) from None

    folder = runs_folder(warehouse)
    tables = ledger_tables(warehouse, s3=s3)
    if not tables:
        return None
    options = {"AWS_REGION": region} if region and is_s3_uri(folder) else {}
    rows: list[LedgerRow] = []
    for location in tables:
        if not runs_filter.admits_table(location, folder):
            continue
        try:
            table = DeltaTable(location, storage_options=options)
            present = {f.name for f in table.schema().fields}
            result = (
                QueryBuilder()
                .register("runs", table)
                .execute(_select(present, runs_filter))
                .read_all()
            )
        except Exception as exc:  # delta-rs raises its own and OS errors; one line for the user
            raise LedgerUnavailableError(
                f"cannot read the runs ledger {location} "
                f"({type(exc).__name__}: {one_line(str(exc))})"
            ) from None
        rows.extend(row for row in _rows(result, present) if runs_filter.admits(row))
    rows.sort(key=_chronological)
    if runs_filter.last is not None:
        rows = rows[-runs_filter.last :]
    return rows, len(tables)


def _select(present: set[str], runs_filter: RunsFilter) -> str:
    columns = [f'"{name}"' for name in _COLUMNS if name in present]
    if "missing_ids" in present:
        columns.append('cardinality("missing_ids") AS missing_id_count')
    query = f"SELECT {', '.join(columns)} FROM runs"
    if {"request_id", "entity", "stage"} <= present:
        query += runs_filter.where()
    if runs_filter.last is not None and "started_at" in present:
        query += f" ORDER BY started_at DESC NULLS LAST LIMIT {int(runs_filter.last)}"
    return query


def _rows(result: Any, present: set[str]) -> Iterable[LedgerRow]:
    read = [name for name in _COLUMNS if name in present]
    if "missing_ids" in present:
        read.append("missing_id_count")
    columns = {name: result.column(name).to_pylist() for name in read}
    for index in range(result.num_rows):
        values: dict[str, Any] = {name: columns[name][index] for name in read}
        for name in ("run_id", "stage", "entity", "job_name", "replay_mode", "status"):
            values[name] = values.get(name) or ""
        values["request_id"] = values.get("request_id") or ""
        values["missing_id_count"] = int(values.get("missing_id_count") or 0)
        yield LedgerRow(**values)


def _chronological(row: LedgerRow) -> tuple[datetime, str, str, str]:
    started = utc(row.started_at) if row.started_at else datetime.min.replace(tzinfo=UTC)
    return started, row.stage, row.entity, row.run_id


def sql_string(value: str) -> str:
    """``O'Brien`` -> ``'O''Brien'``: a value as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


# -- attempts that died --------------------------------------------------------------------------


def with_abandoned(
    rows: Sequence[LedgerRow], ended_runs: Mapping[str, str] | None = None
) -> list[LedgerRow]:
    """``rows`` with each ``running`` row whose attempt is over shown as ``abandoned``.

    An attempt is over when a later attempt of the same request, stage and entity has started
    (it appears in ``rows``), or when its run id is in ``ended_runs`` (run id -> the final Glue
    state of that job run)::

        running normalize invoices fix-1 run jr_1 (10:00), running ... run jr_2 (10:05)
        -> abandoned ... jr_1 ("attempt jr_2 of the same request started later"), running ... jr_2
    """
    ended_runs = ended_runs or {}
    attempts: dict[tuple[str, str, str], list[LedgerRow]] = {}
    for row in rows:
        attempts.setdefault((row.request_id, row.stage, row.entity), []).append(row)
    shown: list[LedgerRow] = []
    for row in rows:
        if row.status != RUNNING:
            shown.append(row)
            continue
        later = _later_attempt(row, attempts[(row.request_id, row.stage, row.entity)])
        if later is not None:
            reason = f"attempt {later.run_id} of the same request started later"
        elif row.run_id in ended_runs:
            reason = f"its Glue job run ended {ended_runs[row.run_id]}"
        else:
            shown.append(row)
            continue
        shown.append(dataclasses.replace(row, status=ABANDONED, abandoned_because=reason))
    return shown


def _later_attempt(row: LedgerRow, attempts: Sequence[LedgerRow]) -> LedgerRow | None:
    """The first attempt that started after ``row``'s, if any."""
    if row.started_at is None:
        return None
    started = utc(row.started_at)
    later = [
        other
        for other in attempts
        if other.run_id != row.run_id
        and other.started_at is not None
        and utc(other.started_at) > started
    ]
    return min(later, key=_chronological) if later else None


# -- the table of ``glue-replay runs`` ------------------------------------------------------------

#: (heading, right-aligned) of each column of :func:`format_runs_table`.
_TABLE_COLUMNS = (
    ("started", False),
    ("stage", False),
    ("entity", False),
    ("request", False),
    ("mode", False),
    ("status", False),
    ("read", True),
    ("written", True),
    ("unchanged", True),
    ("outboxed", True),
    ("quarantined", True),
    ("missing", True),
    ("took", True),
    ("error", False),
)


def format_runs_table(rows: Sequence[LedgerRow]) -> list[str]:
    """The lines of a table of ``rows`` in the given order, a heading line first; a count the
    row's table lacks is left empty, and so is ``took`` for a run that has not finished::

        started               stage   entity     request  mode  status     read  ...  took  error
        2026-01-05 10:00:00Z  ingest  invoices   fix-1    full  succeeded     3  ...   21s
    """
    cells = [[heading for heading, _ in _TABLE_COLUMNS]]
    cells.extend(_cells(row) for row in rows)
    widths = [max(len(line[i]) for line in cells) for i in range(len(_TABLE_COLUMNS))]
    return [
        "  ".join(
            value.rjust(width) if right else value.ljust(width)
            for value, width, (_, right) in zip(line, widths, _TABLE_COLUMNS, strict=True)
        ).rstrip()
        for line in cells
    ]


def _cells(row: LedgerRow) -> list[str]:
    def count(value: int | None) -> str:
        return "" if value is None else str(value)

    return [
        iso(row.started_at) if row.started_at else "",
        row.stage,
        row.entity,
        row.request_id,
        row.replay_mode,
        row.status,
        count(row.rows_read),
        count(row.rows_written),
        count(row.rows_unchanged),
        count(row.rows_outboxed),
        count(row.rows_quarantined),
        str(row.missing_id_count),
        format_elapsed(row.elapsed) if row.elapsed is not None else "",
        one_line(row.error, ERROR_WIDTH) if row.error else "",
    ]


# -- formatting ---------------------------------------------------------------------------------


def format_elapsed(delta: timedelta) -> str:
    """``5s``, ``3m 05s``, ``1h 02m``."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def utc(moment: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken to be UTC, as the ledger stores it)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime | None) -> str:
    """``2026-01-05 10:00:00Z``."""
    assert moment is not None
    return utc(moment).strftime("%Y-%m-%d %H:%M:%SZ")


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters (``...`` where it was cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
