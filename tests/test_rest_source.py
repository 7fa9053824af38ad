"""RestSource against a real loopback server: the bundled sample API (in each of its paging
styles, with latency, throttling and random failures), or a scripted one where a test needs
answers the sample API never gives (echoed headers, broken pages, links elsewhere, silence).

Protocol tests fetch one slice on the driver (``RestSource.records``), which runs exactly the
code a Spark task runs; the Spark tests read through the executors, as ingest does.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import pickle
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import formatdate
from functools import reduce
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark import cloudpickle
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_replay import Pipeline, run_ingest_job
from glue_replay.errors import PipelineDefinitionError, SourceError
from glue_replay.sources.base import SOURCE_TOKEN_ENV, SourceRecord
from glue_replay.sources.rest import (
    CursorPaging,
    NextLinkPaging,
    OffsetPaging,
    PageNumberPaging,
    RestSource,
    RestSourceConfig,
    Secret,
    Slice,
    SliceFetcher,
)
from glue_replay.tables import Warehouse, read_runs
from glue_replay_devtools.sample_api import SampleApiServer
from glue_replay_examples.customers import CUSTOMERS, PIPELINE, customers_api_config
from sample_data import ALL_IDS, NOW, RECORDS

REPO = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token"
SENTINEL = "SENTINEL-7f3a9c-TOKEN"
FAST = {"backoff_seconds": 0.001}  # retries without waiting
JAN_1, MAR_15 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC)
#: The sample data's records updated in [2026-01-01, 2026-03-15).
IN_Q1 = ["21", "23", "27", "32", "42"]
#: Slices of a year from 2024 at NOW: [-, 2024-12-31), [2024-12-31, 2025-12-31), [2025-12-31, -).
YEARLY = {"full_start": datetime(2024, 1, 1, tzinfo=UTC), "slice_width": timedelta(days=365)}

# Record 4 exactly as the source must yield it: the payload is the record unchanged, compact,
# key order kept, non-ASCII as is; updated_at (epoch millis, a JSON number) as its JSON text.
RECORD_4 = SourceRecord(
    id="4",
    updated_at="1708325149296",
    payload=(
        '{"id":"4","email":"Hugo.OBrien4@mail.example.com","first_name":"Hugo",'
        '"last_name":"O\'Brien","phone":"+49 30 1234 0004","status":"suspended",'
        '"loyalty_points":4433,"address":{"line1":"61 Schillerstraße","line2":"Apt 14",'
        '"city":"Berlin","postcode":"10115","country":"De"},"created_at":"2023-07-30T11:53:00Z",'
        '"updated_at":1708325149296}'
    ),
)


def config(url: str, **overrides: Any) -> RestSourceConfig:
    """The sample API's protocol (token paging, ``data``), small pages."""
    return RestSourceConfig(**{"base_url": url, "path": "customers", "page_size": 7, **overrides})


def source(url: str, token: str | None = None, **overrides: Any) -> RestSource:
    return RestSource(config(url, **overrides), token=token, clock=lambda: NOW)


def row(record: dict[str, Any]) -> tuple[str, str | None, str]:
    """A record as a source row: (id, updated_at as text, compact JSON payload)."""
    updated = record.get("updated_at")
    text = updated if isinstance(updated, str) or updated is None else json.dumps(updated)
    return (
        str(record["id"]),
        text,
        json.dumps(record, separators=(",", ":"), ensure_ascii=False),
    )


def server_rows(api: SampleApiServer, ids: list[str]) -> list[tuple[str, str | None, str]]:
    """The server's current records of ``ids``, as source rows."""
    by_id = {c.id: c.record for c in api.customers()}
    return [row(by_id[i]) for i in ids]


def read_ids(src: RestSource, part: Slice) -> list[str | None]:
    return [record.id for record in src.records(part)]


@pytest.fixture(scope="module")
def api() -> Iterator[SampleApiServer]:
    """A read-only sample API shared by the module."""
    with SampleApiServer(records=RECORDS, now=NOW) as server:
        yield server


@pytest.fixture
def faulty_api() -> Iterator[SampleApiServer]:
    """A sample API of its own, for tests that inject faults or change its behaviour."""
    with SampleApiServer(records=RECORDS, now=NOW) as server:
        yield server


@pytest.fixture(scope="module")
def secured_api() -> Iterator[SampleApiServer]:
    with SampleApiServer(records=RECORDS, now=NOW, token=TOKEN) as server:
        yield server


Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]


@dataclass
class Scripted:
    """A loopback server answering each GET with the next scripted (status, JSON, headers)."""

    answers: list[Answer]
    # (path and query, Authorization, time.monotonic() on arrival)
    requests: list[tuple[str, str | None, float]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    state = Scripted(answers=[])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("Authorization"), time.monotonic()))
            status, body, *rest = state.answers.pop(0)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (rest[0] if rest else {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


# --- paging: every style against the sample API ------------------------------------------------

PAGING_STYLES = [
    pytest.param("token", "data", CursorPaging(), id="cursor"),
    pytest.param("page", "data", PageNumberPaging(), id="page-number-until-empty"),
    pytest.param(
        "page", "data", PageNumberPaging(total_pages_at="total_pages"), id="page-number-total"
    ),
    pytest.param("offset", "result.items", OffsetPaging(), id="offset-until-empty"),
    pytest.param(
        "offset", "result.items", OffsetPaging(total_at="result.total"), id="offset-total"
    ),
    pytest.param("link", "data", NextLinkPaging(next_at="links.next"), id="next-link-in-body"),
    pytest.param("link", "data", NextLinkPaging(), id="next-link-header"),
]


@pytest.mark.parametrize(("style", "records_at", "paging"), PAGING_STYLES)
def test_every_paging_style_reads_exactly_the_servers_records(
    style: str, records_at: str, paging: Any
) -> None:
    with SampleApiServer(records=RECORDS, now=NOW, paging=style) as styled:  # type: ignore[arg-type]
        src = source(styled.url, records_at=records_at, paging=paging)
        records = list(src.records(Slice(0)))
        window = list(src.records(Slice(0, since=JAN_1, until=MAR_15)))
        requests = len(styled.served())

    assert [(r.id, r.updated_at, r.payload) for r in records] == server_rows(styled, ALL_IDS)
    assert records[3] == RECORD_4
    assert [r.id for r in window] == ["21", "23", "27", "32", "42"]
    until_empty = isinstance(paging, PageNumberPaging | OffsetPaging) and not (
        getattr(paging, "total_pages_at", None) or getattr(paging, "total_at", None)
    )
    # 60 records in pages of 7 and 5 in the window: 9 + 1 pages, and one empty page per read
    # when only an empty page can tell the end.
    assert requests == (12 if until_empty else 10)


def test_pages_of_a_slice_are_requested_one_after_the_other(scripted: Scripted) -> None:
    scripted.answers = [
        (200, {"data": [{"id": "a"}], "next_page": "t1"}),
        (200, {"data": [{"id": "b"}], "next_page": 2}),
        (200, {"data": [{"id": "c"}], "next_page": None}),
    ]
    src = source(scripted.url, path="accounts", page_size=50)
    assert read_ids(src, Slice(0, ids=("a", "b", "c"))) == ["a", "b", "c"]
    assert [path for path, _, _ in scripted.requests] == [
        "/accounts?ids=a%2Cb%2Cc&page_size=50",
        "/accounts?ids=a%2Cb%2Cc&page_size=50&page=t1",
        "/accounts?ids=a%2Cb%2Cc&page_size=50&page=2",
    ]


def test_relative_next_links_are_resolved_and_other_hosts_refused(scripted: Scripted) -> None:
    scripted.answers = [
        (200, {"data": [{"id": "a"}]}, {"Link": '</v1/items?after=a>; rel="next"'}),
        (200, {"data": [{"id": "b"}]}, {"Link": '<https://elsewhere.example/x>; rel="next"'}),
    ]
    src = source(scripted.url, path="v1/items", paging=NextLinkPaging(size_param=None))
    with pytest.raises(SourceError) as raised:
        list(src.records(Slice(0)))
    assert str(raised.value) == (
        f"GET {scripted.url}/v1/items answered a next link to https://elsewhere.example:443; "
        f"accepted: links to http://127.0.0.1:{scripted.url.rsplit(':', 1)[1]}"
    )
    assert [path for path, _, _ in scripted.requests] == ["/v1/items?", "/v1/items?after=a"]


def test_records_at_the_top_level_and_in_nested_fields(scripted: Scripted) -> None:
    scripted.answers = [(200, [{"id": 1}, {"id": 2}]), (200, [])]
    src = source(scripted.url, records_at="", paging=PageNumberPaging(size_param=None))
    assert read_ids(src, Slice(0)) == ["1", "2"]


# --- what a read asks for ----------------------------------------------------------------------


def test_time_windows_are_inclusive_below_and_exclusive_above(api: SampleApiServer) -> None:
    src = source(api.url)
    # Record 23 was updated at exactly 2026-01-16T04:31:03Z; the window is in another zone.
    at_23 = datetime(2026, 1, 16, 6, 31, 3, tzinfo=timezone(timedelta(hours=2)))
    assert read_ids(src, Slice(0, since=at_23)) == ["18", "21", "23", "27", "37", "42", "49"]
    before_23 = Slice(0, since=datetime(2025, 12, 7, tzinfo=UTC), until=at_23)
    assert read_ids(src, before_23) == ["17", "32", "53"]
    # Record 49: 2026-03-19T07:42:46.350Z, sent to the millisecond.
    at_49 = datetime(2026, 3, 19, 7, 42, 46, 350000, tzinfo=UTC)
    assert read_ids(src, Slice(0, since=at_49)) == ["18", "37", "49"]
    assert read_ids(src, Slice(0, since=at_49 + timedelta(milliseconds=1))) == ["18", "37"]


def test_query_parameters_are_encoded_with_the_configured_names(scripted: Scripted) -> None:
    scripted.answers = [(200, {"items": [], "cursor": None})]
    src = source(
        scripted.url,
        records_at="items",
        paging=CursorPaging(cursor_param="c", next_at="cursor", size_param="per_page"),
        since_param="modified_from",
        until_param="modified_to",
        ids_param="id[]",
        ids_separator="|",
        page_size=50,
    )
    part = Slice(
        0,
        since=datetime(2026, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))),
        until=datetime(2026, 1, 2, 0, 0, 0, 123000, tzinfo=UTC),
        ids=("a:1", "b&c=d"),
    )
    assert list(src.records(part)) == []
    assert [path for path, _, _ in scripted.requests] == [
        "/customers?modified_from=2026-01-01T00%3A00%3A00Z"
        "&modified_to=2026-01-02T00%3A00%3A00.123000Z"
        "&id%5B%5D=a%3A1%7Cb%26c%3Dd&per_page=50"
    ]


def test_full_reads_are_cut_from_full_start_open_at_both_ends() -> None:
    src = source(
        "http://127.0.0.1:1",
        full_start=datetime(2024, 1, 1, tzinfo=UTC),
        slice_width=timedelta(days=365),
    )
    assert src.full_slices() == [
        Slice(0, None, datetime(2024, 12, 31, tzinfo=UTC)),
        Slice(1, datetime(2024, 12, 31, tzinfo=UTC), datetime(2025, 12, 31, tzinfo=UTC)),
        Slice(2, datetime(2025, 12, 31, tzinfo=UTC), None),
    ]
    # With an end (a retry's), the same slices whenever it runs; without full_start, one slice.
    assert src.full_slices(end=datetime(2025, 6, 1, tzinfo=UTC)) == [
        Slice(0, None, datetime(2024, 12, 31, tzinfo=UTC)),
        Slice(1, datetime(2024, 12, 31, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)),
    ]
    assert source("http://127.0.0.1:1").full_slices() == [Slice(0)]


def test_windows_are_cut_every_slice_width_from_their_start() -> None:
    src = source("http://127.0.0.1:1", slice_width=timedelta(days=10))
    start = datetime(2026, 5, 10, 12, tzinfo=UTC)
    assert src.window_slices(start, datetime(2026, 5, 25, tzinfo=UTC)) == [
        Slice(0, start, datetime(2026, 5, 20, 12, tzinfo=UTC)),
        Slice(1, datetime(2026, 5, 20, 12, tzinfo=UTC), datetime(2026, 5, 25, tzinfo=UTC)),
    ]
    # Up to now (NOW is 2026-06-01T12:00Z): the last slice stays open.
    assert src.window_slices(start, None) == [
        Slice(0, start, datetime(2026, 5, 20, 12, tzinfo=UTC)),
        Slice(1, datetime(2026, 5, 20, 12, tzinfo=UTC), datetime(2026, 5, 30, 12, tzinfo=UTC)),
        Slice(2, datetime(2026, 5, 30, 12, tzinfo=UTC), None),
    ]
    assert src.window_slices(start, start) == []
    with pytest.raises(SourceError, match="start: 2026-01-01T00:00:00 is naive"):
        src.window_slices(datetime(2026, 1, 1), None)


def test_ids_are_sorted_deduplicated_and_batched(api: SampleApiServer) -> None:
    src = source(api.url, max_ids_per_request=3)
    slices = src.id_slices(["3", "17", "999", "20", "abc", "5", "1000", "42", "3"])
    assert slices == [
        Slice(0, ids=("1000", "17", "20")),
        Slice(1, ids=("3", "42", "5")),
        Slice(2, ids=("999", "abc")),
    ]
    # The API orders each batch by id; unknown ids are simply absent.
    assert [read_ids(src, part) for part in slices] == [["17", "20"], ["3", "5", "42"], []]


@pytest.mark.parametrize("bad_id", ["a,b", ""])
def test_ids_that_cannot_be_sent_are_refused(bad_id: str) -> None:
    with pytest.raises(SourceError, match="ids: "):
        source("http://127.0.0.1:1").id_slices(["1", bad_id])


def test_targeted_reads_need_an_ids_parameter() -> None:
    with pytest.raises(SourceError, match="targeted reads need ids_param"):
        source("http://127.0.0.1:1", ids_param=None).id_slices(["1"])


def test_records_are_passed_on_whatever_their_shape(scripted: Scripted) -> None:
    scripted.answers = [
        (
            200,
            {
                "data": [
                    {"modified": 1763633730123, "key": 7, "name": "Zoë"},
                    {"name": "no id", "modified": None},
                    {"key": {"code": "x"}, "modified": True},
                    5,
                ],
                "next_page": None,
            },
        )
    ]
    src = source(scripted.url, id_field="key", updated_field="modified")
    assert list(src.records(Slice(0))) == [
        SourceRecord("7", "1763633730123", '{"modified":1763633730123,"key":7,"name":"Zoë"}'),
        SourceRecord(None, None, '{"name":"no id","modified":null}'),
        SourceRecord('{"code":"x"}', "true", '{"key":{"code":"x"},"modified":true}'),
        SourceRecord(None, None, "5"),
    ]


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([(200, b"<html>busy</html>")], "answered a body that is not JSON"),
        ([(200, {"items": []})], "answered JSON without a list at 'data'"),
        ([(200, {"data": [], "next_page": [2]})], "next_page that is not a string or a number"),
        ([(200, {"data": [], "next_page": "same"})] * 2, "returned the same next_page twice"),
    ],
)
def test_unexpected_answers_are_source_errors(
    scripted: Scripted, answers: list[Answer], message: str
) -> None:
    scripted.answers = list(answers)
    with pytest.raises(SourceError, match=message):
        list(source(scripted.url).records(Slice(0)))


def test_an_api_ignoring_the_page_parameter_is_an_error_not_a_loop(scripted: Scripted) -> None:
    scripted.answers = [(200, {"data": [{"id": "1"}]})] * 2
    src = source(scripted.url, paging=PageNumberPaging())
    with pytest.raises(SourceError, match="answered the same page twice; does it take page"):
        list(src.records(Slice(0)))


# --- retries -----------------------------------------------------------------------------------


def test_transient_503s_are_retried(
    faulty_api: SampleApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    faulty_api.inject_faults(2, status=503)
    src = source(faulty_api.url, **FAST)
    assert read_ids(src, Slice(0)) == ALL_IDS
    assert [m for m in caplog.messages if "retrying" in m] == [
        "GET /customers: HTTP 503; retrying (attempt 2)",
        "GET /customers: HTTP 503; retrying (attempt 3)",
    ]


def test_a_429_is_retried_after_its_retry_after(faulty_api: SampleApiServer) -> None:
    faulty_api.configure(retry_after=1)
    faulty_api.inject_faults(1, status=429)
    assert read_ids(source(faulty_api.url, **FAST), Slice(0, ids=("7",))) == ["7"]
    throttled, retried = faulty_api.served()
    assert (throttled.status, retried.status, throttled.target) == (429, 200, retried.target)
    # Measured at the server: from the 429's answer to the retry's arrival.
    assert 1.0 <= retried.started - throttled.finished < 2.0


def test_a_retry_after_date_is_honoured(scripted: Scripted) -> None:
    later = formatdate(time.time() + 2, usegmt=True)  # whole seconds: 1-2 s from now
    scripted.answers = [
        (429, {"error": "slow down"}, {"Retry-After": later}),
        (200, {"data": [{"id": "1"}], "next_page": None}),
    ]
    assert read_ids(source(scripted.url, **FAST), Slice(0)) == ["1"]
    (_, _, first), (_, _, second) = scripted.requests
    assert 0.9 <= second - first < 3.0


def test_a_long_retry_after_is_capped(scripted: Scripted) -> None:
    scripted.answers = [
        (503, {"error": "maintenance"}, {"Retry-After": "3600"}),
        (200, {"data": [{"id": "1"}], "next_page": None}),
    ]
    src = source(scripted.url, max_retry_after_seconds=0.2, **FAST)
    assert read_ids(src, Slice(0)) == ["1"]
    (_, _, first), (_, _, second) = scripted.requests
    assert 0.2 <= second - first < 1.0


def test_backoff_grows_exponentially_with_jitter(scripted: Scripted) -> None:
    scripted.answers = [(500, {"error": "x"})] * 3 + [(200, {"data": [], "next_page": None})]
    assert list(source(scripted.url, backoff_seconds=0.2).records(Slice(0))) == []
    times = [at for _, _, at in scripted.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Equal jitter: the n-th retry waits between half and all of 0.2 * 2**(n-1) seconds.
    assert [low <= gap < high + 0.3 for gap, (low, high) in zip(
        gaps, [(0.1, 0.2), (0.2, 0.4), (0.4, 0.8)], strict=True
    )] == [True, True, True]  # fmt: skip


def test_a_persistent_500_gives_up_after_max_attempts(faulty_api: SampleApiServer) -> None:
    faulty_api.inject_faults(3, status=500)
    src = source(faulty_api.url, max_attempts=3, **FAST)
    with pytest.raises(SourceError) as raised:
        list(src.records(Slice(0)))
    assert str(raised.value) == (
        f"GET {faulty_api.url}/customers answered HTTP 500: injected fault (HTTP 500)"
        " (gave up after 3 attempts)"
    )
    # Exactly three attempts: the three faults are used up, the next read succeeds.
    assert read_ids(src, Slice(0, ids=("7",))) == ["7"]


def test_a_400_fails_at_once(api: SampleApiServer, caplog: pytest.LogCaptureFixture) -> None:
    src = source(api.url, page_size=501, **FAST)
    with pytest.raises(SourceError) as raised:
        list(src.records(Slice(0)))
    assert str(raised.value) == (
        f"GET {api.url}/customers answered HTTP 400: "
        "page_size: '501' is out of range; accepted: 1..500"
    )
    assert [m for m in caplog.messages if "retrying" in m] == []


def test_other_4xx_fail_at_once(faulty_api: SampleApiServer) -> None:
    faulty_api.inject_faults(2, status=404)
    src = source(faulty_api.url, **FAST)
    for _ in range(2):  # one attempt per read: each read uses up one fault
        with pytest.raises(SourceError, match="answered HTTP 404: injected fault"):
            list(src.records(Slice(0)))
    assert read_ids(src, Slice(0, ids=("7",))) == ["7"]


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    src = source(f"http://127.0.0.1:{port}", max_attempts=2, **FAST)
    with pytest.raises(SourceError) as raised:
        list(src.records(Slice(0)))
    message = str(raised.value)
    assert message.startswith(f"GET http://127.0.0.1:{port}/customers failed: NewConnectionError")
    assert "Connection refused" in message
    assert message.endswith("(gave up after 2 attempts)")


def test_a_silent_server_times_out() -> None:
    # Listening but never answering: connections queue in the backlog and reads time out.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        src = source(url, read_timeout_seconds=0.2, max_attempts=2, **FAST)
        with pytest.raises(SourceError) as raised:
            list(src.records(Slice(0)))
    message = str(raised.value)
    assert message.startswith(f"GET {url}/customers failed: ReadTimeoutError: ")
    assert message.endswith("(gave up after 2 attempts)")


def test_a_rate_limit_spaces_requests(scripted: Scripted) -> None:
    scripted.answers = [(200, {"data": [{"id": str(n)}], "next_page": str(n)}) for n in range(3)]
    scripted.answers.append((200, {"data": [], "next_page": None}))
    # 10 requests/s shared by the read's 2 tasks: one every 0.2 s in each task.
    fetch = SliceFetcher(config(scripted.url, requests_per_second=10.0), None, tasks=2)
    started = time.monotonic()
    assert [r[0] for r in fetch([Slice(0)])] == ["0", "1", "2"]
    elapsed = time.monotonic() - started
    # Four requests, the last three each 0.2 s after the one before: 0.6 s at least, however
    # loaded the machine (load only delays). Measured where the limit is applied, the client:
    # the server's arrival times can bunch up when an earlier request's arrival was delayed.
    assert len(scripted.requests) == 4
    assert elapsed >= 0.59, elapsed


def test_threads_in_a_task_fetch_its_slices_side_by_side() -> None:
    with SampleApiServer(records=RECORDS, now=NOW, latency_ms=100) as slow_api:
        src = source(slow_api.url, threads_per_task=3, **YEARLY)
        fetch = SliceFetcher(src.config, None, tasks=1)
        rows = list(fetch(src.full_slices()))
        assert sorted(rows) == sorted(server_rows(slow_api, ALL_IDS))
        assert slow_api.max_concurrent == 3


def test_a_failing_thread_fails_the_task(faulty_api: SampleApiServer) -> None:
    faulty_api.inject_faults(1, status=404)
    src = source(faulty_api.url, threads_per_task=3, **YEARLY)
    with pytest.raises(SourceError, match="answered HTTP 404: injected fault"):
        list(SliceFetcher(src.config, None, tasks=1)(src.full_slices()))


# --- the token ---------------------------------------------------------------------------------


def test_the_token_is_sent(secured_api: SampleApiServer) -> None:
    assert read_ids(source(secured_api.url, TOKEN), Slice(0, ids=("1", "2"))) == ["1", "2"]


def test_a_missing_or_wrong_token_fails_without_showing_it(secured_api: SampleApiServer) -> None:
    with pytest.raises(SourceError, match="answered HTTP 401: missing or wrong bearer token"):
        list(source(secured_api.url).records(Slice(0)))
    with pytest.raises(SourceError, match="answered HTTP 401") as raised:
        list(source(secured_api.url, "wrong-token").records(Slice(0)))
    assert "wrong-token" not in str(raised.value)


def test_a_token_that_cannot_be_a_header_is_refused_without_showing_it() -> None:
    with pytest.raises(PipelineDefinitionError) as raised:
        source("http://127.0.0.1:1", "abc\r\nX-Injected: 1")
    assert str(raised.value) == (
        "token: has spaces or control characters; accepted: printable ASCII"
    )


def test_an_echoed_token_is_masked(scripted: Scripted) -> None:
    # A server that echoes the request's Authorization header in its error message.
    scripted.answers = [(400, {"error": f"refused header 'Bearer {SENTINEL}'"})]
    src = source(scripted.url, SENTINEL)
    with pytest.raises(SourceError) as raised:
        list(src.records(Slice(0)))
    assert str(raised.value) == (
        f"GET {scripted.url}/customers answered HTTP 400: refused header 'Bearer ***'"
    )
    assert scripted.requests[0][:2] == ("/customers?page_size=7", f"Bearer {SENTINEL}")


def test_the_token_never_shows_in_reprs_or_pickles() -> None:
    src = source("http://127.0.0.1:1", SENTINEL)
    secret = Secret(SENTINEL)
    shown = [repr(src), str(src), src.description, repr(src.config), repr(secret), str(secret)]
    assert [SENTINEL in text for text in shown] == [False] * len(shown)
    # What travels to the executors: masked, and whole again on the other side.
    task = cloudpickle.dumps(SliceFetcher(src.config, secret, tasks=1))
    assert SENTINEL.encode() not in task
    assert pickle.loads(task).token.reveal() == SENTINEL  # noqa: S301 - our own bytes


# --- configuration -----------------------------------------------------------------------------


def test_description_is_the_endpoint_url() -> None:
    src = RestSource(RestSourceConfig("https://api.example.com/v1/", path="/customers/"))
    assert src.description == "https://api.example.com/v1/customers"
    assert repr(src) == "RestSource('https://api.example.com/v1/customers')"


@pytest.mark.parametrize(
    "base_url",
    [
        "ftp://example.com",
        "file:///etc/passwd",
        "example.com",
        "http://",
        "http://example.com:99999",
        "http://example.com/?key=1",
        "http://user:pass@example.com",
    ],
)
def test_unusable_base_urls_are_refused(base_url: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=r"^base_url: ") as raised:
        RestSourceConfig(base_url, path="customers")
    assert "pass@" not in str(raised.value)


@pytest.mark.parametrize(
    ("setting", "value", "accepted"),
    [
        ("path", "../admin", "segments of letters"),
        ("records_at", "data..items", "a dotted path"),
        ("paging", "cursor", "PageNumberPaging(...), OffsetPaging(...)"),
        ("paging", CursorPaging(next_at=""), "a dotted path"),
        ("paging", OffsetPaging(limit_param="a b"), "a query parameter name"),
        ("page_size", 0, "an integer >= 1"),
        ("since_param", "", "a query parameter name"),
        ("ids_separator", ", ", "one character"),
        ("max_ids_per_request", 0, "an integer >= 1"),
        ("full_start", datetime(2024, 1, 1), "a timezone-aware datetime"),
        ("slice_width", timedelta(0), "at least one second"),
        ("max_concurrency", 0, "an integer >= 1"),
        ("threads_per_task", 0, "an integer >= 1"),
        ("slices_per_batch", 0, "an integer >= 1"),
        ("read_timeout_seconds", 0, "a number > 0"),
        ("max_attempts", 0, "an integer >= 1"),
        ("backoff_seconds", -1, "a number >= 0"),
        ("requests_per_second", float("nan"), "a number > 0"),
        ("rate_limit_per", "second", "'read' or 'task'"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(
    setting: str, value: Any, accepted: str
) -> None:
    with pytest.raises(PipelineDefinitionError) as raised:
        config("http://127.0.0.1:1", **{setting: value})
    name = "paging" if setting == "paging" else setting
    assert str(raised.value).startswith(f"{name}")
    assert accepted in str(raised.value)


def test_a_bad_setting_stops_the_job_before_spark_with_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from glue_replay import Pipeline

    def misconfigured(settings: Any) -> RestSource:
        return RestSource(config(settings.source_url, page_size=0))

    broken = Pipeline(entity=PIPELINE.entity, source=misconfigured)
    assert run_ingest_job(["ingest.py", "--replay_mode", "full"], broken) == 2
    assert capsys.readouterr().err == (
        "ingest: pipeline definition: page_size: 0 is invalid; accepted: an integer >= 1\n"
    )


# --- on Spark: parallel, exact, and the token nowhere -------------------------------------------

SOURCE_COLUMNS = "id string, updated_at string, payload string"
LAST_SLICE_IDS = ["18", "21", "23", "27", "32", "37", "42", "49"]


def union(batches: list[DataFrame]) -> DataFrame:
    return reduce(DataFrame.unionByName, batches)


def assert_rows(spark: SparkSession, actual: DataFrame, expected: list[Any]) -> None:
    assert_df_equality(
        actual,
        spark.createDataFrame(expected, SOURCE_COLUMNS),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def overlapping_slices(api: SampleApiServer) -> set[tuple[str, str]]:
    """Pairs of time slices (by their filters) whose requests were in flight together."""
    served = api.served()

    def slice_of(target: str) -> str:
        return "&".join(p for p in target.split("?")[1].split("&") if p.startswith("updated"))

    return {
        tuple(sorted((slice_of(a.target), slice_of(b.target))))  # type: ignore[misc]
        for a in served
        for b in served
        if slice_of(a.target) != slice_of(b.target)
        and a.started < b.finished
        and b.started < a.finished
    }


def test_a_full_read_is_fetched_by_parallel_tasks_in_deterministic_batches(
    spark: SparkSession,
) -> None:
    with SampleApiServer(records=RECORDS, now=NOW, latency_ms=150) as slow_api:
        src = source(slow_api.url, page_size=5, max_concurrency=2, **YEARLY)
        batches = src.read_full(spark)
        assert len(batches) == 2  # slices 0 and 1 together, then slice 2
        first = [i for i in ALL_IDS if i not in LAST_SLICE_IDS]
        assert_rows(spark, batches[0], server_rows(slow_api, first))
        together = overlapping_slices(slow_api)
        assert_rows(spark, batches[1], server_rows(slow_api, LAST_SLICE_IDS))

    # Slices 0 and 1 were fetched by two tasks at once, each paging on its own.
    assert slow_api.max_concurrent == 2
    assert together == {
        (
            "updated_before=2024-12-31T00%3A00%3A00Z",
            "updated_since=2024-12-31T00%3A00%3A00Z&updated_before=2025-12-31T00%3A00%3A00Z",
        )
    }


def test_a_read_failed_mid_way_is_completed_by_its_retry_as_of_its_first_attempt(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Yearly slices, one batch each. The first attempt (at NOW) appends batch 1 and fails on
    batch 2 (the server fails every read after its first). The retry runs after a slice
    boundary (2026-12-31) has passed, yet reads as of its first attempt: the same three slices,
    batch 1 skipped without a request, batches 2 and 3 appended; raw holds each record once."""
    clock = [NOW]
    warehouse = str(tmp_path / "warehouse")
    argv = [
        "ingest_customers.py",
        *("--replay_mode", "full", "--request_id", "full-1", "--warehouse", warehouse),
    ]
    with SampleApiServer(records=RECORDS, now=NOW) as api:
        settings = config(
            api.url, page_size=100, max_concurrency=1, max_attempts=2, **YEARLY, **FAST
        )
        pipeline = Pipeline(
            entity=CUSTOMERS, source=lambda _s: RestSource(settings, clock=lambda: clock[0])
        )
        api.inject_faults(1000, status=500, after=1)
        assert run_ingest_job(argv, pipeline, spark=spark, clock=lambda: clock[0]) == 1
        api.inject_faults(0)
        api.reset_stats()
        clock[0] = datetime(2027, 2, 1, tzinfo=UTC)
        assert run_ingest_job(argv, pipeline, spark=spark, clock=lambda: clock[0]) == 0
        retried = sorted(s.target.split("?")[1] for s in api.served())
        expected = [(i, payload) for i, _, payload in server_rows(api, ALL_IDS)]

    tables = Warehouse(warehouse)
    assert_df_equality(
        spark.read.format("delta").load(tables.raw("customers")).select("id", "payload"),
        spark.createDataFrame(expected, "id string, payload string"),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert retried == [
        "updated_since=2024-12-31T00%3A00%3A00Z&updated_before=2025-12-31T00%3A00%3A00Z"
        "&page_size=100",
        "updated_since=2025-12-31T00%3A00%3A00Z&updated_before=2026-06-01T12%3A00%3A00Z"
        "&page_size=100",
    ]
    ledger = read_runs(spark, tables).orderBy("started_at")
    (failed, done) = ledger.select("status", "error", "rows_read").collect()
    assert failed["status"] == "failed"
    assert failed["error"].endswith(
        "batches 1-1 of 3 appended; run the same request again to complete the read"
    )
    assert (done["status"], done["rows_read"]) == ("succeeded", RECORDS)


def test_with_a_fifth_of_requests_failing_every_mode_reads_exactly_the_servers_data(
    spark: SparkSession, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with SampleApiServer(
        records=RECORDS, now=NOW, token=SENTINEL, failure_rate=0.2, retry_after=1
    ) as flaky:
        src = source(flaky.url, SENTINEL, page_size=5, max_attempts=10, **YEARLY, **FAST)
        wanted = spark.createDataFrame([(i,) for i in ["42", "3", "999", "17"]], "id string")
        reads = {
            "full": src.read_full(spark),
            "since": src.read_since(spark, JAN_1, MAR_15),
            "bau": src.read_bau(spark, datetime(2026, 1, 16, 4, 31, 3, tzinfo=UTC), MAR_15),
            "targeted": src.read_ids(spark, wanted),
        }
        expected = {
            "full": ALL_IDS,
            "since": IN_Q1,
            "bau": ["21", "23", "27", "42"],
            "targeted": ["3", "17", "42"],
        }
        for mode, batches in reads.items():
            assert_rows(spark, union(batches), server_rows(flaky, expected[mode]))
        statuses = {s.status for s in flaky.served()}
        for batches in reads.values():
            for batch in batches:
                batch.explain(True)
                assert SENTINEL not in batch.rdd.toDebugString().decode()

    assert statuses == {200, 429, 503}
    plans = capsys.readouterr()
    assert "== Physical Plan ==" in plans.out
    assert SENTINEL not in plans.out + plans.err
    assert SENTINEL not in caplog.text
    assert SENTINEL not in repr(reads)


def test_a_failed_read_names_the_status_and_never_the_token(
    spark: SparkSession, scripted: Scripted
) -> None:
    scripted.answers = [(403, {"error": f"token Bearer {SENTINEL} is not allowed here"})]
    (batch,) = source(scripted.url, SENTINEL).read_full(spark)
    with pytest.raises(Exception) as raised:  # noqa: PT011 - Spark wraps the task's error
        batch.collect()
    message = str(raised.value)
    assert (
        f"SourceError: GET {scripted.url}/customers answered HTTP 403: "
        "token Bearer *** is not allowed here"
    ) in message
    assert SENTINEL not in message


@pytest.mark.slow  # a job of its own: a JVM start
def test_an_ingest_job_never_shows_the_token(
    spark: SparkSession,
    tmp_path: Path,
    scripted: Scripted,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The job as Glue runs it (its own process and executors) against a sample API that wants
    the token and fails a fifth of its requests; then, here, a run against a server echoing the
    token in its refusal. The token is in no output, no log and no ledger row."""
    warehouse = str(tmp_path / "warehouse")
    with SampleApiServer(
        records=RECORDS, now=NOW, token=SENTINEL, failure_rate=0.2, retry_after=1
    ) as flaky:
        job = subprocess.run(
            [
                "scripts/spark-submit", "glue_jobs/ingest_customers.py", "--replay_mode", "full",
                "--warehouse", warehouse, "--source_url", flaky.url, "--request_id", "full-1",
            ],
            cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
            env={**os.environ, SOURCE_TOKEN_ENV: SENTINEL},
        )  # fmt: skip
        served = {s.status for s in flaky.served()}
    assert job.returncode == 0, job.stderr[-3000:]
    assert served == {200, 429, 503}
    assert SENTINEL not in job.stdout + job.stderr

    monkeypatch.setenv(SOURCE_TOKEN_ENV, SENTINEL)
    scripted.answers = [(403, {"error": f"token Bearer {SENTINEL} is not allowed here"})] * 8
    argv = ["ingest_customers.py", "--replay_mode", "full", "--warehouse", warehouse]
    failed = run_ingest_job(
        [*argv, "--source_url", scripted.url, "--request_id", "full-2"], PIPELINE, spark=spark
    )
    output = capsys.readouterr()
    assert failed == 1
    assert "HTTP 403: token Bearer *** is not allowed here" in output.err
    assert SENTINEL not in output.out + output.err + caplog.text

    tables = Warehouse(warehouse)
    raw = spark.read.format("delta").load(tables.raw("customers")).select("id")
    assert sorted(r["id"] for r in raw.collect()) == sorted(ALL_IDS)
    ledger = read_runs(spark, tables)
    assert ledger.select("request_id", "status").orderBy("request_id").collect() == [
        ("full-1", "succeeded"),
        ("full-2", "failed"),
    ]
    cells = [r["row"] for r in ledger.select(F.to_json(F.struct("*")).alias("row")).collect()]
    assert [SENTINEL in cell for cell in cells] == [False, False]
    assert any("HTTP 403" in cell for cell in cells)


def test_the_customers_pipeline_reads_the_sample_api_in_one_parallel_batch() -> None:
    src = RestSource(customers_api_config("http://127.0.0.1:8765"), clock=lambda: NOW)
    slices = src.full_slices()
    assert (slices[0].since, slices[0].until) == (None, datetime(2023, 6, 30, tzinfo=UTC))
    assert (slices[-1].since, slices[-1].until) == (datetime(2025, 12, 16, tzinfo=UTC), None)
    assert len(slices) == 7 <= src.config.batch_size
