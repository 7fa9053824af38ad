"""A configurable source over a paged JSON REST endpoint, fetched in parallel on Spark executors.

Part of the public extension API. One frozen :class:`RestSourceConfig` says how *your* API
works: where it is, where the records are in an answer, how it pages (:class:`PageNumberPaging`,
:class:`OffsetPaging`, :class:`CursorPaging`, :class:`NextLinkPaging`), how it filters by update
time and by ids, and how hard it may be pushed. The bundled sample API is one configuration::

    source = RestSource(
        RestSourceConfig(
            base_url="https://crm.example.com/api", path="contacts",
            records_at="result.items", paging=OffsetPaging(total_at="result.total"),
            full_start=datetime(2020, 1, 1, tzinfo=UTC), slice_width=timedelta(days=90),
        ),
        token=settings.token(),
    )

How a read runs. The work is cut into *slices*: time windows of ``slice_width`` for a full,
since or BAU read (a full read from ``full_start``: the first slice also takes everything older,
the last one everything newer), batches of at most ``max_ids_per_request`` ids for a targeted
read. Slices are fetched on the executors, ``max_concurrency`` Spark tasks at a time, each with
``threads_per_task`` threads and a keep-alive connection per thread; the pages of one slice are
fetched one after the other, as the API's paging requires. Nothing is gathered on the driver:
each read returns a list of DataFrames, *batches* of ``slices_per_batch`` slices, which the
ingest stage appends one commit each; the same arguments always give the same batches, so a
retried run skips the ones an earlier attempt appended.

Failures. Every request is retried by urllib3's :class:`~urllib3.util.Retry` on connection
errors, timeouts, 429 and 5xx, ``max_attempts`` attempts in all, after an exponential backoff
with jitter, or after the server's ``Retry-After`` (seconds or an HTTP date, capped at
``max_retry_after_seconds``). Any other 4xx fails at once. Failures raise
:class:`~glue_replay.errors.SourceError` naming the URL's path and the status, never the query,
and never the token: a server echoing it in an error is masked.

The token. It is held masked in memory and in the pickled task (a :class:`Secret`), sent only
as ``Authorization: Bearer ...`` to the configured host, and never put in a log line, an error,
a ``repr``, the Spark plan or the slices.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from typing import TYPE_CHECKING, Any, Literal, NoReturn, Self
from urllib.parse import urlencode, urljoin, urlsplit

import urllib3
from urllib3.util import Retry, Timeout

from glue_replay.errors import PipelineDefinitionError, SourceError
from glue_replay.sources.base import ReadScope, Source, SourceRecord, source_schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

Row = tuple[str | None, str | None, str]
Query = list[tuple[str, str]]

_PATH_PATTERN = re.compile(r"[A-Za-z0-9_.~-]{1,64}(/[A-Za-z0-9_.~-]{1,64}){0,7}")
_PARAM_PATTERN = re.compile(r"[A-Za-z0-9_.~\[\]-]{1,64}")
_FIELD_PATH = re.compile(r"[A-Za-z0-9_$@-]{1,64}(\.[A-Za-z0-9_$@-]{1,64}){0,7}")
_HEADER_TOKEN = re.compile(r"[!-~]+")
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*\brel="?([^",]*)"?', re.IGNORECASE)
#: Throttling and server-side failures are usually transient; any other 4xx is the request's
#: fault and would fail identically on every attempt.
RETRYABLE_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_MAX_ERROR_DETAIL = 300
_MAX_REDIRECTS = 3


# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageNumberPaging:
    """``?page=1``, ``?page=2``, ... until an empty page, or the last of ``total_pages_at``.

    ``{"data": [...], "total_pages": 7}`` -> ``PageNumberPaging(total_pages_at="total_pages")``
    """

    page_param: str = "page"
    size_param: str | None = "page_size"
    first_page: int = 1
    total_pages_at: str | None = None


@dataclass(frozen=True)
class OffsetPaging:
    """``?limit=100&offset=0``, ``offset=100``, ... until an empty page, or ``total_at`` records.

    ``{"result": {"items": [...], "total": 2345}}`` -> ``OffsetPaging(total_at="result.total")``
    """

    offset_param: str = "offset"
    limit_param: str = "limit"
    total_at: str | None = None


@dataclass(frozen=True)
class CursorPaging:
    """A next-page token in the answer (at ``next_at``), sent back as ``cursor_param``; a
    missing, null or empty token ends the slice.

    ``{"data": [...], "next_page": "17"}`` -> ``GET ...&page=17``
    """

    cursor_param: str = "page"
    next_at: str = "next_page"
    size_param: str | None = "page_size"


@dataclass(frozen=True)
class NextLinkPaging:
    """The next page's URL in the answer (at ``next_at``), or, with ``next_at=None``, in the
    ``Link: <url>; rel="next"`` header; followed as given (relative links resolved), only to
    the configured scheme, host and port.

    ``{"data": [...], "links": {"next": "https://api/x?after=17"}}`` -> ``next_at="links.next"``
    """

    next_at: str | None = None
    size_param: str | None = "page_size"


Paging = PageNumberPaging | OffsetPaging | CursorPaging | NextLinkPaging
RateLimitScope = Literal["read", "task"]


@dataclass(frozen=True)
class RestSourceConfig:
    """How a REST endpoint is read; validated on construction (:class:`PipelineDefinitionError`).

    * ``base_url``, ``path``: the endpoint is ``<base_url>/<path>``;
    * ``records_at``: the dotted path of the records list in an answer (``""``: the answer is
      the list); ``paging`` and ``page_size``: see the paging classes;
    * ``since_param`` (inclusive) and ``until_param`` (exclusive): the update-time filters,
      sent as ISO-8601 UTC (``2026-01-01T00:00:00Z``); ``ids_param`` (``None``: no targeted
      reads), joined with ``ids_separator``, at most ``max_ids_per_request`` a request;
    * ``id_field``, ``updated_field``: a record's id and update time (top-level fields);
    * ``full_start``, ``slice_width``: a full read is cut into slices of ``slice_width`` from
      ``full_start`` (``None``: one unfiltered slice); since and BAU windows likewise from their
      start;
    * ``max_concurrency``: Spark tasks fetching at once; ``threads_per_task``: slices each
      task fetches at once (fetching waits on the network, so a task slot, which is a core,
      can keep several requests in flight); ``slices_per_batch`` (default ``max_concurrency``
      x ``threads_per_task``): slices appended per commit;
    * timeouts, ``max_attempts`` (all attempts of one request), ``backoff_seconds`` (first
      retry after 0.5-1x of it, doubling up to ``max_backoff_seconds``),
      ``max_retry_after_seconds`` (a longer ``Retry-After`` is cut to it);
    * ``requests_per_second``: a rate limit for the whole read (``rate_limit_per="read"``,
      shared out between the concurrent tasks) or for each task; ``None``: none. Retries are
      paced by their backoff, not by the limit.
    """

    base_url: str
    path: str
    records_at: str = "data"
    paging: Paging = field(default_factory=CursorPaging)
    page_size: int = 100
    since_param: str = "updated_since"
    until_param: str = "updated_before"
    ids_param: str | None = "ids"
    ids_separator: str = ","
    max_ids_per_request: int = 100
    id_field: str = "id"
    updated_field: str = "updated_at"
    full_start: datetime | None = None
    slice_width: timedelta = timedelta(days=30)
    max_concurrency: int = 4
    threads_per_task: int = 1
    slices_per_batch: int | None = None
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 30.0
    max_attempts: int = 6
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0
    requests_per_second: float | None = None
    rate_limit_per: RateLimitScope = "read"

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", _validated_base_url(self.base_url))
        path = self.path.strip("/") if isinstance(self.path, str) else self.path
        if (
            not isinstance(path, str)
            or not _PATH_PATTERN.fullmatch(path)
            or ({".", ".."} & set(path.split("/")))
        ):
            _refuse("path", self.path, "segments of letters, digits, _ . ~ -")
        object.__setattr__(self, "path", path)
        if self.records_at != "":
            _check_field_path("records_at", self.records_at)
        _check_paging(self.paging)
        _check_int("page_size", self.page_size, 1)
        for name in ("since_param", "until_param"):
            _check_param(name, getattr(self, name))
        if self.ids_param is not None:
            _check_param("ids_param", self.ids_param)
        if not isinstance(self.ids_separator, str) or len(self.ids_separator) != 1:
            _refuse("ids_separator", self.ids_separator, "one character")
        _check_int("max_ids_per_request", self.max_ids_per_request, 1)
        for name in ("id_field", "updated_field"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                _refuse(name, value, "a field name")
        if self.full_start is not None and (
            not isinstance(self.full_start, datetime) or self.full_start.tzinfo is None
        ):
            _refuse("full_start", self.full_start, "a timezone-aware datetime, or None")
        if not isinstance(self.slice_width, timedelta) or self.slice_width < timedelta(seconds=1):
            _refuse("slice_width", self.slice_width, "a timedelta of at least one second")
        _check_int("max_concurrency", self.max_concurrency, 1)
        _check_int("threads_per_task", self.threads_per_task, 1)
        if self.slices_per_batch is not None:
            _check_int("slices_per_batch", self.slices_per_batch, 1)
        for name in ("connect_timeout_seconds", "read_timeout_seconds"):
            _check_number(name, getattr(self, name), positive=True)
        _check_int("max_attempts", self.max_attempts, 1)
        for name in ("backoff_seconds", "max_backoff_seconds", "max_retry_after_seconds"):
            _check_number(name, getattr(self, name), positive=False)
        if self.requests_per_second is not None:
            _check_number("requests_per_second", self.requests_per_second, positive=True)
        if self.rate_limit_per not in ("read", "task"):
            _refuse("rate_limit_per", self.rate_limit_per, "'read' or 'task'")

    @property
    def endpoint(self) -> str:
        """``<base_url>/<path>``: safe to log (credentials are refused in the URL)."""
        return f"{self.base_url}/{self.path}"

    @property
    def batch_size(self) -> int:
        """Slices per batch (one Spark job and one commit each)."""
        return self.slices_per_batch or self.max_concurrency * self.threads_per_task


@dataclass(frozen=True)
class Slice:
    """One unit of work, fetched by one task, page after page: an update-time window
    ``[since, until)`` (``None``: open on that side) or a batch of ids."""

    number: int
    since: datetime | None = None
    until: datetime | None = None
    ids: tuple[str, ...] | None = None

    def describe(self) -> str:
        if self.ids is not None:
            return f"slice {self.number}: {len(self.ids)} ids"
        since = self.since.isoformat() if self.since else "the beginning"
        until = self.until.isoformat() if self.until else "now"
        return f"slice {self.number}: updated in [{since}, {until})"


class Secret:
    """A credential that never shows itself: ``repr``/``str`` mask it, and it is kept (and
    pickled into Spark tasks) XOR-ed with a random pad, so neither a debug print of the task
    nor a memory or disk dump of it holds the plain text."""

    __slots__ = ("_masked", "_pad")

    def __init__(self, value: str) -> None:
        plain = value.encode("utf-8")
        self._pad = os.urandom(len(plain))
        self._masked = bytes(a ^ b for a, b in zip(plain, self._pad, strict=True))

    def reveal(self) -> str:
        return bytes(a ^ b for a, b in zip(self._masked, self._pad, strict=True)).decode("utf-8")

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Callable[[bytes, bytes], Secret], tuple[bytes, bytes]]:
        return (_unmasked_secret, (self._pad, self._masked))


def _unmasked_secret(pad: bytes, masked: bytes) -> Secret:
    return Secret(bytes(a ^ b for a, b in zip(masked, pad, strict=True)).decode("utf-8"))


# --- the source ---------------------------------------------------------------------------------


class RestSource(Source):
    """A :class:`~glue_replay.sources.base.Source` over a REST endpoint, read as described by
    ``config`` (see the module's documentation); ``token`` is sent as a bearer token.

    Every read returns its batches: a list of DataFrames in
    :func:`~glue_replay.sources.base.source_schema` — ``id`` and ``updated_at`` as text, and the
    record as JSON, unchanged. ``clock`` (UTC now) decides how far a full read's slices go.

    ``RestSource(RestSourceConfig("http://127.0.0.1:8765", "items")).read_ids(spark, ids)``
    -> ``[DataFrame[id: string, updated_at: string, payload: string]]``
    """

    def __init__(
        self,
        config: RestSourceConfig,
        *,
        token: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if token and not _HEADER_TOKEN.fullmatch(token):
            # Checked here: an HTTP library's own error could quote the header, token and all.
            raise PipelineDefinitionError(
                "token: has spaces or control characters; accepted: printable ASCII"
            )
        self.config = config
        self._token = Secret(token) if token else None
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def description(self) -> str:
        """The endpoint's URL (credentials are refused in it, so it is safe to log)."""
        return self.config.endpoint

    def __repr__(self) -> str:
        # Spelled out so the token can never reach a log through a default repr.
        return f"RestSource({self.config.endpoint!r})"

    # --- the reads ---

    def read_full(self, spark: SparkSession, end: datetime | None = None) -> list[DataFrame]:
        """Every record: slices from ``full_start`` (the first also takes everything older) up
        to ``end`` (``None``: the last slice is open, up to whatever is newest)."""
        return self.batches(spark, self.full_slices(end), "full read")

    def read_full_until(self, spark: SparkSession, end: datetime) -> list[DataFrame]:
        """The full read up to the request's as-of time: its slices do not depend on when a
        retry runs."""
        return self.read_full(spark, end)

    def read_since(
        self, spark: SparkSession, start: datetime, end: datetime | None
    ) -> list[DataFrame]:
        """Records updated in ``[start, end)``, in slices of ``slice_width`` from ``start``."""
        return self.batches(spark, self.window_slices(start, end), "read since " + _iso(start))

    def read_ids(self, spark: SparkSession, ids: DataFrame) -> list[DataFrame]:
        """Exactly the records of ``ids``, ``max_ids_per_request`` ids a slice.

        The ids are the request's, already validated and held by the driver (the request
        carries them), so they are collected; records never are.
        """
        wanted = [row[0] for row in ids.select("id").collect()]
        return self.batches(spark, self.id_slices(wanted), f"read of {len(wanted)} ids")

    def describe_read(self, scope: ReadScope) -> list[str]:
        """The read's slices and batches, worked out as the read cuts them; nothing is sent.

        ``ReadScope("since", start, end)`` -> ``["GET <endpoint> by updated_since/
        updated_before: 3 slices in 1 batch of up to 4 slices", "batch 1/1: slices 0-2,
        updated in [start, end)"]``
        """
        match scope.kind:
            case "full":
                slices = self.full_slices(scope.end)
                filters = f"{self.config.since_param}/{self.config.until_param}"
            case "since" | "bau":
                assert scope.start is not None  # a since or BAU read always has its start
                slices = self.window_slices(scope.start, scope.end)
                filters = f"{self.config.since_param}/{self.config.until_param}"
            case "ids":
                slices = self.id_slices(scope.ids)
                filters = f"{self.config.ids_param} (up to {self.config.max_ids_per_request})"
        per_batch = self.config.batch_size
        groups = [list(slices[at : at + per_batch]) for at in range(0, len(slices), per_batch)]
        lines = [
            f"GET {self.config.endpoint} by {filters}: {_counted(len(slices), 'slice')} in "
            f"{_counted(len(groups), 'batch')} of up to {_counted(per_batch, 'slice')}, "
            f"each paged {self.config.page_size} records a page"
        ]
        for number, group in enumerate(groups, start=1):
            lines.append(f"batch {number}/{len(groups)}: {_slices_span(group)}")
        return lines

    # --- how a read is cut ---

    def full_slices(self, end: datetime | None = None) -> list[Slice]:
        """The slices of a full read (see :meth:`read_full`)."""
        until = _utc("end", end) if end is not None else None
        start = self.config.full_start
        slices = self.window_slices(start, until) if start is not None else []
        if not slices:
            return [Slice(0, until=until)]
        # Open below: a record older than full_start is still part of "everything".
        slices[0] = Slice(0, since=None, until=slices[0].until)
        return slices

    def window_slices(self, start: datetime, end: datetime | None) -> list[Slice]:
        """``[start, end)`` cut every ``slice_width`` from ``start``; ``end=None``: up to now,
        the last slice open-ended (so nothing updated during the read is left out)."""
        lower = _utc("start", start)
        stop = _utc("end", end) if end is not None else None
        if stop is not None and lower >= stop:
            return []
        limit = stop if stop is not None else self._clock()
        slices: list[Slice] = []
        while lower + self.config.slice_width < limit:
            upper = lower + self.config.slice_width
            slices.append(Slice(len(slices), lower, upper))
            lower = upper
        slices.append(Slice(len(slices), lower, stop))
        return slices

    def id_slices(self, ids: Iterable[str]) -> list[Slice]:
        """Sorted, distinct ids, ``max_ids_per_request`` a slice."""
        config = self.config
        if config.ids_param is None:
            raise SourceError(
                f"{config.endpoint}: targeted reads need ids_param; accepted: the name of the "
                "API's ids filter in RestSourceConfig"
            )
        wanted = sorted(set(ids))
        for candidate in wanted:
            # The separator would split one id into two inside the parameter.
            if not candidate or config.ids_separator in candidate:
                raise SourceError(
                    f"ids: {candidate!r} cannot be sent; accepted: not empty, "
                    f"no {config.ids_separator!r}"
                )
        size = config.max_ids_per_request
        return [
            Slice(number, ids=tuple(wanted[at : at + size]))
            for number, at in enumerate(range(0, len(wanted), size))
        ]

    def batches(self, spark: SparkSession, slices: Sequence[Slice], what: str) -> list[DataFrame]:
        """``slices`` as batches of DataFrames, each fetched by up to ``max_concurrency`` tasks.

        Lazy: nothing is fetched until an action runs on a batch.
        """
        config = self.config
        per_batch = config.batch_size
        groups = [list(slices[at : at + per_batch]) for at in range(0, len(slices), per_batch)]
        logger.info(
            "%s: %s in %d slices, %d batches of up to %d slices, %d tasks x %d threads at a time",
            config.endpoint,
            what,
            len(slices),
            len(groups),
            per_batch,
            config.max_concurrency,
            config.threads_per_task,
        )
        schema = source_schema()
        frames = []
        for group in groups:
            tasks = min(len(group), config.max_concurrency)
            fetch = SliceFetcher(config, self._token, tasks)
            rdd = spark.sparkContext.parallelize(group, tasks).mapPartitions(fetch)
            # The rows are built to the schema: verifying each one again costs CPU for nothing.
            frames.append(spark.createDataFrame(rdd, schema, verifySchema=False))
        return frames

    def records(self, part: Slice) -> Iterator[SourceRecord]:
        """One slice's records, fetched here (on the driver): for tests and small tools."""
        for record_id, updated_at, payload in SliceFetcher(self.config, self._token, 1)([part]):
            yield SourceRecord(record_id, updated_at, payload)


@dataclass(frozen=True)
class SliceFetcher:
    """What a Spark task runs: fetch its slices and yield their rows; with
    ``threads_per_task`` > 1, that many slices at once, each by its own thread and connection.

    Everything it needs travels with it (the configuration, the masked token, how many tasks
    share a read's rate limit): nothing of the driver's memory, files or environment.
    """

    config: RestSourceConfig
    token: Secret | None
    tasks: int

    def __call__(self, slices: Iterable[Slice]) -> Iterator[Row]:
        parts = list(slices)  # a task's few slices, not their records
        threads = max(1, min(self.config.threads_per_task, len(parts)))
        if threads == 1:
            with self._client() as client:
                for part in parts:
                    yield from client.read_slice(part)
        else:
            yield from self._concurrently(parts, threads)

    def _client(self) -> _Client:
        config = self.config
        # How many clients (one per thread) share a rate limit.
        share = config.threads_per_task * (self.tasks if config.rate_limit_per == "read" else 1)
        return _Client(config, self.token, share)

    def _concurrently(self, parts: list[Slice], threads: int) -> Iterator[Row]:
        """Rows of ``parts``, fetched by ``threads`` threads; at most a few pages of them wait
        in memory, and the first failure stops every thread and is raised here."""
        work: queue.SimpleQueue[Slice] = queue.SimpleQueue()
        for part in parts:
            work.put(part)
        out: queue.Queue[_Fetched] = queue.Queue(maxsize=2 * threads)
        stop = threading.Event()

        def put(item: _Fetched) -> bool:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def fetch() -> None:
            try:
                with self._client() as client:
                    while not stop.is_set():
                        try:
                            part = work.get_nowait()
                        except queue.Empty:
                            break
                        page: list[Row] = []
                        for row in client.read_slice(part):
                            page.append(row)
                            if len(page) == self.config.page_size:
                                if not put(page):
                                    return
                                page = []
                        if page and not put(page):
                            return
            except Exception as exc:  # raised again by the task's own thread
                put(exc)
                return
            put(None)

        pool = [threading.Thread(target=fetch, daemon=True) for _ in range(threads)]
        for thread in pool:
            thread.start()
        running = threads
        try:
            while running:
                item = out.get()
                if item is None:
                    running -= 1
                elif isinstance(item, Exception):
                    raise item
                else:
                    yield from item
        finally:
            # Also when the task is abandoned midway: no thread starts another request.
            stop.set()


#: What a fetching thread hands the task: a page of rows, its failure, or None when done.
_Fetched = list[Row] | Exception | None


# --- HTTP ---------------------------------------------------------------------------------------


class _Retry(Retry):
    """urllib3's retry policy with "equal jitter" backoff from the first retry on (urllib3
    retries the first one at once and jitters only since 2.0), a cap on ``Retry-After``
    whatever the urllib3 version, and a log line per retry."""

    def __init__(
        self, *args: Any, backoff_cap: float = 30.0, retry_after_cap: float = 120.0, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.backoff_cap: float = backoff_cap
        self.retry_after_cap: float = retry_after_cap

    def new(self, **kw: Any) -> Self:
        kw.setdefault("backoff_cap", self.backoff_cap)
        kw.setdefault("retry_after_cap", self.retry_after_cap)
        return super().new(**kw)

    def get_backoff_time(self) -> float:
        errors = len(list(takewhile(lambda h: h.redirect_location is None, reversed(self.history))))
        if errors == 0 or self.backoff_factor <= 0:
            return 0.0
        ceiling = min(self.backoff_cap, self.backoff_factor * 2.0 ** (errors - 1))
        return ceiling / 2 + random.random() * ceiling / 2  # noqa: S311 - jitter, not security

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), self.retry_after_cap)

    def increment(self, *args: Any, **kw: Any) -> Self:
        after = super().increment(*args, **kw)
        last = after.history[-1] if after.history else None
        if last is not None and last.redirect_location is None:
            cause = f"HTTP {last.status}" if last.status else type(last.error).__name__
            path = urlsplit(last.url or "").path
            logger.warning("GET %s: %s; retrying (attempt %d)", path, cause, len(after.history) + 1)
        return after


class _Client:
    """One task's HTTP client: a keep-alive connection pool, the retry policy, the pacing."""

    def __init__(self, config: RestSourceConfig, token: Secret | None, share: int) -> None:
        self.config = config
        self._secret = token
        self._origin = _origin(config.base_url)
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=1, block=False)
        self._retry = _Retry(
            total=config.max_attempts - 1,
            connect=None,
            read=None,
            redirect=_MAX_REDIRECTS,
            status_forcelist=RETRYABLE_STATUSES,
            backoff_factor=config.backoff_seconds,
            raise_on_status=False,
            respect_retry_after_header=True,
            backoff_cap=config.max_backoff_seconds,
            retry_after_cap=config.max_retry_after_seconds,
        )
        self._timeout = Timeout(
            connect=config.connect_timeout_seconds, read=config.read_timeout_seconds
        )
        interval = 0.0
        if config.requests_per_second:
            interval = share / config.requests_per_second
        self._interval = interval
        self._next_request = 0.0

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.clear()

    # --- paging ---

    def read_slice(self, part: Slice) -> Iterator[Row]:
        config = self.config
        url = f"{config.endpoint}?"
        params = self._filters(part)
        paging = config.paging
        pages = records = 0
        started = time.monotonic()
        if isinstance(paging, CursorPaging):
            pages_iter = self._cursor_pages(url, params, paging)
        elif isinstance(paging, PageNumberPaging):
            pages_iter = self._numbered_pages(url, params, paging)
        elif isinstance(paging, OffsetPaging):
            pages_iter = self._offset_pages(url, params, paging)
        else:
            pages_iter = self._linked_pages(url, params, paging)
        for page in pages_iter:
            pages += 1
            records += len(page)
            for item in page:
                record = SourceRecord.from_json(
                    item, id_field=config.id_field, updated_field=config.updated_field
                )
                yield (record.id, record.updated_at, record.payload)
        logger.info(
            "%s %s: %d pages, %d records in %.1fs",
            config.endpoint,
            part.describe(),
            pages,
            records,
            time.monotonic() - started,
        )

    def _filters(self, part: Slice) -> list[tuple[str, str]]:
        config = self.config
        params: list[tuple[str, str]] = []
        if part.since is not None:
            params.append((config.since_param, _iso(part.since)))
        if part.until is not None:
            params.append((config.until_param, _iso(part.until)))
        if part.ids is not None:
            assert config.ids_param is not None  # id slices are only cut when it is set
            params.append((config.ids_param, config.ids_separator.join(part.ids)))
        return params

    def _sized(
        self, params: list[tuple[str, str]], size_param: str | None
    ) -> list[tuple[str, str]]:
        if size_param is None:
            return params
        return [*params, (size_param, str(self.config.page_size))]

    def _cursor_pages(
        self, url: str, params: list[tuple[str, str]], paging: CursorPaging
    ) -> Iterator[list[Any]]:
        cursor: str | None = None
        while True:
            query = self._sized(params, paging.size_param)
            if cursor is not None:
                query.append((paging.cursor_param, cursor))
            body, _ = self._get(url + urlencode(query))
            yield self._records(body)
            following = _value_at(body, paging.next_at)
            if following is None or following == "":
                return
            if isinstance(following, bool) or not isinstance(following, str | int):
                raise SourceError(
                    f"GET {self.config.endpoint} answered a {paging.next_at} that is not a "
                    "string or a number"
                )
            following = str(following)
            if following == cursor:
                # A server handing back the cursor it was given would page forever.
                raise SourceError(
                    f"GET {self.config.endpoint} returned the same {paging.next_at} twice"
                )
            cursor = following

    def _numbered_pages(
        self, url: str, params: list[tuple[str, str]], paging: PageNumberPaging
    ) -> Iterator[list[Any]]:
        page = paging.first_page
        previous: list[Any] | None = None
        while True:
            query = [*self._sized(params, paging.size_param), (paging.page_param, str(page))]
            body, _ = self._get(url + urlencode(query))
            records = self._records(body)
            if not records:
                return
            self._check_moved(previous, records, paging.page_param)
            yield records
            if paging.total_pages_at is not None:
                total = self._count_at(body, paging.total_pages_at)
                if page - paging.first_page + 1 >= total:
                    return
            previous = records
            page += 1

    def _offset_pages(
        self, url: str, params: list[tuple[str, str]], paging: OffsetPaging
    ) -> Iterator[list[Any]]:
        offset = 0
        previous: list[Any] | None = None
        while True:
            query = [
                *params,
                (paging.limit_param, str(self.config.page_size)),
                (paging.offset_param, str(offset)),
            ]
            body, _ = self._get(url + urlencode(query))
            records = self._records(body)
            if not records:
                return
            self._check_moved(previous, records, paging.offset_param)
            yield records
            # By what was served, not by what was asked: a server may cap the page size.
            offset += len(records)
            if paging.total_at is not None and offset >= self._count_at(body, paging.total_at):
                return
            previous = records

    def _linked_pages(
        self, url: str, params: list[tuple[str, str]], paging: NextLinkPaging
    ) -> Iterator[list[Any]]:
        current = url + urlencode(self._sized(params, paging.size_param))
        seen = {current}
        while True:
            body, headers = self._get(current)
            yield self._records(body)
            if paging.next_at is not None:
                link = _value_at(body, paging.next_at)
            else:
                link = _next_link(headers.get("Link"))
            if link is None or link == "":
                return
            if not isinstance(link, str):
                raise SourceError(
                    f"GET {self.config.endpoint} answered a {paging.next_at} that is not a URL"
                )
            following = urljoin(current, link)
            if _origin(following) != self._origin:
                # The token goes to the configured host only.
                raise SourceError(
                    f"GET {self.config.endpoint} answered a next link to {_origin(following)}; "
                    f"accepted: links to {self._origin}"
                )
            if following in seen:
                raise SourceError(f"GET {self.config.endpoint} answered the same next link twice")
            seen.add(following)
            current = following

    # --- one request ---

    def _get(self, url: str) -> tuple[Any, Any]:
        """GET ``url`` (retrying as configured) -> ``(JSON body, headers)``, or SourceError."""
        self._pace()
        where = f"GET {_without_query(url)}"
        headers = {"Accept": "application/json", "User-Agent": "glue-replay"}
        if self._secret is not None:
            headers["Authorization"] = f"Bearer {self._secret.reveal()}"
        attempts = self.config.max_attempts
        try:
            response = self._pool.request(
                "GET",
                url,
                headers=headers,
                retries=self._retry,
                timeout=self._timeout,
                preload_content=True,
            )
        except urllib3.exceptions.MaxRetryError as err:
            reason = err.reason if err.reason is not None else err
            raise SourceError(
                f"{where} failed: {type(reason).__name__}: {self._redact(str(reason))} "
                f"(gave up after {attempts} attempts)"
            ) from None
        except urllib3.exceptions.HTTPError as err:
            raise SourceError(
                f"{where} failed: {type(err).__name__}: {self._redact(str(err))}"
            ) from None
        if response.status >= 300:
            detail = self._redact(_error_detail(response.data, response.reason))
            failure = f"{where} answered HTTP {response.status}: {detail}"
            if response.status in RETRYABLE_STATUSES:
                tried = len(response.retries.history) + 1 if response.retries else 1
                failure += f" (gave up after {tried} attempts)"
            raise SourceError(failure)
        try:
            return json.loads(response.data), response.headers
        except (ValueError, UnicodeDecodeError):
            raise SourceError(f"{where} answered a body that is not JSON") from None

    def _pace(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        if self._next_request > now:
            time.sleep(self._next_request - now)
            now = self._next_request
        self._next_request = now + self._interval

    def _redact(self, text: str) -> str:
        """``text`` with the token masked: a server may echo request headers in its errors."""
        if self._secret is None:
            return text
        return text.replace(self._secret.reveal(), "***")

    def _records(self, body: Any) -> list[Any]:
        records = _value_at(body, self.config.records_at)
        if not isinstance(records, list):
            where = repr(self.config.records_at) if self.config.records_at else "the top level"
            raise SourceError(f"GET {self.config.endpoint} answered JSON without a list at {where}")
        return records

    def _count_at(self, body: Any, at: str) -> int:
        value = _value_at(body, at)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SourceError(
                f"GET {self.config.endpoint} answered a {at} that is not a count: {value!r:.40}"
            )
        return value

    def _check_moved(self, previous: list[Any] | None, records: list[Any], param: str) -> None:
        if previous is not None and previous == records:
            # An API ignoring the parameter answers the same page forever.
            raise SourceError(
                f"GET {self.config.endpoint} answered the same page twice; does it take {param}?"
            )


# --- helpers ------------------------------------------------------------------------------------


def _value_at(body: Any, path: str) -> Any:
    """``{"result": {"items": [1]}}``, ``"result.items"`` -> ``[1]``; ``""`` -> ``body``;
    missing -> ``None``."""
    value = body
    for key in path.split(".") if path else ():
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _counted(count: int, noun: str) -> str:
    """``1 slice``, ``2 slices``, ``3 batches``."""
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun}es" if noun.endswith(("s", "ch")) else f"{count} {noun}s"


def _slices_span(group: Sequence[Slice]) -> str:
    """A batch's slices in a few words: their numbers and the window or ids they cover."""
    first, last = group[0], group[-1]
    numbers = f"slice {first.number}" if first is last else f"slices {first.number}-{last.number}"
    if first.ids is not None:
        return f"{numbers}, {sum(len(part.ids or ()) for part in group)} ids"
    return f"{numbers}, {Slice(0, first.since, last.until).describe().split(': ', 1)[1]}"


def _next_link(header: str | None) -> str | None:
    """``<https://a/x?p=2>; rel="next", <...>; rel="last"`` -> ``https://a/x?p=2``."""
    for target, rel in _LINK_NEXT.findall(header or ""):
        if "next" in rel.lower().split():
            return str(target)
    return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or default}"


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _error_detail(body: bytes, reason: str | None) -> str:
    """The API's ``{"error": ...}`` message, else the start of the body, else the reason."""
    text = body[:4096].decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        text = parsed["error"]
    return (text or reason or "")[:_MAX_ERROR_DETAIL]


def _utc(name: str, instant: datetime) -> datetime:
    if instant.tzinfo is None:
        # Guessing a zone would shift the window silently.
        raise SourceError(
            f"{name}: {instant.isoformat()} is naive; accepted: a timezone-aware time"
        )
    return instant.astimezone(UTC)


def _iso(instant: datetime) -> str:
    """``2026-11-20 12:15:30+02:00`` -> ``"2026-11-20T10:15:30Z"`` (microseconds kept if any)."""
    return _utc("time", instant).isoformat().replace("+00:00", "Z")


def _validated_base_url(base_url: object) -> str:
    """``"http://host:8765/api/"`` -> ``"http://host:8765/api"``, or PipelineDefinitionError."""
    accepted = "an http:// or https:// URL with a host and no credentials, query or fragment"
    if not isinstance(base_url, str):
        _refuse("base_url", base_url, accepted)
    try:
        parts = urlsplit(base_url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise PipelineDefinitionError(
            f"base_url: {base_url!r} is not a URL; accepted: {accepted}"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        _refuse("base_url", base_url, accepted)
    if parts.username is not None or parts.password is not None:
        # The URL shows up in logs and the runs ledger; a secret in it would leak there.
        raise PipelineDefinitionError(
            f"base_url: contains credentials; accepted: {accepted} (pass token=)"
        )
    if parts.query or parts.fragment:
        _refuse("base_url", base_url, accepted)
    return base_url.rstrip("/")


def _check_paging(paging: object) -> None:
    if isinstance(paging, CursorPaging):
        _check_param("paging.cursor_param", paging.cursor_param)
        _check_field_path("paging.next_at", paging.next_at)
        size: str | None = paging.size_param
    elif isinstance(paging, PageNumberPaging):
        _check_param("paging.page_param", paging.page_param)
        _check_int("paging.first_page", paging.first_page, 0)
        if paging.total_pages_at is not None:
            _check_field_path("paging.total_pages_at", paging.total_pages_at)
        size = paging.size_param
    elif isinstance(paging, OffsetPaging):
        _check_param("paging.offset_param", paging.offset_param)
        _check_param("paging.limit_param", paging.limit_param)
        if paging.total_at is not None:
            _check_field_path("paging.total_at", paging.total_at)
        size = None
    elif isinstance(paging, NextLinkPaging):
        if paging.next_at is not None:
            _check_field_path("paging.next_at", paging.next_at)
        size = paging.size_param
    else:
        _refuse(
            "paging",
            paging,
            "PageNumberPaging(...), OffsetPaging(...), CursorPaging(...) or NextLinkPaging(...)",
        )
    if size is not None:
        _check_param("paging.size_param", size)


def _refuse(name: str, value: object, accepted: str) -> NoReturn:
    raise PipelineDefinitionError(f"{name}: {value!r:.80} is invalid; accepted: {accepted}")


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _refuse(name, value, f"an integer >= {low}")


def _check_number(name: str, value: object, *, positive: bool) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        _refuse(name, value, "a number > 0" if positive else "a number >= 0")


def _check_param(name: str, value: object) -> None:
    if not isinstance(value, str) or not _PARAM_PATTERN.fullmatch(value):
        _refuse(name, value, "a query parameter name: 1-64 letters, digits or _ . ~ [ ] -")


def _check_field_path(name: str, value: object) -> None:
    if not isinstance(value, str) or not _FIELD_PATH.fullmatch(value):
        _refuse(name, value, "a dotted path of field names, e.g. data or result.items")
