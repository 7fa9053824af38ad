"""RestApiSource against a real loopback server: the bundled sample API, or a scripted one where
a test needs answers the sample API never gives (echoed headers, broken pages, silence)."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from glue_replay.errors import SourceError
from glue_replay.sources.base import SourceRecord
from glue_replay.sources.rest import RestApiSource, SourceQuery
from glue_replay_devtools.sample_api import SampleApiServer
from sample_data import ALL_IDS, NOW, RECORD_1, RECORDS

TOKEN = "s3cret-token"
FAST = {"backoff_seconds": 0.001}  # retries without waiting

# Records of the sample API at (60 records, NOW, seed 7), as the source must yield them: the
# payload is the record unchanged, compact, key order kept, non-ASCII as is.
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


@pytest.fixture(scope="module")
def api() -> Iterator[SampleApiServer]:
    """A read-only sample API shared by the module."""
    with SampleApiServer(records=RECORDS, now=NOW) as server:
        yield server


@pytest.fixture
def faulty_api() -> Iterator[SampleApiServer]:
    """A sample API of its own, for tests that inject faults."""
    with SampleApiServer(records=RECORDS, now=NOW) as server:
        yield server


@pytest.fixture(scope="module")
def secured_api() -> Iterator[SampleApiServer]:
    with SampleApiServer(records=RECORDS, now=NOW, token=TOKEN) as server:
        yield server


@dataclass
class Scripted:
    """A loopback server answering each GET with the next scripted (status, JSON body)."""

    answers: list[tuple[int, Any]]
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)
    url: str = ""


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    state = Scripted(answers=[])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("Authorization")))
            status, body = state.answers.pop(0)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def read_ids(source: RestApiSource, query: SourceQuery) -> list[str | None]:
    return [record.id for record in source.read(query)]


# --- reading the sample API --------------------------------------------------------------------


def test_full_read_yields_every_record_unchanged(api: SampleApiServer) -> None:
    records = list(RestApiSource(api.url, path="customers", page_size=7).read(SourceQuery()))

    assert [r.id for r in records] == ALL_IDS
    assert records[0].updated_at == "2025-03-03T00:07:13Z"
    assert json.loads(records[0].payload) == RECORD_1
    assert records[3] == RECORD_4
    assert (records[39].id, records[39].updated_at) == ("40", "last tuesday")
    # Exactly the server's data, record for record.
    assert [json.loads(r.payload) for r in records] == [c.record for c in api.customers()]


def test_progress_is_logged_every_ten_pages(
    api: SampleApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="glue_replay.sources.rest")
    assert (
        len(list(RestApiSource(api.url, path="customers", page_size=5).read(SourceQuery())))
        == RECORDS
    )
    assert caplog.messages == [f"{api.url}/customers: read 10 pages, 50 records so far"]


def test_updated_since_is_inclusive_and_before_exclusive(api: SampleApiServer) -> None:
    source = RestApiSource(api.url, path="customers")
    # Record 23 was updated at exactly 2026-01-16T04:31:03Z; the query is in another zone.
    at_23 = datetime(2026, 1, 16, 6, 31, 3, tzinfo=timezone(timedelta(hours=2)))
    since = SourceQuery(updated_since=at_23)
    assert read_ids(source, since) == ["18", "21", "23", "27", "37", "42", "49"]
    window = SourceQuery(updated_since=datetime(2025, 12, 7, tzinfo=UTC), updated_before=at_23)
    assert read_ids(source, window) == ["17", "32", "53"]


def test_millisecond_boundaries_are_sent_exactly(api: SampleApiServer) -> None:
    # Record 49 was updated at 2026-03-19T07:42:46.350Z.
    at_49 = datetime(2026, 3, 19, 7, 42, 46, 350000, tzinfo=UTC)
    source = RestApiSource(api.url, path="customers")
    assert read_ids(source, SourceQuery(updated_since=at_49)) == ["18", "37", "49"]
    after_49 = SourceQuery(updated_since=at_49 + timedelta(milliseconds=1))
    assert read_ids(source, after_49) == ["18", "37"]


def test_naive_times_are_refused() -> None:
    source = RestApiSource("http://127.0.0.1:1", path="customers")
    with pytest.raises(SourceError, match="updated_since: 2026-01-01T00:00:00 is naive"):
        list(source.read(SourceQuery(updated_since=datetime(2026, 1, 1))))


def test_ids_are_read_in_batches_and_unknown_ids_are_absent(api: SampleApiServer) -> None:
    source = RestApiSource(api.url, path="customers", id_batch_size=3)
    ids = ("3", "17", "999", "20", "abc", "5", "1000", "42")
    # Batches (3, 17, 999), (20, abc, 5), (1000, 42); the API orders each batch by id.
    assert read_ids(source, SourceQuery(ids=ids)) == ["3", "17", "5", "20", "42"]


def test_more_ids_than_the_api_takes_at_once(api: SampleApiServer) -> None:
    # The sample API refuses more than 200 ids a request; batches of 100 keep under that.
    ids = tuple(str(n) for n in range(1, 251))
    assert read_ids(RestApiSource(api.url, path="customers"), SourceQuery(ids=ids)) == ALL_IDS


def test_ids_batches_are_paged(api: SampleApiServer) -> None:
    source = RestApiSource(api.url, path="customers", page_size=2, id_batch_size=5)
    ids = ("9", "8", "7", "6", "5", "4", "3")
    assert read_ids(source, SourceQuery(ids=ids)) == ["5", "6", "7", "8", "9", "3", "4"]


def test_ids_and_time_filters_combine(api: SampleApiServer) -> None:
    query = SourceQuery(ids=("42", "3", "17"), updated_since=datetime(2025, 12, 1, tzinfo=UTC))
    assert read_ids(RestApiSource(api.url, path="customers"), query) == ["17", "42"]


def test_a_repeated_id_is_read_once(api: SampleApiServer) -> None:
    source = RestApiSource(api.url, path="customers", id_batch_size=1)
    assert read_ids(source, SourceQuery(ids=("5", "6", "5"))) == ["5", "6"]


def test_no_ids_reads_nothing(scripted: Scripted) -> None:
    assert read_ids(RestApiSource(scripted.url, path="customers"), SourceQuery(ids=())) == []
    assert scripted.requests == []


@pytest.mark.parametrize("bad_id", ["a,b", ""])
def test_ids_that_cannot_be_sent_are_refused(bad_id: str) -> None:
    with pytest.raises(SourceError, match="ids: "):
        list(
            RestApiSource("http://127.0.0.1:1", path="customers").read(
                SourceQuery(ids=("1", bad_id))
            )
        )


# --- retries -----------------------------------------------------------------------------------


def test_transient_503s_are_retried(
    faulty_api: SampleApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    faulty_api.inject_faults(2, status=503)
    records = list(RestApiSource(faulty_api.url, path="customers", **FAST).read(SourceQuery()))
    assert [r.id for r in records] == ALL_IDS
    retried = [m for m in caplog.messages if m.startswith("attempt ")]
    assert retried == [
        f"attempt 1/4: GET {faulty_api.url}/customers answered HTTP 503: injected fault (HTTP 503)",
        f"attempt 2/4: GET {faulty_api.url}/customers answered HTTP 503: injected fault (HTTP 503)",
    ]


def test_429_is_retried(faulty_api: SampleApiServer) -> None:
    faulty_api.inject_faults(1, status=429)
    assert read_ids(
        RestApiSource(faulty_api.url, path="customers", **FAST), SourceQuery(ids=("7",))
    ) == ["7"]


def test_a_persistent_500_gives_up_after_max_attempts(faulty_api: SampleApiServer) -> None:
    faulty_api.inject_faults(3, status=500)
    source = RestApiSource(faulty_api.url, path="customers", max_attempts=3, **FAST)
    with pytest.raises(SourceError) as raised:
        list(source.read(SourceQuery()))
    assert str(raised.value) == (
        f"GET {faulty_api.url}/customers answered HTTP 500: injected fault (HTTP 500)"
        " (gave up after 3 attempts)"
    )
    # Exactly three attempts: the three faults are used up, the next read succeeds.
    assert read_ids(source, SourceQuery(ids=("7",))) == ["7"]


def test_a_400_fails_at_once(api: SampleApiServer, caplog: pytest.LogCaptureFixture) -> None:
    source = RestApiSource(api.url, path="customers", page_size=501, **FAST)
    with pytest.raises(SourceError) as raised:
        list(source.read(SourceQuery()))
    assert str(raised.value) == (
        f"GET {api.url}/customers answered HTTP 400: "
        "page_size: '501' is out of range; accepted: 1..500"
    )
    assert [m for m in caplog.messages if m.startswith("attempt ")] == []


def test_other_4xx_fail_at_once(faulty_api: SampleApiServer) -> None:
    faulty_api.inject_faults(2, status=404)
    source = RestApiSource(faulty_api.url, path="customers", **FAST)
    for _ in range(2):  # one attempt per read: each read uses up one fault
        with pytest.raises(SourceError, match="answered HTTP 404"):
            list(source.read(SourceQuery()))
    assert read_ids(source, SourceQuery(ids=("7",))) == ["7"]


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = RestApiSource(f"http://127.0.0.1:{port}", path="customers", max_attempts=2, **FAST)
    with pytest.raises(SourceError) as raised:
        list(source.read(SourceQuery()))
    message = str(raised.value)
    assert message.startswith(f"GET http://127.0.0.1:{port}/customers failed: URLError: ")
    assert message.endswith("(gave up after 2 attempts)")


def test_a_silent_server_times_out() -> None:
    # Listening but never answering: connections queue in the backlog and reads time out.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        source = RestApiSource(url, path="customers", timeout_seconds=0.2, max_attempts=2, **FAST)
        with pytest.raises(SourceError) as raised:
            list(source.read(SourceQuery()))
    message = str(raised.value)
    assert message.startswith(f"GET {url}/customers failed: TimeoutError: ")
    assert message.endswith("(gave up after 2 attempts)")


# --- tokens ------------------------------------------------------------------------------------


def test_the_token_is_sent(secured_api: SampleApiServer) -> None:
    source = RestApiSource(secured_api.url, path="customers", token=TOKEN)
    assert read_ids(source, SourceQuery(ids=("1", "2"))) == ["1", "2"]


def test_a_missing_or_wrong_token_fails_without_showing_it(secured_api: SampleApiServer) -> None:
    with pytest.raises(SourceError, match="answered HTTP 401: missing or wrong bearer token"):
        list(RestApiSource(secured_api.url, path="customers").read(SourceQuery()))
    with pytest.raises(SourceError, match="answered HTTP 401") as raised:
        list(
            RestApiSource(secured_api.url, path="customers", token="wrong-token").read(
                SourceQuery()
            )
        )
    assert "wrong-token" not in str(raised.value)


def test_a_token_that_cannot_be_a_header_is_refused_without_showing_it() -> None:
    with pytest.raises(SourceError) as raised:
        RestApiSource("http://127.0.0.1:1", path="customers", token="abc\r\nX-Injected: 1")
    assert str(raised.value) == (
        "token: has spaces or control characters; accepted: printable ASCII"
    )


def test_errors_never_contain_the_token(scripted: Scripted) -> None:
    # A server that echoes the request's Authorization header in its error message.
    scripted.answers = [(400, {"error": f"refused header 'Bearer {TOKEN}'"})]
    source = RestApiSource(scripted.url, path="customers", token=TOKEN)
    with pytest.raises(SourceError) as raised:
        list(source.read(SourceQuery()))
    assert str(raised.value) == (
        f"GET {scripted.url}/customers answered HTTP 400: refused header 'Bearer ***'"
    )
    assert scripted.requests == [("/customers?page_size=500", f"Bearer {TOKEN}")]
    assert TOKEN not in repr(source)
    assert TOKEN not in source.description


# --- the protocol, seen from a scripted server -------------------------------------------------


def test_query_parameters_are_encoded(scripted: Scripted) -> None:
    scripted.answers = [(200, {"data": [], "next_page": None})]
    query = SourceQuery(
        updated_since=datetime(2026, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))),
        updated_before=datetime(2026, 1, 2, 0, 0, 0, 123000, tzinfo=UTC),
        ids=("a:1", "b&c=d"),
    )
    assert list(RestApiSource(scripted.url, path="customers", page_size=50).read(query)) == []
    assert scripted.requests == [
        (
            "/customers?updated_since=2026-01-01T00%3A00%3A00Z"
            "&updated_before=2026-01-02T00%3A00%3A00.123000Z"
            "&ids=a%3A1%2Cb%26c%3Dd&page_size=50",
            None,
        )
    ]


def test_next_page_is_followed_within_each_batch(scripted: Scripted) -> None:
    scripted.answers = [
        (200, {"data": [{"id": "a"}], "next_page": "t1"}),
        (200, {"data": [{"id": "b"}], "next_page": None}),
        (200, {"data": [{"id": "c"}], "next_page": None}),
    ]
    source = RestApiSource(scripted.url, path="accounts", id_batch_size=2)
    assert read_ids(source, SourceQuery(ids=("a", "b", "c"))) == ["a", "b", "c"]
    assert [path for path, _ in scripted.requests] == [
        "/accounts?ids=a%2Cb&page_size=500",
        "/accounts?ids=a%2Cb&page_size=500&page=t1",
        "/accounts?ids=c&page_size=500",
    ]


def test_records_are_passed_on_whatever_their_shape(scripted: Scripted) -> None:
    scripted.answers = [
        (
            200,
            {
                "data": [
                    {"updated_at": 1763633730123, "id": 7, "name": "Zoë"},
                    {"name": "no id", "updated_at": None},
                    {"id": {"code": "x"}, "updated_at": True},
                    5,
                ],
                "next_page": None,
            },
        )
    ]
    assert list(RestApiSource(scripted.url, path="customers").read(SourceQuery())) == [
        SourceRecord("7", "1763633730123", '{"updated_at":1763633730123,"id":7,"name":"Zoë"}'),
        SourceRecord(None, None, '{"name":"no id","updated_at":null}'),
        SourceRecord('{"code":"x"}', "true", '{"id":{"code":"x"},"updated_at":true}'),
        SourceRecord(None, None, "5"),
    ]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"<html>busy</html>", "answered a body that is not JSON"),
        ({"items": []}, "answered JSON without a 'data' list"),
        ({"data": [], "next_page": 2}, "answered a next_page that is not a non-empty string"),
    ],
)
def test_unexpected_responses_are_source_errors(
    scripted: Scripted, answer: Any, message: str
) -> None:
    scripted.answers = [(200, answer)]
    with pytest.raises(SourceError, match=message):
        list(RestApiSource(scripted.url, path="customers").read(SourceQuery()))


def test_a_next_page_that_does_not_move_is_an_error(scripted: Scripted) -> None:
    scripted.answers = [(200, {"data": [], "next_page": "same"})] * 2
    with pytest.raises(SourceError, match="returned the same next_page twice: 'same'"):
        list(RestApiSource(scripted.url, path="customers").read(SourceQuery()))


# --- configuration -----------------------------------------------------------------------------


def test_description_is_the_endpoint_url() -> None:
    source = RestApiSource("https://api.example.com/v1/", path="/customers/")
    assert source.description == "https://api.example.com/v1/customers"


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
    with pytest.raises(SourceError, match=r"^base_url: ") as raised:
        RestApiSource(base_url, path="customers")
    assert "pass@" not in str(raised.value)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("path", "../admin"),
        ("page_size", 0),
        ("id_batch_size", 0),
        ("timeout_seconds", 0),
        ("max_attempts", 0),
        ("backoff_seconds", -1),
    ],
)
def test_out_of_range_settings_are_refused(argument: str, value: Any) -> None:
    with pytest.raises(SourceError, match=f"^{argument}: "):
        RestApiSource("http://127.0.0.1:1", **{"path": "customers", argument: value})
