"""A relational database as a source: a table (or a query) read by Spark's JDBC data source.

What each replay mode reads, in SQL terms (``ts`` is the update column, ``key`` the id column)::

    full       SELECT ... FROM relation                    num_partitions queries over ranges
                                                           of the partition column, in parallel
    since      SELECT ... FROM relation                    num_partitions queries over ranges
               WHERE ts >= ? AND ts < ?                    of the window, in parallel
    BAU        the same predicate over the BAU window      one query (increments are small)
    targeted   SELECT ... FROM relation WHERE key IN (...) one query per batch of
                                                           ``ids_batch_size`` ids, in parallel

Nothing is written as SQL text from a request: predicates are Spark filters that the JDBC data
source pushes down with the dialect's own literal quoting (``'O''Brien'``), ids reach it only
after the entity's id rule (and, if given, the source's own) accepted them, and identifiers
(table and column names) must match :data:`IDENTIFIER` and are double-quoted. A query given to
the source is the pipeline's code, never a request's.

Credentials come from a Secrets Manager secret (JSON ``{"username": ..., "password": ...}``) on
Glue, or from ``$GLUE_REPLAY_JDBC_USER`` / ``$GLUE_REPLAY_JDBC_PASSWORD`` locally; they are read
at the first read, so a missing or wrong one fails the run with a ledger row. They never appear
in the URL (a URL holding any is refused), a log line, an error or a plan: Spark redacts the
``password`` option in every plan string.

Connection, authentication, unknown table or column: the read fails before anything is
appended, with one :class:`~glue_replay.errors.SourceError` line (the SQLSTATE and the driver's
first message line).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import reduce
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from glue_replay.errors import InvalidRequestError, PipelineDefinitionError, SourceError
from glue_replay.request import IdRule
from glue_replay.secrets import read_secret_string
from glue_replay.sources.base import Source, SourceSettings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType

log = logging.getLogger(__name__)

#: A table, schema or column name the source accepts: a plain SQL identifier.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
JDBC_USER_ENV = "GLUE_REPLAY_JDBC_USER"
JDBC_PASSWORD_ENV = "GLUE_REPLAY_JDBC_PASSWORD"  # noqa: S105 - a variable name
#: How the JSON payload renders timestamps when the source builds it: ISO-8601 UTC, microseconds.
PAYLOAD_JSON_OPTIONS = {
    "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "timeZone": "UTC",
    "ignoreNullFields": "false",
}
#: URL parts that carry credentials (``//user:pw@host``, ``?password=``, ``;user=``).
_URL_USERINFO = re.compile(r"//[^/?#;]*@")
_URL_CREDENTIAL_PARAMETER = re.compile(r"[?&;](user|username|password|pwd)=", re.IGNORECASE)
_SQLSTATE_CLASSES = {
    "08": "could not connect",
    "28": "the database refused the credentials",
    "3D": "unknown database",
    "42": "the query was refused (unknown table or column, or no privilege)",
}
_MAX_MESSAGE = 300
_ALIAS = "glue_replay_source"


@dataclass(frozen=True)
class JdbcCredentials:
    """A database user and its password (never shown: ``repr`` hides it)."""

    user: str
    password: str = field(repr=False)


CredentialsProvider = Callable[[], JdbcCredentials]


def jdbc_credentials(
    settings: SourceSettings,
    *,
    user_env: str = JDBC_USER_ENV,
    password_env: str = JDBC_PASSWORD_ENV,
) -> CredentialsProvider:
    """Where a deployment's database credentials come from, read when first asked for.

    The ``--source_token_secret`` secret when one is configured (JSON with ``username`` and
    ``password``), else the environment variables ``user_env`` and ``password_env``.
    """

    def resolve() -> JdbcCredentials:
        if settings.token_secret is not None:
            return read_secret_credentials(settings.token_secret, settings.secrets_client)
        user = os.environ.get(user_env, "").strip()
        if not user:
            raise SourceError(
                "no database credentials: configure --source_token_secret (a Secrets Manager "
                f'secret holding {{"username": ..., "password": ...}}) or set ${user_env} and '
                f"${password_env}"
            )
        return JdbcCredentials(user, os.environ.get(password_env, ""))

    return resolve


def read_secret_credentials(secret: str, client: Any = None) -> JdbcCredentials:
    """The credentials in Secrets Manager secret ``secret``: JSON ``{"username", "password"}``.

    Errors name the secret and AWS's error code, never the secret's value.
    """
    value = read_secret_string(secret, client, SourceError)
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if (
        not isinstance(parsed, dict)
        or not isinstance(parsed.get("username"), str)
        or not isinstance(parsed.get("password"), str)
    ):
        raise SourceError(
            f'secret {secret} is not JSON with string "username" and "password" keys'
        ) from None
    return JdbcCredentials(parsed["username"], parsed["password"])


def checked_jdbc_url(url: str, setting: str = "jdbc_url") -> str:
    """``url`` if it is a JDBC URL without credentials; else an :class:`InvalidRequestError`
    naming ``setting`` (the URL itself is not repeated: it may hold a password)."""
    accepted = (
        "a JDBC URL without credentials, e.g. jdbc:postgresql://db.example.com:5432/shop "
        f"(credentials come from --source_token_secret, or ${JDBC_USER_ENV} and "
        f"${JDBC_PASSWORD_ENV} locally)"
    )
    url = url.strip()
    if not re.fullmatch(r"jdbc:[a-z0-9]+:\S+", url):
        raise InvalidRequestError(setting, "is not a JDBC URL", accepted)
    if _URL_USERINFO.search(url) or _URL_CREDENTIAL_PARAMETER.search(url):
        raise InvalidRequestError(setting, "holds credentials (a user or a password)", accepted)
    return url


def quoted_identifier(name: str, what: str = "identifier") -> str:
    """``schema.table`` -> ``"schema"."table"``, each part checked against :data:`IDENTIFIER`.

    Quoted names are case-sensitive: give them as the database's catalog spells them
    (PostgreSQL folds unquoted names to lower case).
    """
    parts = name.split(".")
    if not 1 <= len(parts) <= 2 or not all(IDENTIFIER.fullmatch(part) for part in parts):
        raise PipelineDefinitionError(
            f"JDBC {what} {name!r} is not a plain SQL name ([A-Za-z_][A-Za-z0-9_]*, "
            "optionally schema-qualified)"
        )
    return ".".join(f'"{part}"' for part in parts)


class JdbcSource(Source):
    """A :class:`~glue_replay.Source` over one table or query of a JDBC database.

    * ``table`` (``"shop.invoices"``) or ``query`` (SQL text of the pipeline's own, read as a
      derived table) is the relation; ``name`` labels it in logs and errors;
    * ``id_column`` is the record's id (text, or an integer: ids are then compared as integers),
      ``updated_column`` its update time (a timestamp column) for since and BAU reads;
    * ``payload_column``: a column holding the record as JSON text, built by the database
      (PostgreSQL's ``jsonb_build_object``, ...); without one the payload is the JSON of every
      column of the relation, with decimals as strings (no float drift downstream) and
      timestamps as ISO-8601 UTC;
    * ``partition_column`` (numeric, date or timestamp; default ``id_column``) with
      ``num_partitions`` splits a full read into parallel range queries; ``bounds`` sets their
      stride (default: ``min``/``max`` of the column, one small query). Rows outside the bounds
      are still read, by the first and last partitions. A since read splits its window of the
      update column the same way;
    * ``ids_batch_size`` bounds a targeted read's ``IN`` lists; ``ids`` is an extra id rule the
      source checks before any query, whatever the entity's;
    * ``properties`` are the driver's connection properties (timeouts, read-only, ...).
    """

    def __init__(
        self,
        url: str,
        *,
        credentials: JdbcCredentials | CredentialsProvider,
        table: str | None = None,
        query: str | None = None,
        name: str | None = None,
        id_column: str = "id",
        updated_column: str = "updated_at",
        payload_column: str | None = None,
        partition_column: str | None = None,
        num_partitions: int = 8,
        bounds: tuple[Any, Any] | None = None,
        ids_batch_size: int = 1000,
        fetch_size: int = 10_000,
        driver: str = "org.postgresql.Driver",
        properties: Mapping[str, str] | None = None,
        ids: IdRule | None = None,
    ) -> None:
        if (table is None) == (query is None):
            raise PipelineDefinitionError("JdbcSource needs exactly one of table= or query=")
        if table is not None:
            self.relation = quoted_identifier(table, "table")
        else:
            assert query is not None
            body = query.strip().rstrip(";").strip()
            if not body or ";" in body:
                raise PipelineDefinitionError("JdbcSource query= must be one SQL statement")
            self.relation = f"({body}) AS {_ALIAS}"
        self.name = name or table or "query"
        self.url = checked_jdbc_url(url)
        self.id_column = _checked_column(id_column)
        self.updated_column = _checked_column(updated_column)
        self.payload_column = None if payload_column is None else _checked_column(payload_column)
        self.partition_column = _checked_column(partition_column or id_column)
        for label, number in (
            ("num_partitions", num_partitions),
            ("ids_batch_size", ids_batch_size),
            ("fetch_size", fetch_size),
        ):
            if number < 1:
                raise PipelineDefinitionError(f"JdbcSource {label} must be >= 1, got {number}")
        self.num_partitions = num_partitions
        self.bounds = bounds
        self.ids_batch_size = ids_batch_size
        self.fetch_size = fetch_size
        self.driver = driver
        self.properties = MappingProxyType(dict(properties or {}))
        if any(key.lower() in ("user", "password") for key in self.properties):
            raise PipelineDefinitionError("JdbcSource properties may not hold credentials")
        self.id_rule = ids
        self._credentials = credentials
        self._resolved: JdbcCredentials | None = None

    @property
    def description(self) -> str:
        return f"JDBC {self.name} at {self.url.split('?')[0].split(';')[0]}"

    # -- the four reads ------------------------------------------------------------------

    def read_full(self, spark: SparkSession) -> DataFrame:
        """Every row, read by ``num_partitions`` range queries over the partition column."""
        with self._errors():
            relation = self._relation(spark)
            bounds = self.bounds or self._min_max(spark)
            return self._records(self._partitioned(relation, self.partition_column, bounds))

    def read_since(self, spark: SparkSession, start: datetime, end: datetime | None) -> DataFrame:
        """Rows updated in ``[start, end)``: the predicate runs in the database, and the window
        is split into ``num_partitions`` time ranges read in parallel (ranges of the window,
        not of the ids: a recent window's rows would all sit in the last id range)."""
        with self._errors():
            relation = self._relation(spark)
            window = self._window(relation, start, end)
            bounds = (_naive_utc(start), _naive_utc(end or datetime.now(UTC)))
            return self._records(
                self._partitioned(relation, self.updated_column, bounds).where(window)
            )

    def read_bau(self, spark: SparkSession, start: datetime, end: datetime) -> DataFrame:
        """A BAU increment: the since predicate, as one query (increments are small)."""
        with self._errors():
            relation = self._relation(spark)
            return self._records(relation.where(self._window(relation, start, end)))

    def read_ids(self, spark: SparkSession, ids: DataFrame) -> DataFrame:
        """Exactly the rows of the given ids, one ``IN`` query per batch of ids.

        The request's ids are few (they came from the request, on the driver) and are gathered
        here; the batches are sorted, so the same request reads the same batches. They are read
        as one frame (a union: one task per batch), appended in one commit.
        """
        wanted = [str(row[0]) for row in ids.collect()]
        if self.id_rule is not None:
            for value in wanted:
                if not re.fullmatch(self.id_rule.pattern, value):
                    raise SourceError(
                        f"{self.description}: a requested id is not valid for this source "
                        f"({self.id_rule.help}); nothing was queried"
                    )
        with self._errors():
            relation = self._relation(spark)
            typed = _typed_ids(wanted, relation.schema[self.id_column].dataType)
            if not typed:
                return self._records(relation.limit(0))
            size = self.ids_batch_size
            batches = [typed[i : i + size] for i in range(0, len(typed), size)]
            from pyspark.sql import functions as F

            key = F.col(self.id_column)
            frames = [relation.where(key.isin(batch)) for batch in batches]
            log.info("%s: %d ids in %d queries", self.description, len(typed), len(frames))
            return self._records(reduce(lambda a, b: a.unionByName(b), frames))

    # -- building the reads --------------------------------------------------------------

    def _reader(self, spark: SparkSession, dbtable: str) -> Any:
        credentials = self._credentials_now()
        reader = (
            spark.read.format("jdbc")
            .option("url", self.url)
            .option("driver", self.driver)
            .option("dbtable", dbtable)
            .option("fetchsize", str(self.fetch_size))
        )
        for key, value in self.properties.items():
            reader = reader.option(key, value)
        # Spark redacts the "password" option (spark.sql.redaction.options.regex) in plans.
        return reader.option("user", credentials.user).option("password", credentials.password)

    def _relation(self, spark: SparkSession) -> DataFrame:
        """The relation, unpartitioned; its schema is fetched now, so a bad connection, table
        or column fails here, before the ingest stage has read or written anything."""
        relation: DataFrame = self._reader(spark, self.relation).load()
        columns = relation.columns
        needed = [self.id_column, self.updated_column, self.partition_column]
        if self.payload_column is not None:
            needed.append(self.payload_column)
        for column in dict.fromkeys(needed):
            if column not in columns:
                raise SourceError(
                    f"{self.description}: no column {column!r}; it has {', '.join(columns)}"
                )
        return relation

    def _partitioned(self, relation: DataFrame, column: str, bounds: tuple[Any, Any]) -> DataFrame:
        """``relation`` read by ``num_partitions`` range queries over ``column`` (the first and
        last ranges open-ended, so rows outside ``bounds`` are read too)."""
        from pyspark.sql.types import DateType, NumericType, TimestampNTZType, TimestampType

        kind = relation.schema[column].dataType
        if not isinstance(kind, NumericType | DateType | TimestampType | TimestampNTZType):
            raise SourceError(
                f"{self.description}: partition column {column!r} is {kind.simpleString()}; "
                "a partitioned read needs a number, date or timestamp"
            )
        lower, upper = bounds
        if lower is None or upper is None or lower >= upper or self.num_partitions == 1:
            return relation  # an empty relation, a single value, or one partition asked for
        log.info(
            "%s: %d range queries over %s from %s to %s",
            self.description,
            self.num_partitions,
            column,
            lower,
            upper,
        )
        frame: DataFrame = (
            self._reader(relation.sparkSession, self.relation)
            .option("partitionColumn", column)
            .option("lowerBound", _bound_text(lower, floor=True))
            .option("upperBound", _bound_text(upper, floor=False))
            .option("numPartitions", str(self.num_partitions))
            .load()
        )
        return frame

    def _min_max(self, spark: SparkSession) -> tuple[Any, Any]:
        column = f'"{self.partition_column}"'
        bounds_query = (
            f"(SELECT min({column}) AS lower_bound, max({column}) AS upper_bound "
            f"FROM {self.relation}) AS glue_replay_bounds"
        )
        row = self._reader(spark, bounds_query).load().first()
        assert row is not None  # an aggregate without GROUP BY has one row
        return row["lower_bound"], row["upper_bound"]

    def _window(self, relation: DataFrame, start: datetime, end: datetime | None) -> Column:
        from pyspark.sql import functions as F
        from pyspark.sql.types import TimestampNTZType, TimestampType

        kind = relation.schema[self.updated_column].dataType
        if isinstance(kind, TimestampNTZType):  # wall-clock UTC values
            start, end = _naive_utc(start), None if end is None else _naive_utc(end)
        elif not isinstance(kind, TimestampType):
            raise SourceError(
                f"{self.description}: update column {self.updated_column!r} is "
                f"{kind.simpleString()}; since and BAU reads need a timestamp"
            )
        updated = F.col(self.updated_column)
        window = updated >= F.lit(start)
        return window if end is None else window & (updated < F.lit(end))

    def _records(self, relation: DataFrame) -> DataFrame:
        """Relation rows -> ``id``, ``updated_at``, ``payload`` (the source's raw rows)."""
        from pyspark.sql import functions as F

        if self.payload_column is not None:
            payload = F.col(self.payload_column).cast("string")
        else:
            payload = F.to_json(
                F.struct(*[_json_safe(relation, c) for c in relation.columns]),
                PAYLOAD_JSON_OPTIONS,
            )
        return relation.select(
            F.col(self.id_column).cast("string").alias("id"),
            F.col(self.updated_column).alias("updated_at"),
            payload.alias("payload"),
        )

    def _credentials_now(self) -> JdbcCredentials:
        if self._resolved is None:
            given = self._credentials
            self._resolved = given if isinstance(given, JdbcCredentials) else given()
        return self._resolved

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Spark's and the driver's errors while planning a read -> one SourceError line."""
        try:
            yield
        except SourceError:
            raise
        except Exception as exc:
            if not _is_spark_error(exc):
                raise
            secret = self._resolved.password if self._resolved is not None else None
            raise SourceError(f"{self.description}: {describe_jdbc_error(exc, secret)}") from None


def describe_jdbc_error(exc: BaseException, secret: str | None = None) -> str:
    """One line for a JDBC failure: what kind (by SQLSTATE class), the driver's first line.

    ``'the database refused the credentials: FATAL: password authentication failed for user
    "reader" [SQLSTATE 28P01]'``; ``secret``, if it appears anywhere, is masked.
    """
    state, message = _sql_exception(exc)
    if message is None:
        message = str(exc)
    line = " ".join(message.strip().splitlines()[:1]) or type(exc).__name__
    line = re.sub(r"^(org\.|java\.|com\.)[\w.$]+: ", "", line)
    if secret:
        line = line.replace(secret, "***")
    line = line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 3] + "..."
    if state is None:
        if "No suitable driver" in line or "ClassNotFoundException" in line:
            return f"the JDBC driver is not on the classpath: {line}"
        return line
    kind = _SQLSTATE_CLASSES.get(state[:2], "the database failed")
    return f"{kind}: {line} [SQLSTATE {state}]"


def _sql_exception(exc: BaseException) -> tuple[str | None, str | None]:
    """(SQLSTATE, message) of the first ``java.sql.SQLException`` in the Java cause chain."""
    throwable = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    seen = 0
    while throwable is not None and seen < 10:
        seen += 1
        try:
            name = str(throwable.getClass().getName())
            if _is_sql_exception(throwable):
                state = throwable.getSQLState()
                return (str(state) if state else None), str(throwable.getMessage())
            if name == "java.lang.ClassNotFoundException":
                return None, f"ClassNotFoundException: {throwable.getMessage()}"
            throwable = throwable.getCause()
        except Exception:  # a py4j hiccup must not hide the original failure
            return None, None
    return None, None


def _is_sql_exception(throwable: Any) -> bool:
    klass = throwable.getClass()
    while klass is not None:
        if str(klass.getName()) == "java.sql.SQLException":
            return True
        klass = klass.getSuperclass()
    return False


def _is_spark_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith(("py4j", "pyspark"))


def _checked_column(name: str) -> str:
    if not IDENTIFIER.fullmatch(name):
        raise PipelineDefinitionError(
            f"JDBC column {name!r} is not a plain SQL name ([A-Za-z_][A-Za-z0-9_]*)"
        )
    return name


def _typed_ids(ids: Sequence[str], kind: DataType) -> list[Any]:
    """Requested ids as values of the id column's type, sorted; ids that cannot be values of
    it (``"A-1"`` for an integer column) cannot match and are left out (reported missing)."""
    from pyspark.sql.types import DecimalType, IntegralType

    values: set[Any] = set()
    for text in ids:
        if isinstance(kind, IntegralType):
            if re.fullmatch(r"-?\d{1,19}", text) and -(2**63) <= int(text) < 2**63:
                values.add(int(text))
        elif isinstance(kind, DecimalType):
            try:
                values.add(Decimal(text))
            except InvalidOperation:
                continue
        else:
            values.add(text)
    return sorted(values)


def _json_safe(relation: DataFrame, column: str) -> Column:
    """A column as the payload JSON shows it: decimals (and arrays of them) as strings."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DecimalType

    kind = relation.schema[column].dataType
    if isinstance(kind, DecimalType):
        return F.col(column).cast("string").alias(column)
    if isinstance(kind, ArrayType) and isinstance(kind.elementType, DecimalType):
        return F.col(column).cast("array<string>").alias(column)
    return F.col(column)


def _bound_text(value: Any, *, floor: bool) -> str:
    """A partition bound as Spark's ``lowerBound``/``upperBound`` option: integers for numeric
    columns (a decimal bound is widened to the next integer), timestamps in the UTC session."""
    if isinstance(value, datetime):
        return _naive_utc(value).isoformat(sep=" ")
    if isinstance(value, Decimal | float):
        return str(math.floor(value) if floor else math.ceil(value))
    return str(value)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
