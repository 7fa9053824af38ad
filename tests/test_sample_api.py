"""The bundled sample API: its generated data, its HTTP contract and its command line.

Expected data is spelled out: the generator is deterministic for (records, now, seed), and the
demo and the pipeline tests rely on exactly this data.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from glue_replay_devtools.sample_api import (
    MALFORMED_EMAIL,
    MALFORMED_LOYALTY_POINTS,
    MALFORMED_UPDATED_AT,
    SampleApiServer,
    generate_customers,
    malformed_ids,
)
from sample_data import ALL_IDS, NOW, RECORD_1, RECORDS

# Records 1..5: one per timestamp format for updated_at (1: ISO Z, 2: ISO with millis and an
# offset, 3: naive with a space, 4: epoch millis, 5: dd/MM/yyyy).
RECORD_2 = {
    "id": "2",
    "email": "Aoife.OBrien2@example.net",
    "first_name": "Aoife",
    "last_name": "O'Brien",
    "phone": "+353 1 555 0002",
    "status": "suspended",
    "loyalty_points": 1441,
    "address": None,
    "created_at": 1722758245568,
    "updated_at": "2025-02-21T05:12:52.090-03:30",
}
RECORD_5 = {
    "id": "5",
    "email": "Jane.Schmidt5@mail.example.com",
    "first_name": "Jane",
    "last_name": "Schmidt",
    "phone": "+31 20 555 0005",
    "status": " active ",
    "loyalty_points": 2066,
    "address": {
        "line1": "129 Prinsengracht",
        "line2": None,
        "city": None,
        "postcode": "3511 AA",
        "country": "NL",
    },
    "created_at": "2024-01-30T22:55:57.503+02:00",
    "updated_at": "18/07/2024 03:35:17",
}
# (rendered updated_at, canonical instant) of records 1..5.
UPDATED_AT_1_TO_5 = [
    ("2025-03-03T00:07:13Z", datetime(2025, 3, 3, 0, 7, 13, tzinfo=UTC)),
    ("2025-02-21T05:12:52.090-03:30", datetime(2025, 2, 21, 8, 42, 52, 90000, tzinfo=UTC)),
    ("2023-07-21 17:53:35", datetime(2023, 7, 21, 17, 53, 35, tzinfo=UTC)),
    (1708325149296, datetime(2024, 2, 19, 6, 45, 49, 296000, tzinfo=UTC)),
    ("18/07/2024 03:35:17", datetime(2024, 7, 18, 3, 35, 17, tzinfo=UTC)),
]


class FakeClock:
    """A settable clock for mutations."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def api() -> Iterator[SampleApiServer]:
    """A read-only server shared by the module (tests that change data use ``mutable_api``)."""
    with SampleApiServer(records=RECORDS, now=NOW) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 6, 1, 12, 30, 15, 700000, tzinfo=UTC))


@pytest.fixture
def mutable_api(clock: FakeClock) -> Iterator[SampleApiServer]:
    with SampleApiServer(records=RECORDS, now=NOW, clock=clock) as server:
        yield server


def call(url: str, body: dict[str, Any] | None = None, token: str | None = None) -> tuple[int, Any]:
    """GET (or POST ``body``) and return (status, parsed JSON), whatever the status."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with open_url(request) as response:
        assert response.headers["Content-Type"] == "application/json"
        return response.status, json.loads(response.read())


def open_url(request: urllib.request.Request) -> Any:
    """The response, also for an error status (an HTTPError is a response too)."""
    try:
        return urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as err:
        return err


def list_ids(api: SampleApiServer, **params: str) -> list[str]:
    """Ids of every record /customers returns for ``params``, following next_page."""
    ids: list[str] = []
    page: str | None = None
    while True:
        query = dict(params, **({"page": page} if page else {}))
        status, body = call(f"{api.url}/customers?{urlencode(query)}")
        assert status == 200, body
        ids += [record["id"] for record in body["data"]]
        page = body["next_page"]
        if page is None:
            return ids


# --- generated data ----------------------------------------------------------------------------


def test_generation_is_deterministic_for_count_now_and_seed() -> None:
    first = generate_customers(RECORDS, NOW, seed=7)
    assert generate_customers(RECORDS, NOW, seed=7) == first
    assert [c.record for c in first[:2]] == [RECORD_1, RECORD_2]
    # A record depends on its id, not on how many were generated.
    assert generate_customers(300, NOW, seed=7)[:RECORDS] == first
    assert generate_customers(RECORDS, NOW, seed=8)[0].record != RECORD_1


def test_generated_records_are_anchored_at_now() -> None:
    later = generate_customers(1, NOW + timedelta(days=1))[0]
    assert later.updated_at == UPDATED_AT_1_TO_5[0][1] + timedelta(days=1)
    assert later.record["updated_at"] == "2025-03-04T00:07:13Z"


def test_no_record_was_updated_in_the_last_two_days() -> None:
    customers = generate_customers(3000, NOW)
    newest = max(c.updated_at for c in customers)
    oldest = min(c.updated_at for c in customers)
    assert newest <= NOW - timedelta(days=2)
    assert oldest >= NOW - timedelta(days=3 * 365)
    assert all(c.created_at <= c.updated_at for c in customers)
    assert all(c.updated_at.tzinfo is UTC and c.created_at.tzinfo is UTC for c in customers)


def test_updated_at_rotates_over_the_five_formats() -> None:
    customers = generate_customers(10, NOW)
    rendered = [(c.record["updated_at"], c.updated_at) for c in customers[:5]]
    assert rendered == UPDATED_AT_1_TO_5
    # The rotation repeats: record 6 is rendered like record 1, record 9 like record 4.
    assert customers[5].record["updated_at"] == "2024-05-11T04:48:34Z"
    assert isinstance(customers[8].record["updated_at"], int)
    # created_at rotates too, two formats further on.
    created = [c.record["created_at"] for c in customers[:5]]
    assert created == [
        "2024-05-03 19:05:42",
        1722758245568,
        "28/02/2023 18:48:47",
        "2023-07-30T11:53:00Z",
        "2024-01-30T22:55:57.503+02:00",
    ]


def test_malformed_ids_rule() -> None:
    assert malformed_ids(59) == {"20": MALFORMED_EMAIL, "40": MALFORMED_UPDATED_AT}
    assert malformed_ids(60) == {
        "20": MALFORMED_EMAIL,
        "40": MALFORMED_UPDATED_AT,
        "60": MALFORMED_LOYALTY_POINTS,
    }
    assert malformed_ids(3000) == {
        "20": MALFORMED_EMAIL,
        "40": MALFORMED_UPDATED_AT,
        "60": MALFORMED_LOYALTY_POINTS,
        "300": MALFORMED_EMAIL,
        "600": MALFORMED_UPDATED_AT,
        "900": MALFORMED_LOYALTY_POINTS,
        "1200": MALFORMED_EMAIL,
        "1500": MALFORMED_UPDATED_AT,
        "1800": MALFORMED_LOYALTY_POINTS,
        "2100": MALFORMED_EMAIL,
        "2400": MALFORMED_UPDATED_AT,
        "2700": MALFORMED_LOYALTY_POINTS,
        "3000": MALFORMED_EMAIL,
    }


def test_malformed_records_are_rendered_as_their_kind_says() -> None:
    by_id = {c.id: c for c in generate_customers(RECORDS, NOW)}
    assert by_id["20"].record["email"] == "not-an-email"
    assert by_id["40"].record["updated_at"] == "last tuesday"
    assert by_id["40"].updated_at == datetime(2024, 8, 19, 23, 35, 48, tzinfo=UTC)
    assert by_id["60"].record["loyalty_points"] == "lots"
    # Only those: every other record has an email with "@", a real time, numeric points.
    others = [c.record for c in by_id.values() if c.id not in ("20", "40", "60")]
    assert [r["id"] for r in others if "@" not in r["email"]] == []
    assert [r["id"] for r in others if r["updated_at"] == "last tuesday"] == []
    assert [r["id"] for r in others if isinstance(r["loyalty_points"], str)] == []


# --- HTTP: reads -------------------------------------------------------------------------------


def test_health_counts_records(api: SampleApiServer) -> None:
    assert call(f"{api.url}/health") == (200, {"status": "ok", "records": RECORDS})


def test_url_and_port(api: SampleApiServer) -> None:
    assert api.url == f"http://127.0.0.1:{api.port}"
    assert api.port > 0


def test_get_one_customer(api: SampleApiServer) -> None:
    assert call(f"{api.url}/customers/5") == (200, RECORD_5)


@pytest.mark.parametrize("path", ["/customers/61", "/customers/abc", "/customers/", "/nowhere"])
def test_unknown_resources_are_404(api: SampleApiServer, path: str) -> None:
    status, body = call(f"{api.url}{path}")
    assert status == 404
    assert set(body) == {"error"}


def test_pages_cover_every_id_once_in_id_order(api: SampleApiServer) -> None:
    status, first = call(f"{api.url}/customers?page_size=7")
    assert status == 200
    assert [r["id"] for r in first["data"]] == ["1", "2", "3", "4", "5", "6", "7"]
    assert first["data"][0] == RECORD_1
    assert isinstance(first["next_page"], str)

    ids: list[str] = []
    pages = 0
    page: str | None = None
    while True:
        query = {"page_size": "7", **({"page": page} if page else {})}
        _, body = call(f"{api.url}/customers?{urlencode(query)}")
        ids += [r["id"] for r in body["data"]]
        pages += 1
        page = body["next_page"]
        if page is None:
            break
    assert ids == ALL_IDS
    assert pages == 9  # 8 full pages of 7, then 4: no trailing empty page


def test_default_page_size_is_100(api: SampleApiServer) -> None:
    _, body = call(f"{api.url}/customers")
    assert [r["id"] for r in body["data"]] == ALL_IDS
    assert body["next_page"] is None


def test_updated_since_is_inclusive(api: SampleApiServer) -> None:
    # Exactly record 23's update time.
    assert list_ids(api, updated_since="2026-01-16T04:31:03Z") == [
        "18", "21", "23", "27", "37", "42", "49",
    ]  # fmt: skip
    assert list_ids(api, updated_since="2026-01-16T04:31:04Z") == [
        "18", "21", "27", "37", "42", "49",
    ]  # fmt: skip


def test_updated_before_is_exclusive(api: SampleApiServer) -> None:
    window = {"updated_since": "2025-12-07", "updated_before": "2026-01-16T04:31:03Z"}
    assert list_ids(api, **window) == ["17", "32", "53"]
    window["updated_before"] = "2026-01-16T04:31:03.001Z"
    assert list_ids(api, **window) == ["17", "23", "32", "53"]


def test_time_filters_compare_instants_across_offsets_and_millis(api: SampleApiServer) -> None:
    # Record 49: 2026-03-19T07:42:46.350Z, rendered as epoch millis 1773906166350.
    assert list_ids(api, updated_since="2026-03-19T09:42:46.350+02:00") == ["18", "37", "49"]
    assert list_ids(api, updated_since="2026-03-19T07:42:46.351Z") == ["18", "37"]
    # Date-only means midnight UTC.
    assert list_ids(api, updated_before="2023-07-22") == ["3", "15", "30"]


def test_nothing_changed_in_the_last_day(api: SampleApiServer) -> None:
    since = (NOW - timedelta(days=1)).isoformat()
    assert list_ids(api, updated_since=since) == []


def test_time_filters_use_the_canonical_time_of_malformed_records(api: SampleApiServer) -> None:
    # Record 40 renders updated_at as "last tuesday"; its canonical time is 2024-08-19T23:35:48Z.
    window = {"updated_since": "2024-08-19T23:35:48Z", "updated_before": "2024-08-19T23:35:49Z"}
    assert list_ids(api, **window) == ["40"]


def test_ids_filter_skips_unknown_ids_and_ands_with_time(api: SampleApiServer) -> None:
    assert list_ids(api, ids="42,3,999,abc,17,3") == ["3", "17", "42"]
    assert list_ids(api, ids="42,3,17", updated_since="2025-12-01") == ["17", "42"]
    assert list_ids(api, ids="1,2,3,4,5,6", page_size="4") == ["1", "2", "3", "4", "5", "6"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"updated_since": "2026-01-01T00:00:00"}, "updated_since"),  # no offset
        ({"updated_before": "2026-13-01"}, "updated_before"),
        ({"updated_since": "2026-02-01", "updated_before": "2026-01-01"}, "updated_before"),
        ({"ids": "1,2 3"}, "ids"),
        ({"ids": "1,,2"}, "ids"),
        ({"ids": "x" * 65}, "ids"),
        ({"ids": ",".join(str(n) for n in range(201))}, "ids"),
        ({"page_size": "501"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"page": "not-a-token"}, "page"),
        ({"page": ""}, "page"),
        ({"updated_sinse": "2026-01-01"}, "updated_sinse"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    api: SampleApiServer, query: dict[str, str], parameter: str
) -> None:
    status, body = call(f"{api.url}/customers?{urlencode(query)}")
    assert status == 400
    assert body["error"].startswith(f"{parameter}: ")


def test_200_ids_are_accepted(api: SampleApiServer) -> None:
    ids = ",".join(str(n) for n in range(1, 201))
    assert list_ids(api, ids=ids) == ALL_IDS


def test_a_repeated_parameter_is_400(api: SampleApiServer) -> None:
    status, body = call(f"{api.url}/customers?page_size=5&page_size=6")
    assert status == 400
    assert body["error"].startswith("page_size: given 2 times")


def test_wrong_method_is_405(api: SampleApiServer) -> None:
    assert call(f"{api.url}/admin/mutate") == (
        405,
        {"error": "/admin/mutate accepts POST, not GET"},
    )
    assert call(f"{api.url}/customers", body={}) == (
        405,
        {"error": "/customers accepts GET, not POST"},
    )
    request = urllib.request.Request(f"{api.url}/customers/1", method="DELETE")
    with open_url(request) as response:
        assert response.status == 405


def test_ids_are_ascii_digits(api: SampleApiServer) -> None:
    # "\u0661" is ARABIC-INDIC DIGIT ONE: int() would read it as 1.
    assert call(f"{api.url}/customers/%D9%A1")[0] == 404
    arabic_one = "\u0661"
    status, body = call(f"{api.url}/customers?{urlencode({'ids': f'2,{arabic_one}'})}")
    assert (status, body["error"]) == (
        400,
        f"ids: {arabic_one!r} is not a valid id; accepted: [A-Za-z0-9_.:-]{{1,64}}",
    )


# --- HTTP: mutations and faults ----------------------------------------------------------------


def test_mutate_ids_changes_content_and_stamps_the_clock(
    mutable_api: SampleApiServer, clock: FakeClock
) -> None:
    assert call(f"{mutable_api.url}/admin/mutate", {"ids": ["5", "6"]}) == (
        200,
        {"changed": ["5", "6"]},
    )
    # The clock said 12:30:15.700; the record is stamped to the whole second it renders.
    assert call(f"{mutable_api.url}/customers/5") == (
        200,
        {
            **RECORD_5,
            "email": "jANE.sCHMIDT5@MAIL.EXAMPLE.COM",
            "status": "inactive",
            "loyalty_points": 2076,
            "updated_at": "2026-06-01T12:30:15Z",
        },
    )
    assert list_ids(mutable_api, updated_since="2026-06-01T12:30:15Z") == ["5", "6"]
    assert list_ids(mutable_api, updated_since="2026-06-01T12:30:16Z") == []

    clock.now = datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
    call(f"{mutable_api.url}/admin/mutate", {"ids": ["5"]})
    _, record = call(f"{mutable_api.url}/customers/5")
    assert (record["email"], record["status"], record["loyalty_points"], record["updated_at"]) == (
        "Jane.Schmidt5@mail.example.com",
        "active",
        2086,
        "2026-06-02T08:00:00Z",
    )


def test_mutate_count_spreads_over_well_formed_records(mutable_api: SampleApiServer) -> None:
    status, body = call(f"{mutable_api.url}/admin/mutate", {"count": 5})
    assert (status, body) == (200, {"changed": ["6", "18", "30", "42", "54"]})
    changed = list_ids(mutable_api, updated_since="2026-06-01T12:30:15Z")
    assert changed == ["6", "18", "30", "42", "54"]


def test_mutating_a_malformed_record_keeps_it_malformed(mutable_api: SampleApiServer) -> None:
    call(f"{mutable_api.url}/admin/mutate", {"ids": ["20", "40", "60"]})
    by_id = {c.id: c for c in mutable_api.customers() if c.id in ("20", "40", "60")}
    stamped = datetime(2026, 6, 1, 12, 30, 15, tzinfo=UTC)
    assert {i: c.updated_at for i, c in by_id.items()} == {
        "20": stamped,
        "40": stamped,
        "60": stamped,
    }
    assert by_id["20"].record["email"] == "not-an-email"
    assert by_id["40"].record["updated_at"] == "last tuesday"
    assert by_id["60"].record["loyalty_points"] == "lots"
    assert by_id["60"].record["updated_at"] == "2026-06-01T12:30:15Z"


def test_mutate_unknown_ids_is_404_and_changes_nothing(mutable_api: SampleApiServer) -> None:
    status, body = call(f"{mutable_api.url}/admin/mutate", {"ids": ["5", "999"]})
    assert status == 404
    assert "999" in body["error"]
    assert call(f"{mutable_api.url}/customers/5") == (200, RECORD_5)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"ids": ["1"], "count": 1}, "body"),
        ({"ids": "1"}, "ids"),
        ({"ids": []}, "ids"),
        ({"count": 0}, "count"),
        ({"count": 58}, "count"),  # only 57 of the 60 records are well formed
        ({"count": True}, "count"),
        ({"every": 1}, "every"),
    ],
)
def test_bad_mutate_bodies_are_400(
    mutable_api: SampleApiServer, body: dict[str, Any], field: str
) -> None:
    status, answer = call(f"{mutable_api.url}/admin/mutate", body)
    assert status == 400
    assert answer["error"].startswith(f"{field}: ")


#: Record 61 as an insert at the clock's 2026-06-01T12:30:15 creates it (generated from the seed
#: like the others, anchored at the insert time, updated then).
RECORD_61 = {
    "id": "61",
    "email": "John.Andersson61@example.com ",
    "first_name": "John",
    "last_name": "Andersson",
    "phone": "+33 1 99 00 0061",
    "status": "active",
    "loyalty_points": 3046,
    "address": {
        "line1": "194 Avenue Victor Hugo",
        "line2": None,
        "city": "Paris",
        "postcode": "75008",
        "country": "FR",
    },
    "created_at": "2024-03-11 03:02:18",
    "updated_at": "2026-06-01T12:30:15Z",
}


def test_insert_adds_customers_with_the_next_ids_updated_now(
    mutable_api: SampleApiServer,
) -> None:
    assert call(f"{mutable_api.url}/admin/insert", {"count": 2}) == (
        200,
        {"inserted": ["61", "62"]},
    )
    assert call(f"{mutable_api.url}/customers/61") == (200, RECORD_61)
    assert call(f"{mutable_api.url}/health") == (200, {"status": "ok", "records": 62})
    assert list_ids(mutable_api, updated_since="2026-06-01T12:30:15Z") == ["61", "62"]
    assert list_ids(mutable_api)[-3:] == ["60", "61", "62"]
    # In process too, continuing the ids.
    assert mutable_api.insert(1) == ["63"]


def test_delete_is_a_soft_delete_and_a_mutation_undeletes(
    mutable_api: SampleApiServer, clock: FakeClock
) -> None:
    assert call(f"{mutable_api.url}/admin/delete", {"ids": ["5"]}) == (200, {"deleted": ["5"]})
    # Still served, marked deleted, updated at the clock's whole second.
    assert call(f"{mutable_api.url}/customers/5") == (
        200,
        {**RECORD_5, "status": "deleted", "updated_at": "2026-06-01T12:30:15Z"},
    )
    assert list_ids(mutable_api, updated_since="2026-06-01T12:30:15Z") == ["5"]
    assert "5" in list_ids(mutable_api)

    clock.now = datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
    assert mutable_api.delete(["6", "6"]) == ["6"]
    clock.now = datetime(2026, 6, 3, 8, 0, tzinfo=UTC)
    mutable_api.mutate(ids=["5"])
    _, record = call(f"{mutable_api.url}/customers/5")
    assert (record["status"], record["loyalty_points"], record["updated_at"]) == (
        "active",
        2076,
        "2026-06-03T08:00:00Z",
    )


def test_delete_unknown_ids_is_404_and_deletes_nothing(mutable_api: SampleApiServer) -> None:
    status, body = call(f"{mutable_api.url}/admin/delete", {"ids": ["5", "999"]})
    assert (status, body) == (404, {"error": "ids: unknown ids ['999']"})
    assert call(f"{mutable_api.url}/customers/5") == (200, RECORD_5)


def test_mutate_with_fields_sets_exactly_them(mutable_api: SampleApiServer) -> None:
    """Schema drift at the source: a new field, a field of another type."""
    body = {"ids": ["5"], "fields": {"tier": "gold", "loyalty_points": {"points": 7}}}
    assert call(f"{mutable_api.url}/admin/mutate", body) == (200, {"changed": ["5"]})
    assert call(f"{mutable_api.url}/customers/5") == (
        200,
        {
            **RECORD_5,
            "tier": "gold",
            "loyalty_points": {"points": 7},
            "updated_at": "2026-06-01T12:30:15Z",
        },
    )
    assert mutable_api.mutate(ids=["2"], fields={"address": "1 Main St"}) == ["2"]
    _, record = call(f"{mutable_api.url}/customers/2")
    assert record == {**RECORD_2, "address": "1 Main St", "updated_at": "2026-06-01T12:30:15Z"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("insert", {}, "count"),
        ("insert", {"count": 0}, "count"),
        ("insert", {"count": "2"}, "count"),
        ("insert", {"ids": ["1"]}, "ids"),
        ("delete", {}, "ids"),
        ("delete", {"ids": []}, "ids"),
        ("delete", {"ids": [5]}, "ids"),
        ("delete", {"count": 1}, "count"),
        ("mutate", {"ids": ["1"], "fields": {}}, "fields"),
        ("mutate", {"ids": ["1"], "fields": ["tier"]}, "fields"),
        ("mutate", {"ids": ["1"], "fields": {"id": "2"}}, "fields"),
        ("mutate", {"ids": ["1"], "fields": {"updated_at": "now"}}, "fields"),
    ],
)
def test_bad_insert_delete_and_fields_bodies_are_400(
    mutable_api: SampleApiServer, path: str, body: dict[str, Any], field: str
) -> None:
    status, answer = call(f"{mutable_api.url}/admin/{path}", body)
    assert status == 400
    assert answer["error"].startswith(f"{field}: ")
    assert call(f"{mutable_api.url}/health") == (200, {"status": "ok", "records": RECORDS})
    assert call(f"{mutable_api.url}/customers/1") == (200, RECORD_1)


def test_faults_fail_the_next_customer_reads(mutable_api: SampleApiServer) -> None:
    assert call(f"{mutable_api.url}/admin/faults", {"fail_next": 2, "status": 503}) == (
        200,
        {"fail_next": 2, "status": 503, "after": 0},
    )
    assert call(f"{mutable_api.url}/health")[0] == 200  # health is not a customer read
    assert call(f"{mutable_api.url}/customers")[0] == 503
    assert call(f"{mutable_api.url}/customers/1")[0] == 503
    assert call(f"{mutable_api.url}/customers/1") == (200, RECORD_1)


def test_faults_can_wait_for_reads_to_pass_first(mutable_api: SampleApiServer) -> None:
    faults = {"fail_next": 1, "status": 500, "after": 2}
    assert call(f"{mutable_api.url}/admin/faults", faults) == (200, faults)
    statuses = [call(f"{mutable_api.url}/customers/1")[0] for _ in range(4)]
    assert statuses == [200, 200, 500, 200]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fail_next": -1}, "fail_next"),
        ({"fail_next": 1, "status": 200}, "status"),
        ({}, "fail_next"),
        ({"fail_next": 1, "after": -1}, "after"),
    ],
)
def test_bad_fault_bodies_are_400(
    mutable_api: SampleApiServer, body: dict[str, Any], field: str
) -> None:
    status, answer = call(f"{mutable_api.url}/admin/faults", body)
    assert status == 400
    assert answer["error"].startswith(f"{field}: ")


def test_invalid_json_body_is_400(mutable_api: SampleApiServer) -> None:
    request = urllib.request.Request(
        f"{mutable_api.url}/admin/mutate", data=b"{not json", method="POST"
    )
    with open_url(request) as response:
        assert response.status == 400
        assert json.loads(response.read())["error"].startswith("body: ")


# --- HTTP: paging styles ----------------------------------------------------------------------


def styled(paging: str, **options: Any) -> SampleApiServer:
    return SampleApiServer(records=RECORDS, now=NOW, paging=paging, **options)  # type: ignore[arg-type]


def test_page_numbers() -> None:
    with styled("page") as api:
        assert call(f"{api.url}/customers?page_size=25&page=3") == (
            200,
            {"data": [c.record for c in api.customers()[50:]], "page": 3, "total_pages": 3},
        )
        assert call(f"{api.url}/customers?page_size=25&page=4") == (
            200,
            {"data": [], "page": 4, "total_pages": 3},
        )
        _, first = call(f"{api.url}/customers?ids=42,3,17")
        assert ([r["id"] for r in first["data"]], first["page"], first["total_pages"]) == (
            ["3", "17", "42"],
            1,
            1,
        )


def test_offsets_with_the_records_nested() -> None:
    with styled("offset") as api:
        status, body = call(f"{api.url}/customers?limit=4&offset=2&updated_since=2026-01-01")
        assert status == 200
        assert [r["id"] for r in body["result"]["items"]] == ["23", "27", "32", "37"]
        assert body["result"]["total"] == 8
        _, past_the_end = call(f"{api.url}/customers?limit=4&offset=8&updated_since=2026-01-01")
        assert past_the_end == {"result": {"items": [], "total": 8}}


def test_next_links_in_the_body_and_the_link_header() -> None:
    with styled("link") as api:
        url = f"{api.url}/customers?page_size=4&updated_since=2026-01-01"
        with open_url(urllib.request.Request(url)) as response:
            first = json.loads(response.read())
            link = response.headers["Link"]
        following = f"{api.url}/customers?page_size=4&updated_since=2026-01-01&after=27"
        assert [r["id"] for r in first["data"]] == ["18", "21", "23", "27"]
        assert first["links"] == {"next": following}
        assert link == f'<{following}>; rel="next"'
        with open_url(urllib.request.Request(following)) as response:
            last = json.loads(response.read())
            assert response.headers["Link"] is None
        assert [r["id"] for r in last["data"]] == ["32", "37", "42", "49"]
        assert last["links"] == {"next": None}


@pytest.mark.parametrize(
    ("paging", "query", "parameter"),
    [
        ("token", "limit=5", "limit"),
        ("page", "page=0", "page"),
        ("page", "page=x", "page"),
        ("offset", "page=2", "page"),
        ("offset", "offset=-1", "offset"),
        ("offset", "limit=501", "limit"),
        ("link", "page=2", "page"),
        ("link", "after=0", "after"),
    ],
)
def test_each_style_takes_its_own_parameters_only(paging: str, query: str, parameter: str) -> None:
    with styled(paging) as api:
        status, body = call(f"{api.url}/customers?{query}")
    assert status == 400
    assert body["error"].startswith(f"{parameter}: ")


# --- HTTP: latency, throttling, failures, statistics -------------------------------------------


def test_a_failure_rate_is_drawn_from_the_seed_and_429s_say_when_to_retry() -> None:
    def statuses(api: SampleApiServer) -> list[tuple[int, str | None]]:
        answers = []
        for _ in range(20):
            with open_url(urllib.request.Request(f"{api.url}/customers/1")) as response:
                answers.append((response.status, response.headers.get("Retry-After")))
        return answers

    with styled("token", failure_rate=0.2, retry_after=2) as first:
        drawn = statuses(first)
    with styled("token", failure_rate=0.2, retry_after=2) as second:
        assert statuses(second) == drawn
    ok, busy, slow = (200, None), (503, None), (429, "2")
    assert drawn == [
        ok, busy, ok, busy, slow, ok, ok, ok, ok, ok,
        ok, ok, ok, slow, ok, busy, busy, busy, ok, ok,
    ]  # fmt: skip
    assert [s.status for s in first.served()] == [status for status, _ in drawn]


def test_injected_429s_carry_retry_after_unless_it_is_zero(mutable_api: SampleApiServer) -> None:
    mutable_api.inject_faults(2, status=429)
    with open_url(urllib.request.Request(f"{mutable_api.url}/customers")) as response:
        assert (response.status, response.headers["Retry-After"]) == (429, "1")
    mutable_api.configure(retry_after=0)
    with open_url(urllib.request.Request(f"{mutable_api.url}/customers")) as response:
        assert (response.status, response.headers["Retry-After"]) == (429, None)


def test_latency_is_added_to_every_customer_read_and_concurrency_is_recorded() -> None:
    with styled("token", latency_ms=300) as api:
        started = time.monotonic()
        threads = [
            threading.Thread(target=call, args=(f"{api.url}/customers/{n}",)) for n in (1, 2, 3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        assert call(f"{api.url}/health")[0] == 200  # not a customer read: not counted
        served = api.served()
        assert api.max_concurrent == 3
        api.reset_stats()
        assert (api.max_concurrent, api.served()) == (0, [])

    assert 0.3 <= elapsed < 0.9  # three reads of 300 ms, side by side
    assert sorted(s.target for s in served) == ["/customers/1", "/customers/2", "/customers/3"]
    assert all(s.status == 200 and s.finished - s.started >= 0.3 for s in served)


def test_config_and_stats_over_http(mutable_api: SampleApiServer) -> None:
    url = mutable_api.url
    assert call(f"{url}/admin/config", {"failure_rate": 0.5, "failure_statuses": [500]}) == (
        200,
        {
            "paging": "token",
            "latency_ms": 0,
            "failure_rate": 0.5,
            "failure_statuses": [500],
            "retry_after": 1,
        },
    )
    for _ in range(6):
        call(f"{url}/customers/1")
    status, stats = call(f"{url}/admin/stats")
    assert (status, stats) == (
        200,
        {"requests": 6, "max_concurrent": 1, "statuses": {"200": 2, "500": 4}},
    )
    assert call(f"{url}/admin/stats/reset", {}) == (
        200,
        {"requests": 0, "max_concurrent": 0, "statuses": {}},
    )
    assert mutable_api.behaviour.failure_rate == 0.5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"paging": "cursor"}, "paging"),
        ({"failure_rate": 1}, "failure_rate"),
        ({"failure_rate": "0.1"}, "failure_rate"),
        ({"failure_statuses": [404]}, "failure_statuses"),
        ({"failure_statuses": []}, "failure_statuses"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"retry_after": 1.5}, "retry_after"),
        ({"seed": 1}, "seed"),
    ],
)
def test_bad_config_bodies_are_400_and_change_nothing(
    mutable_api: SampleApiServer, body: dict[str, Any], field: str
) -> None:
    status, answer = call(f"{mutable_api.url}/admin/config", body)
    assert status == 400
    assert answer["error"].startswith(f"{field}: ")
    assert mutable_api.behaviour == SampleApiServer(port=0, records=0).behaviour


def test_bad_options_are_refused_by_the_constructor() -> None:
    with pytest.raises(ValueError, match=r"^failure_rate: 2 is invalid; accepted: a number in"):
        SampleApiServer(records=1, failure_rate=2)


# --- HTTP: token -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured_api() -> Iterator[SampleApiServer]:
    with SampleApiServer(records=RECORDS, now=NOW, token="s3cret-token") as server:
        yield server


@pytest.mark.parametrize("path", ["/customers", "/customers/1", "/nowhere"])
def test_token_is_required_except_for_health(secured_api: SampleApiServer, path: str) -> None:
    url = f"{secured_api.url}{path}"
    assert call(url)[0] == 401
    assert call(url, token="wrong-token")[0] == 401
    assert call(f"{secured_api.url}/health") == (200, {"status": "ok", "records": RECORDS})


def test_token_is_required_for_admin(secured_api: SampleApiServer) -> None:
    assert call(f"{secured_api.url}/admin/faults", {"fail_next": 0})[0] == 401


def test_right_token_is_served(secured_api: SampleApiServer) -> None:
    assert call(f"{secured_api.url}/customers/1", token="s3cret-token") == (200, RECORD_1)


# --- command line ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_line(stream: Any, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"no output within {timeout}s"
    return str(stream.readline())


def wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_command_line_serves_until_signalled(stop_signal: signal.Signals) -> None:
    port = free_port()
    env = {**os.environ, "SAMPLE_API_TOKEN": "cli-token"}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "glue_replay_devtools.sample_api"),
            *("--port", str(port), "--records", "25", "--token-env", "SAMPLE_API_TOKEN"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = read_line(process.stdout, timeout=20)
        assert line == f"sample API listening on http://127.0.0.1:{port} (25 customers)\n"
        url = f"http://127.0.0.1:{port}"
        assert call(f"{url}/health") == (200, {"status": "ok", "records": 25})
        assert call(f"{url}/customers/1")[0] == 401
        status, record = call(f"{url}/customers/1", token="cli-token")
        # The command line anchors the data at the real clock: only the timestamps differ.
        untimed = {k: v for k, v in RECORD_1.items() if k not in ("created_at", "updated_at")}
        assert (status, {k: record[k] for k in untimed}) == (200, untimed)
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
        stdout, stderr = process.communicate()
        assert (stdout, stderr) == ("", "")  # quiet: no per-request logging
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_command_line_refuses_a_missing_token_variable() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_SUCH_TOKEN_VARIABLE"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "glue_replay_devtools.sample_api",
            "--token-env",
            "NO_SUCH_TOKEN_VARIABLE",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert "--token-env: environment variable NO_SUCH_TOKEN_VARIABLE is unset" in result.stderr


def test_command_line_sets_paging_latency_and_failures() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "glue_replay_devtools.sample_api", "--port", str(port)),
            *("--records", "25", "--paging", "offset", "--latency-ms", "20"),
            *("--failure-rate", "0.5", "--failure-statuses", "429", "--retry-after", "3"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "listening" in read_line(process.stdout, timeout=20)
        url = f"http://127.0.0.1:{port}"
        assert call(f"{url}/admin/config", {}) == (
            200,
            {
                "paging": "offset",
                "latency_ms": 20,
                "failure_rate": 0.5,
                "failure_statuses": [429],
                "retry_after": 3,
            },
        )
        answers = {call(f"{url}/customers?limit=2")[0] for _ in range(10)}
        assert answers == {200, 429}
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--failure-rate", "2"], "--failure-rate: 2.0 is invalid; accepted: a number in [0, 1)"),
        (["--failure-statuses", "503,x"], "--failure-statuses: '503,x' is invalid"),
        (["--failure-statuses", "404"], "--failure-statuses: (404,) is invalid"),
        (["--paging", "cursor"], "argument --paging: invalid choice: 'cursor'"),
    ],
)
def test_command_line_refuses_bad_behaviour_flags(flags: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "glue_replay_devtools.sample_api", "--port", "0", *flags],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
