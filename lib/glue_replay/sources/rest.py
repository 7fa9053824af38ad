"""Read one endpoint of a paged JSON REST API (the bundled sample API speaks this protocol).

The protocol: ``GET <base_url>/<path>?updated_since=&updated_before=&ids=&page_size=&page=``
answers ``{"data": [records...], "next_page": token | null}``; the filters AND together,
``updated_since`` is inclusive and ``updated_before`` exclusive. Only the standard library is used
(``urllib``), so the source runs unchanged on a Glue driver.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from glue_replay.errors import SourceError
from glue_replay.sources.base import RecordSource, SourceRecord

logger = logging.getLogger(__name__)

_PATH_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64}){0,7}")
# Throttling and server-side failures are usually transient; any other 4xx is the request's fault
# and would fail identically on every attempt.
_RETRYABLE_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_HEADER_TOKEN = re.compile(r"[!-~]+")
_MAX_ERROR_DETAIL = 300
_LOG_EVERY_PAGES = 10

QueryParams = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class SourceQuery:
    """What to read, in the API's own terms.

    ``updated_since`` is inclusive and ``updated_before`` exclusive (both timezone-aware UTC);
    ``ids`` restricts the read to those record ids. ``None`` everywhere means "everything".
    """

    updated_since: datetime | None = None
    updated_before: datetime | None = None
    ids: tuple[str, ...] | None = None


class RestApiSource(RecordSource):
    """A :class:`~glue_replay.sources.base.Source` over a paged JSON REST API endpoint.

    ``read`` pages through ``next_page`` tokens; an ``ids`` query is split into batches of
    ``id_batch_size`` ids (each batch paged too) so URLs stay short whatever the number of ids.
    Connection errors, timeouts, 429 and 5xx are retried ``max_attempts`` times in all, waiting
    ``backoff_seconds``, then twice that, and so on; other 4xx fail at once. Failures raise
    :class:`~glue_replay.errors.SourceError` naming the URL path and status, never the token.

    ``RestApiSource("http://127.0.0.1:8765", path="items").read(SourceQuery(ids=("7",)))``
    -> ``SourceRecord(id="7", updated_at="2026-11-20T10:15:30Z", payload='{"id":"7",...}')``
    """

    def __init__(
        self,
        base_url: str,
        *,
        path: str,
        page_size: int = 500,
        id_batch_size: int = 100,
        timeout_seconds: float = 30.0,
        max_attempts: int = 4,
        backoff_seconds: float = 0.5,
        token: str | None = None,
    ) -> None:
        self._base_url = _validated_base_url(base_url)
        path = path.strip("/")
        if not _PATH_PATTERN.fullmatch(path) or {".", ".."} & set(path.split("/")):
            raise SourceError(
                f"path: {path!r} is not a URL path; accepted: segments of letters, digits, _ . -"
            )
        _require(page_size >= 1, "page_size", page_size, "an integer >= 1")
        _require(id_batch_size >= 1, "id_batch_size", id_batch_size, "an integer >= 1")
        _require(timeout_seconds > 0, "timeout_seconds", timeout_seconds, "a number > 0")
        _require(max_attempts >= 1, "max_attempts", max_attempts, "an integer >= 1")
        _require(backoff_seconds >= 0, "backoff_seconds", backoff_seconds, "a number >= 0")
        if token is not None and token and not _HEADER_TOKEN.fullmatch(token):
            # Checked here because http.client's own error would quote the header, token and all.
            raise SourceError("token: has spaces or control characters; accepted: printable ASCII")
        self._path = path
        self._page_size = page_size
        self._id_batch_size = id_batch_size
        self._timeout_seconds = timeout_seconds
        self._max_attempts = max_attempts
        self._backoff_seconds = backoff_seconds
        self._token = token or None

    @property
    def description(self) -> str:
        """The endpoint's URL (credentials are refused in it, so it is safe to log)."""
        return f"{self._base_url}/{self._path}"

    def __repr__(self) -> str:
        # Spelled out so the token can never reach a log through a default repr.
        return f"RestApiSource({self._base_url!r}, path={self._path!r})"

    def records_full(self) -> Iterator[SourceRecord]:
        return self.read(SourceQuery())

    def records_since(self, start: datetime, end: datetime | None) -> Iterator[SourceRecord]:
        return self.read(SourceQuery(updated_since=start, updated_before=end))

    def records_for_ids(self, ids: Sequence[str]) -> Iterator[SourceRecord]:
        return self.read(SourceQuery(ids=tuple(ids)))

    def read(self, query: SourceQuery) -> Iterator[SourceRecord]:
        """Yield every record matching ``query``, page by page, as the API returned it."""
        filters: list[tuple[str, str]] = []
        if query.updated_since is not None:
            filters.append(("updated_since", _iso_utc("updated_since", query.updated_since)))
        if query.updated_before is not None:
            filters.append(("updated_before", _iso_utc("updated_before", query.updated_before)))
        if query.ids is None:
            yield from self._read_pages(filters)
            return
        for candidate in query.ids:
            # A comma would split one id into two inside the comma-separated parameter.
            if not candidate or "," in candidate:
                raise SourceError(
                    f"ids: {candidate!r} cannot be sent; accepted: no commas, not empty"
                )
        # Deduplicated so an id listed twice is not read (and yielded) twice across batches.
        ids = list(dict.fromkeys(query.ids))
        for start in range(0, len(ids), self._id_batch_size):
            batch = ids[start : start + self._id_batch_size]
            yield from self._read_pages([*filters, ("ids", ",".join(batch))])

    def _read_pages(self, params: QueryParams) -> Iterator[SourceRecord]:
        path = f"/{self._path}"
        token: str | None = None
        pages = records = 0
        while True:
            page_params = [*params, ("page_size", str(self._page_size))]
            if token is not None:
                page_params.append(("page", token))
            data, next_page = _parse_page(self._get_json(path, page_params), path)
            for item in data:
                yield SourceRecord.from_json(item)
            pages += 1
            records += len(data)
            if pages % _LOG_EVERY_PAGES == 0:
                logger.info(
                    "%s: read %d pages, %d records so far", self.description, pages, records
                )
            if next_page is None:
                return
            if next_page == token:
                # A server that hands back the token it was given would page forever.
                raise SourceError(f"GET {path} returned the same next_page twice: {token!r}")
            token = next_page

    def _get_json(self, path: str, params: QueryParams) -> Any:
        """GET ``path`` with ``params`` and parse the JSON body, retrying transient failures."""
        url = f"{self._base_url}{path}?{urlencode(params)}"
        where = f"GET {self._base_url}{path}"
        last_failure = ""
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1:
                time.sleep(self._backoff_seconds * 2 ** (attempt - 2))
            # The scheme is http(s), checked in __init__: no file:// or custom schemes reach here.
            request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
            if self._token is not None:
                # Unredirected: urllib would otherwise forward the token to wherever a redirect
                # points, including another host.
                request.add_unredirected_header("Authorization", f"Bearer {self._token}")
            try:
                with urllib.request.urlopen(request, timeout=self._timeout_seconds) as response:  # noqa: S310
                    body = response.read()
            except urllib.error.HTTPError as err:
                detail = self._redact(_error_detail(err))
                err.close()
                failure = f"{where} answered HTTP {err.code}: {detail}"
                if err.code not in _RETRYABLE_STATUSES:
                    raise SourceError(failure) from None
                last_failure = failure
            except (OSError, http.client.HTTPException) as err:
                # URLError (refused, DNS), TimeoutError and a connection dropped mid-body.
                reason = getattr(err, "reason", err)
                last_failure = f"{where} failed: {type(err).__name__}: {self._redact(str(reason))}"
            else:
                try:
                    return json.loads(body)
                except (ValueError, UnicodeDecodeError):
                    raise SourceError(f"{where} answered a body that is not JSON") from None
            logger.warning("attempt %d/%d: %s", attempt, self._max_attempts, last_failure)
        raise SourceError(f"{last_failure} (gave up after {self._max_attempts} attempts)")

    def _redact(self, text: str) -> str:
        """``text`` with the token masked: a server may echo request headers in its errors."""
        return text if self._token is None else text.replace(self._token, "***")


def _validated_base_url(base_url: str) -> str:
    """``"http://host:8765/api/"`` -> ``"http://host:8765/api"``, or SourceError."""
    accepted = "an http:// or https:// URL with a host and no credentials, query or fragment"
    try:
        parts = urlsplit(base_url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise SourceError(f"base_url: {base_url!r} is not a URL; accepted: {accepted}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise SourceError(f"base_url: {base_url!r} is not usable; accepted: {accepted}")
    if parts.username is not None or parts.password is not None:
        # The URL shows up in logs and the runs ledger; a secret in it would leak there.
        raise SourceError(f"base_url: contains credentials; accepted: {accepted} (pass token=)")
    if parts.query or parts.fragment:
        raise SourceError(f"base_url: {base_url!r} has a query or fragment; accepted: {accepted}")
    return base_url.rstrip("/")


def _require(ok: bool, name: str, value: object, accepted: str) -> None:
    if not ok:
        raise SourceError(f"{name}: {value!r} is out of range; accepted: {accepted}")


def _iso_utc(name: str, instant: datetime) -> str:
    """``2026-11-20 12:15:30+02:00`` -> ``"2026-11-20T10:15:30Z"`` (microseconds kept if any)."""
    if instant.tzinfo is None:
        # SourceQuery promises aware times; guessing a zone would shift the window silently.
        raise SourceError(
            f"{name}: {instant.isoformat()} is naive; accepted: a timezone-aware time"
        )
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _error_detail(err: urllib.error.HTTPError) -> str:
    """The API's ``{"error": ...}`` message, else the start of the body, else the reason."""
    try:
        raw = err.read(4096)
    except (OSError, http.client.HTTPException):
        raw = b""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        text = parsed["error"]
    return (text or str(err.reason))[:_MAX_ERROR_DETAIL]


def _parse_page(body: Any, path: str) -> tuple[list[Any], str | None]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise SourceError(f"GET {path} answered JSON without a 'data' list")
    next_page = body.get("next_page")
    if next_page is not None and (not isinstance(next_page, str) or not next_page):
        raise SourceError(f"GET {path} answered a next_page that is not a non-empty string")
    return body["data"], next_page
