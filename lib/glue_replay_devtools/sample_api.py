"""The bundled sample REST API: a small, deterministic customers service for the demo and the tests.

It is the embedded default source of the ingest jobs (``--source_url`` defaults to where it
listens), so it behaves like the messy systems real pipelines read from: emails in mixed case with
stray spaces, statuses in any case, null addresses, five timestamp formats, a few malformed records,
paging in one of four styles, latency, throttling (429 with ``Retry-After``), random and injected
5xx faults and bearer tokens. Everything is deterministic for a given ``(records, now, seed)``, so
tests can state their expected data explicitly; random failures are drawn from ``seed`` too.

Run it::

    python -m glue_replay_devtools.sample_api [--host 127.0.0.1] [--port 8765]
        [--records 3000] [--seed 7] [--token-env NAME] [--paging token|page|offset|link]
        [--latency-ms 0] [--failure-rate 0] [--failure-statuses 503,429] [--retry-after 1]
        [--verbose]

or from Python::

    with SampleApiServer(records=60, now=fixed_now, paging="offset", latency_ms=50) as api:
        urlopen(f"{api.url}/customers?limit=10")

Endpoints (all JSON; every one except ``/health`` needs ``Authorization: Bearer <token>`` when a
token is configured):

- ``GET /health`` -> ``{"status": "ok", "records": N}``
- ``GET /customers?updated_since=&updated_before=&ids=`` plus the paging style's parameters,
  ordered by numeric id (``updated_since`` inclusive, ``updated_before`` exclusive; unknown
  parameters are refused so a typo never silently widens a read):

  ============  ==========================  ==================================================
  ``paging``    parameters                  answer
  ============  ==========================  ==================================================
  ``token``     ``page_size``, ``page``     ``{"data": [...], "next_page": token | null}``
  (default)                                 (keyset: the token is the last id served)
  ``page``      ``page_size``, ``page``     ``{"data": [...], "page": n, "total_pages": t}``
                (1, 2, ...)
  ``offset``    ``limit``, ``offset``       ``{"result": {"items": [...], "total": n}}``
  ``link``      ``page_size``, ``after``    ``{"data": [...], "links": {"next": url | null}}``
                                            and the same URL in a ``Link: <url>; rel="next"``
  ============  ==========================  ==================================================

- ``GET /customers/<id>`` -> the record, or 404
- ``POST /admin/mutate`` ``{"ids": [...]}`` or ``{"count": n}`` -> ``{"changed": [...]}``; with
  ``"fields": {...}`` the records get exactly those fields (any JSON: a new field, a field of
  another type) instead of the standard change; either way ``updated_at`` becomes now. Mutating
  a deleted record un-deletes it (its status flips to active)
- ``POST /admin/insert`` ``{"count": n}`` -> ``{"inserted": [...]}``: n new well-formed
  customers with the next ids, updated now
- ``POST /admin/delete`` ``{"ids": [...]}`` -> ``{"deleted": [...]}``: a soft delete, as the CRM
  does it: the record stays, its ``status`` becomes ``"deleted"`` and ``updated_at`` now
- ``POST /admin/faults`` ``{"fail_next": n, "status": 503, "after": k}`` -> the next n customer
  reads fail (after the next k, default 0, have been served)
- ``POST /admin/config`` any of ``{"paging", "latency_ms", "failure_rate", "failure_statuses",
  "retry_after"}`` -> the whole configuration; customer reads then wait ``latency_ms``, and a
  ``failure_rate`` share of them (drawn from ``seed``) fail with one of ``failure_statuses``
- ``GET /admin/stats`` -> ``{"requests": n, "max_concurrent": m, "statuses": {"200": n, ...}}``
  about customer reads; ``POST /admin/stats/reset`` starts counting again

Every 429 carries ``Retry-After: <retry_after>`` (seconds; ``retry_after`` 0 leaves it out).
"""

from __future__ import annotations

import argparse
import bisect
import copy
import hmac
import json
import logging
import math
import os
import random
import re
import signal
import sys
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Literal, cast, get_args
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from glue_replay.errors import GlueReplayError

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_RECORDS = 3000
DEFAULT_SEED = 7

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100
MAX_IDS_PER_REQUEST = 200
ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

# The three kinds of malformed record, as reported by malformed_ids().
MALFORMED_EMAIL = "email_without_at"
MALFORMED_UPDATED_AT = "updated_at_as_text"
MALFORMED_LOYALTY_POINTS = "loyalty_points_as_text"
_MALFORMED_KINDS = (MALFORMED_EMAIL, MALFORMED_UPDATED_AT, MALFORMED_LOYALTY_POINTS)

# Generated update times lie in [now - 3 years, now - 2 days]: nothing is "recent", so the first
# BAU run (last 24 hours) reads only what a test or the demo mutated on purpose.
_OLDEST_UPDATE = timedelta(days=3 * 365)
_NEWEST_UPDATE = timedelta(days=2)
_MAX_RECORD_AGE = timedelta(days=2 * 365)
_MIN_RECORD_AGE = timedelta(minutes=1)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_BODY_BYTES = 64 * 1024
_MAX_FAULTS = 1000
_MAX_MUTATE_IDS = 1000
_MAX_FIELDS = 50
#: The status a soft-deleted customer has.
DELETED_STATUS = "deleted"
_MAX_LATENCY_MS = 60_000
_MAX_RETRY_AFTER = 3600
# Per-connection idle timeout: HTTP/1.1 keep-alive connections a client left open end after it.
_IDLE_CONNECTION_SECONDS = 30.0

Paging = Literal["token", "page", "offset", "link"]
PAGING_STYLES: tuple[Paging, ...] = get_args(Paging)
DEFAULT_RETRY_AFTER = 1


@dataclass(frozen=True)
class Behaviour:
    """How the API pages and misbehaves; everything off (and keyset ``token`` paging) by default.

    ``failure_rate`` of the customer reads, drawn from the server's seed, are answered with one
    of ``failure_statuses``; every 429 carries ``Retry-After: retry_after`` (seconds; 0: no
    header). ``latency_ms`` is added to every customer read, failed or not.
    """

    paging: Paging = "token"
    latency_ms: int = 0
    failure_rate: float = 0.0
    failure_statuses: tuple[int, ...] = (503, 429)
    retry_after: int = DEFAULT_RETRY_AFTER

    def __post_init__(self) -> None:
        if self.paging not in PAGING_STYLES:
            raise ValueError(
                f"paging: {self.paging!r} is unknown; accepted: {', '.join(PAGING_STYLES)}"
            )
        _check_int("latency_ms", self.latency_ms, 0, _MAX_LATENCY_MS)
        rate = self.failure_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
            raise ValueError(f"failure_rate: {rate!r} is invalid; accepted: a number in [0, 1)")
        statuses = self.failure_statuses
        if not statuses or any(
            isinstance(s, bool) or not isinstance(s, int) or not (s == 429 or 500 <= s <= 599)
            for s in statuses
        ):
            raise ValueError(
                f"failure_statuses: {statuses!r} is invalid; accepted: one or more of 429, 500..599"
            )
        _check_int("retry_after", self.retry_after, 0, _MAX_RETRY_AFTER)

    @classmethod
    def updated(cls, current: Behaviour, changes: dict[str, Any]) -> Behaviour:
        """``current`` with ``changes`` (field names as in JSON); ValueError names a bad one."""
        unknown = sorted(set(changes) - set(asdict(current)))
        if unknown:
            accepted = ", ".join(sorted(asdict(current)))
            raise ValueError(f"{unknown[0]}: unknown setting; accepted: {accepted}")
        values = dict(changes)
        if isinstance(values.get("failure_statuses"), list):
            values["failure_statuses"] = tuple(values["failure_statuses"])
        return replace(current, **values)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}: {value!r} is invalid; accepted: an integer {low}..{high}")


@dataclass
class ServedRequest:
    """One customer read as the server saw it (``time.monotonic()`` seconds)."""

    target: str
    started: float
    finished: float = 0.0
    status: int = 0


class TimestampFormat(Enum):
    """The five renderings of an instant the API uses, rotated over the records.

    All of them denote a UTC instant; the ones without an offset are UTC by convention, as in
    many real systems.
    """

    ISO_UTC = 1  # "2026-11-20T10:15:30Z"
    ISO_OFFSET_MILLIS = 2  # "2026-11-20T12:15:30.123+02:00"
    NAIVE_SPACE = 3  # "2026-11-20 10:15:30"
    EPOCH_MILLIS = 4  # 1763633730123 (a JSON number)
    DAY_FIRST = 5  # "20/11/2026 10:15:30"

    @property
    def has_millis(self) -> bool:
        """Whether the rendering keeps milliseconds (the others keep whole seconds)."""
        return self in (TimestampFormat.ISO_OFFSET_MILLIS, TimestampFormat.EPOCH_MILLIS)


_FORMAT_ROTATION = tuple(TimestampFormat)
# Offsets of the ISO-with-offset rendering; a half-hour one catches parsers that assume whole hours.
_OFFSETS = tuple(
    timedelta(hours=h, minutes=m) for h, m in ((2, 0), (-5, 0), (5, 30), (1, 0), (-3, -30))
)


class SampleApiError(GlueReplayError):
    """A request the sample API refuses; ``status`` is the HTTP status it answers with."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"HTTP {status}: {message}")

    def __reduce__(self) -> tuple[type[SampleApiError], tuple[int, str]]:
        return (type(self), (self.status, self.message))


@dataclass(frozen=True)
class SampleCustomer:
    """One customer as the API holds it.

    ``record`` is the JSON object the API serves (possibly malformed); ``updated_at`` and
    ``created_at`` are the canonical instants (timezone-aware UTC) behind its rendered timestamps.
    The ``updated_since``/``updated_before`` filters compare ``updated_at``, so they work even for
    a record whose rendered ``updated_at`` is unparseable.
    """

    id: str
    updated_at: datetime
    created_at: datetime
    record: dict[str, Any]


def render_timestamp(instant: datetime, style: TimestampFormat, offset: timedelta) -> str | int:
    """Render ``instant`` the way ``style`` says; ``offset`` is used by ISO_OFFSET_MILLIS only.

    ``2026-11-20T10:15:30.123Z``, ISO_OFFSET_MILLIS, +2h -> ``"2026-11-20T12:15:30.123+02:00"``
    """
    utc = instant.astimezone(UTC)
    if style is TimestampFormat.ISO_UTC:
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style is TimestampFormat.ISO_OFFSET_MILLIS:
        return utc.astimezone(timezone(offset)).isoformat(timespec="milliseconds")
    if style is TimestampFormat.NAIVE_SPACE:
        return utc.strftime("%Y-%m-%d %H:%M:%S")
    if style is TimestampFormat.EPOCH_MILLIS:
        return (utc - _EPOCH) // timedelta(milliseconds=1)
    if style is TimestampFormat.DAY_FIRST:
        return utc.strftime("%d/%m/%Y %H:%M:%S")
    raise ValueError(f"unknown timestamp format {style!r}; accepted: {list(TimestampFormat)}")


def malformed_ids(count: int) -> dict[str, str]:
    """Which of ``count`` generated records are malformed, and how: ``{id: kind}``.

    The rule is ids 20, 40 and 60, then every multiple of 300; kinds rotate in that order over
    :data:`MALFORMED_EMAIL`, :data:`MALFORMED_UPDATED_AT`, :data:`MALFORMED_LOYALTY_POINTS`. So
    60 records hold one of each kind, 3000 records hold 13 (about 1 in 230), and an id's kind
    never depends on ``count``.
    """
    chosen = [n for n in range(1, count + 1) if n in (20, 40, 60) or n % 300 == 0]
    return {str(n): _MALFORMED_KINDS[i % len(_MALFORMED_KINDS)] for i, n in enumerate(chosen)}


def generate_customers(count: int, now: datetime, seed: int = DEFAULT_SEED) -> list[SampleCustomer]:
    """Generate ``count`` customers with ids ``"1"..str(count)``, deterministic in its arguments.

    Each record draws from its own generator seeded by ``(seed, id)``, so the first 60 of 3000
    records equal the 60 records of ``count=60``. Update times lie in
    ``[now - 3 years, now - 2 days]`` and ``created_at <= updated_at``. ``now`` must be
    timezone-aware.
    """
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got naive {now.isoformat()}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    anchor = now.astimezone(UTC).replace(microsecond=0)
    broken = malformed_ids(count)
    return [_generate_customer(n, anchor, seed, broken.get(str(n))) for n in range(1, count + 1)]


_FIRST_NAMES = (
    "Jane", "John", "Amira", "Luca", "Sofia", "Oliver", "Chloé", "Mateo", "Aoife", "Noah",
    "Emma", "Liam", "Zoë", "Hugo", "Ingrid", "Kenji", "Priya", "Tomás", "Fatima", "Lars",
)  # fmt: skip
_LAST_NAMES = (
    "Doe", "Smith", "Rossi", "García", "Müller", "O'Brien", "Dubois", "Jansen", "Kowalski",
    "Nguyen", "Patel", "Silva", "Andersson", "Murphy", "Bernard", "Schmidt", "López", "Brown",
)  # fmt: skip
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
_STATUSES = (
    "active", "active", "ACTIVE", "Active", " active ", "inactive", "INACTIVE", "Inactive",
    "suspended", "Suspended ",
)  # fmt: skip
_LINE2 = ("Flat 2", "Apt 14", "Floor 3", "Unit 7B", "c/o Reception")


@dataclass(frozen=True)
class _Country:
    code: str
    phone_prefix: str
    streets: tuple[str, ...]
    cities: tuple[tuple[str, str], ...]  # (city, postcode)


_COUNTRIES = (
    _Country(
        "GB",
        "+44 20 7946",  # Ofcom's range reserved for drama: never a real subscriber
        ("High Street", "Station Road", "Church Lane", "Victoria Road"),
        (("London", "SW1A 1AA"), ("Manchester", "M1 1AE"), ("Leeds", "LS1 4DY")),
    ),
    _Country(
        "FR",
        "+33 1 99 00",
        ("Rue de la Paix", "Avenue Victor Hugo", "Boulevard Voltaire"),
        (("Paris", "75008"), ("Lyon", "69002"), ("Bordeaux", "33000")),
    ),
    _Country(
        "DE",
        "+49 30 1234",
        ("Hauptstraße", "Gartenweg", "Schillerstraße"),
        (("Berlin", "10115"), ("München", "80331"), ("Hamburg", "20095")),
    ),
    _Country(
        "IE",
        "+353 1 555",
        ("Main Street", "Grafton Street", "Harbour Road"),
        (("Dublin", "D02 X285"), ("Cork", "T12 RK7H")),
    ),
    _Country(
        "NL",
        "+31 20 555",
        ("Keizersgracht", "Damrak", "Prinsengracht"),
        (("Amsterdam", "1012 JS"), ("Utrecht", "3511 AA")),
    ),
)


def _styled_country(code: str, rng: random.Random) -> str:
    # Real feeds carry the same country as "gb", "GB", " Gb " ...: the normalizer must cope.
    style = rng.randrange(5)
    if style == 0:
        return code.lower()
    if style == 1:
        return code.capitalize()
    if style == 2:
        return f" {code.capitalize()} "
    return code


def _email(first: str, last: str, number: int, rng: random.Random) -> str:
    # Accents folded away ("Müller" -> "Muller"): internationalised addresses are valid but
    # rare, and the malformed-email records should be the only ones a validator rejects.
    folded = unicodedata.normalize("NFKD", f"{first}.{last}{number}")
    local = "".join(ch for ch in folded if ch.isascii() and ch not in "' ")
    domain = rng.choice(_DOMAINS)
    style = rng.randrange(4)
    if style == 0:
        text = f"{local}@{domain}".lower()
    elif style == 1:
        text = f"{local}@{domain.split('.')[0].capitalize()}.{domain.split('.', 1)[1].upper()}"
    elif style == 2:
        text = f"{local.upper()}@{domain.upper()}"
    else:
        text = f"{local}@{domain}"
    padding = rng.randrange(10)
    if padding == 0:
        return f"  {text} "
    if padding == 1:
        return f"{text} "
    return text


def _address(country: _Country, rng: random.Random) -> dict[str, Any] | None:
    if rng.randrange(12) == 0:
        return None
    city, postcode = rng.choice(country.cities)
    return {
        "line1": f"{rng.randint(1, 240)} {rng.choice(country.streets)}",
        "line2": rng.choice(_LINE2) if rng.randrange(3) == 0 else None,
        "city": None if rng.randrange(30) == 0 else city,
        "postcode": None if rng.randrange(15) == 0 else postcode,
        "country": _styled_country(country.code, rng),
    }


def _instant(whole_seconds: datetime, style: TimestampFormat, rng: random.Random) -> datetime:
    # Millisecond precision only where the rendering keeps it, so the rendered text always
    # denotes exactly the canonical instant.
    millis = rng.randrange(1000)
    return whole_seconds + timedelta(milliseconds=millis) if style.has_millis else whole_seconds


def _generate_customer(
    number: int, anchor: datetime, seed: int, malformed: str | None
) -> SampleCustomer:
    rng = random.Random(f"{seed}:{number}")  # noqa: S311  (sample data, not security)
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    updated_style = _FORMAT_ROTATION[(number - 1) % len(_FORMAT_ROTATION)]
    created_style = _FORMAT_ROTATION[(number + 1) % len(_FORMAT_ROTATION)]
    offset = rng.choice(_OFFSETS)

    # One second inside the newest bound: the millisecond part added below cannot cross it.
    newest = anchor - _NEWEST_UPDATE - timedelta(seconds=1)
    span = int((_OLDEST_UPDATE - _NEWEST_UPDATE).total_seconds()) - 1
    updated_whole = newest - timedelta(seconds=rng.randint(0, span))
    age = rng.randint(int(_MIN_RECORD_AGE.total_seconds()), int(_MAX_RECORD_AGE.total_seconds()))
    created_whole = updated_whole - timedelta(seconds=age)
    updated_at = _instant(updated_whole, updated_style, rng)
    created_at = _instant(created_whole, created_style, rng)

    country = rng.choice(_COUNTRIES)
    phone = None
    if rng.randrange(7) != 0:
        phone = f"{country.phone_prefix} {number % 1000:04d}"
    loyalty_points: int | str | None = None if rng.randrange(10) == 0 else rng.randint(0, 5000)
    email = _email(first, last, number, rng)
    status = rng.choice(_STATUSES)
    address = _address(country, rng)
    rendered_updated: str | int = render_timestamp(updated_at, updated_style, offset)

    if malformed == MALFORMED_EMAIL:
        email = "not-an-email"
    elif malformed == MALFORMED_UPDATED_AT:
        rendered_updated = "last tuesday"
    elif malformed == MALFORMED_LOYALTY_POINTS:
        loyalty_points = "lots"

    record: dict[str, Any] = {
        "id": str(number),
        "email": email,
        "first_name": first,
        "last_name": last,
        "phone": phone,
        "status": status,
        "loyalty_points": loyalty_points,
        "address": address,
        "created_at": render_timestamp(created_at, created_style, offset),
        "updated_at": rendered_updated,
    }
    return SampleCustomer(str(number), updated_at, created_at, record)


def _flip_status(status: str) -> str:
    """``" Active "`` -> ``"Inactive"``: the opposite status, in the same case style, unpadded."""
    value = status.strip()
    flipped = "inactive" if value.lower() == "active" else "active"
    if value.isupper():
        return flipped.upper()
    if value[:1].isupper():
        return flipped.capitalize()
    return flipped


def _mutated(customer: SampleCustomer, malformed: str | None, at: datetime) -> SampleCustomer:
    """The customer after one change at ``at``; a malformed record keeps its malformation."""
    record = copy.deepcopy(customer.record)
    if malformed != MALFORMED_EMAIL:
        # Swapping case changes the raw payload while the normalized (trimmed, lower-case)
        # email stays the same: the normalizer must not report that as a change by itself.
        record["email"] = str(record["email"]).strip().swapcase()
    record["status"] = _flip_status(str(record["status"]))
    if malformed != MALFORMED_LOYALTY_POINTS:
        record["loyalty_points"] = int(record["loyalty_points"] or 0) + 10
    if malformed != MALFORMED_UPDATED_AT:
        record["updated_at"] = render_timestamp(at, TimestampFormat.ISO_UTC, timedelta(0))
    return replace(customer, updated_at=at, record=record)


def _with_fields(customer: SampleCustomer, fields: dict[str, Any], at: datetime) -> SampleCustomer:
    """The customer with ``fields`` set as given (any JSON) and ``updated_at`` = ``at``."""
    record = {**copy.deepcopy(customer.record), **copy.deepcopy(fields)}
    record["updated_at"] = render_timestamp(at, TimestampFormat.ISO_UTC, timedelta(0))
    return replace(customer, updated_at=at, record=record)


def _check_fields(fields: object) -> None:
    if not isinstance(fields, dict) or not 1 <= len(fields) <= _MAX_FIELDS:
        raise SampleApiError(
            400, f"fields: accepted: a JSON object of 1..{_MAX_FIELDS} fields to set"
        )
    fixed = sorted({"id", "updated_at"}.intersection(fields))
    if fixed:
        raise SampleApiError(
            400, f"fields: {fixed[0]} cannot be set; accepted: any field but id and updated_at"
        )


def _is_number(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts other scripts' digits, which int() parses."""
    return text.isascii() and text.isdigit()


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Filters:
    """What a customers read selects (all ``None``: everything)."""

    since: datetime | None = None
    before: datetime | None = None
    ids: frozenset[str] | None = None

    def match(self, customer: SampleCustomer) -> bool:
        return (
            (self.ids is None or customer.id in self.ids)
            and (self.since is None or customer.updated_at >= self.since)
            and (self.before is None or customer.updated_at < self.before)
        )


@dataclass
class _Stats:
    in_flight: int = 0
    max_concurrent: int = 0
    served: list[ServedRequest] = field(default_factory=list)


class _Store:
    """The customers, the faults and the statistics, guarded by one lock (the server is threaded).

    Records are replaced, never changed in place, so a page taken under the lock can be
    serialised after releasing it.
    """

    def __init__(
        self,
        customers: list[SampleCustomer],
        clock: Callable[[], datetime],
        token: str | None,
        behaviour: Behaviour,
        seed: int,
    ) -> None:
        self._lock = threading.Lock()
        self._customers = {int(c.id): c for c in customers}
        self._order = sorted(self._customers)
        self._malformed = malformed_ids(len(customers))
        self._clock = clock
        self.token = token
        self._faults_left = 0
        self._faults_after = 0
        self._fault_status = 503
        self._behaviour = behaviour
        # Its own generator: drawing failures never changes the generated data.
        self._failures = random.Random(f"failures-{seed}")  # noqa: S311  (not security)
        self._seed = seed
        self._stats = _Stats()

    def __len__(self) -> int:
        return len(self._order)

    @property
    def behaviour(self) -> Behaviour:
        with self._lock:
            return self._behaviour

    def configure(self, changes: dict[str, Any]) -> Behaviour:
        with self._lock:
            self._behaviour = Behaviour.updated(self._behaviour, changes)
            return self._behaviour

    def snapshot(self) -> list[SampleCustomer]:
        with self._lock:
            return [copy.deepcopy(self._customers[n]) for n in self._order]

    def get(self, customer_id: str) -> dict[str, Any] | None:
        if not _is_number(customer_id):
            return None
        with self._lock:
            customer = self._customers.get(int(customer_id))
        return None if customer is None else customer.record

    def page(
        self, filters: Filters, page_size: int, after: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of matching records with numeric id > ``after``, and the next page token.

        Keyset paging (the token is the last id served) rather than offsets: a record changed
        while a client pages through a window can leave the window, and with offsets that would
        shift every later record and make the client skip one.
        """
        found: list[SampleCustomer] = []
        with self._lock:
            for number in self._order[bisect.bisect_right(self._order, after) :]:
                customer = self._customers[number]
                if filters.match(customer):
                    found.append(customer)
                    if len(found) > page_size:
                        break
        more = len(found) > page_size
        served = found[:page_size]
        return [c.record for c in served], (served[-1].id if more else None)

    def slice(self, filters: Filters, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """``limit`` matching records from ``offset`` on, and how many match in all."""
        with self._lock:
            matching = [c for n in self._order if filters.match(c := self._customers[n])]
        return [c.record for c in matching[offset : offset + limit]], len(matching)

    def take_fault(self) -> int | None:
        """The status to fail this read with, if one is injected or drawn (and consume it)."""
        with self._lock:
            if self._faults_left > 0:
                if self._faults_after > 0:
                    self._faults_after -= 1
                    return None
                self._faults_left -= 1
                return self._fault_status
            behaviour = self._behaviour
            if behaviour.failure_rate and self._failures.random() < behaviour.failure_rate:
                return self._failures.choice(behaviour.failure_statuses)
            return None

    def set_faults(self, fail_next: int, status: int, after: int = 0) -> None:
        with self._lock:
            self._faults_left = fail_next
            self._faults_after = after
            self._fault_status = status

    def begin(self, target: str) -> ServedRequest:
        """Count a customer read in; :meth:`end` counts it out."""
        served = ServedRequest(target=target, started=time.monotonic())
        with self._lock:
            stats = self._stats
            stats.in_flight += 1
            stats.max_concurrent = max(stats.max_concurrent, stats.in_flight)
            stats.served.append(served)
        return served

    def end(self, served: ServedRequest, status: int) -> None:
        with self._lock:
            served.finished, served.status = time.monotonic(), status
            self._stats.in_flight -= 1

    def stats(self) -> tuple[int, list[ServedRequest]]:
        """``(max_concurrent, served)``: a copy of the statistics since the last reset."""
        with self._lock:
            return self._stats.max_concurrent, [replace(s) for s in self._stats.served]

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = _Stats(in_flight=self._stats.in_flight)

    def mutate(
        self,
        ids: Sequence[str] | None,
        count: int | None,
        fields: dict[str, Any] | None = None,
    ) -> list[str]:
        """Change the given records (or ``count`` well-formed ones spread over the id range):
        the standard change, or exactly ``fields`` when given."""
        if fields is not None:
            _check_fields(fields)
        with self._lock:
            if ids is not None:
                numbers = self._known(ids)
            else:
                assert count is not None
                candidates = [n for n in self._order if str(n) not in self._malformed]
                if not 1 <= count <= len(candidates):
                    raise SampleApiError(
                        400, f"count: {count} is out of range; accepted: 1..{len(candidates)}"
                    )
                step = len(candidates) / count
                numbers = [candidates[int(i * step + step / 2)] for i in range(count)]
            at = self._now()
            for number in numbers:
                customer = self._customers[number]
                if fields is None:
                    changed = _mutated(customer, self._malformed.get(customer.id), at)
                else:
                    changed = _with_fields(customer, fields, at)
                self._customers[number] = changed
        return [str(n) for n in numbers]

    def insert(self, count: int) -> list[str]:
        """Add ``count`` well-formed customers with the next ids, updated now."""
        with self._lock:
            at = self._now()
            first = (self._order[-1] if self._order else 0) + 1
            numbers = list(range(first, first + count))
            for number in numbers:
                generated = _generate_customer(number, at, self._seed, None)
                self._customers[number] = _with_fields(generated, {}, at)
                self._order.append(number)
        return [str(n) for n in numbers]

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Soft-delete the given records: status ``deleted``, updated now; they stay served."""
        with self._lock:
            numbers = self._known(ids)
            at = self._now()
            for number in numbers:
                customer = self._customers[number]
                self._customers[number] = _with_fields(customer, {"status": DELETED_STATUS}, at)
        return [str(n) for n in numbers]

    def _known(self, ids: Sequence[str]) -> list[int]:
        wanted = list(dict.fromkeys(ids))
        unknown = [i for i in wanted if not (_is_number(i) and int(i) in self._customers)]
        if unknown:
            raise SampleApiError(404, f"ids: unknown ids {unknown}")
        return [int(i) for i in wanted]

    def _now(self) -> datetime:
        # Whole seconds: the ISO_UTC rendering has no fraction, and the canonical instant
        # (which the filters compare) must equal what the record says.
        at = self._clock()
        if at.tzinfo is None:
            raise ValueError(f"the clock must return timezone-aware times, got {at!r}")
        return at.astimezone(UTC).replace(microsecond=0)


def _single_params(query: str, allowed: frozenset[str]) -> dict[str, str]:
    """Query parameters as a dict, refusing unknown, repeated and empty ones."""
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as err:
        raise SampleApiError(400, f"query string is malformed: {err}") from err
    params: dict[str, str] = {}
    for name, values in parsed.items():
        if name not in allowed:
            raise SampleApiError(
                400, f"{name}: unknown parameter; accepted: {', '.join(sorted(allowed))}"
            )
        if len(values) != 1:
            raise SampleApiError(400, f"{name}: given {len(values)} times; accepted: once")
        if not values[0]:
            raise SampleApiError(400, f"{name}: empty value; omit the parameter instead")
        params[name] = values[0]
    return params


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]{1,260}")


def _parse_instant(name: str, text: str) -> datetime:
    """``2026-11-20`` -> midnight UTC; ``2026-11-20T12:00:00+02:00`` -> 10:00 UTC."""
    accepted = "ISO-8601 with Z or an offset (2026-11-20T10:15:30Z) or YYYY-MM-DD"
    try:
        if _DATE_ONLY.fullmatch(text):
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SampleApiError(
            400, f"{name}: {text[:80]!r} is not a timestamp; accepted: {accepted}"
        ) from None
    if value.tzinfo is None:
        # A naive time is ambiguous; guessing UTC would silently shift a replay window.
        raise SampleApiError(400, f"{name}: {text[:80]!r} has no UTC offset; accepted: {accepted}")
    return value.astimezone(UTC)


def _parse_ids(text: str) -> frozenset[str]:
    ids = text.split(",")
    if len(ids) > MAX_IDS_PER_REQUEST:
        raise SampleApiError(
            400, f"ids: {len(ids)} ids; accepted: at most {MAX_IDS_PER_REQUEST} per request"
        )
    for candidate in ids:
        if not ID_PATTERN.fullmatch(candidate):
            raise SampleApiError(
                400, f"ids: {candidate[:80]!r} is not a valid id; accepted: {ID_PATTERN.pattern}"
            )
    return frozenset(ids)


def _parse_page_size(text: str, name: str = "page_size") -> int:
    if not _is_number(text) or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise SampleApiError(
            400, f"{name}: {text[:20]!r} is out of range; accepted: 1..{MAX_PAGE_SIZE}"
        )
    return int(text)


def _parse_count(name: str, text: str, low: int) -> int:
    if not _is_number(text) or len(text) > 10 or int(text) < low:
        raise SampleApiError(
            400, f"{name}: {text[:20]!r} is invalid; accepted: an integer >= {low}"
        )
    return int(text)


_PAGE_TOKEN = re.compile(r"[1-9][0-9]{0,9}")


def _parse_page_token(text: str) -> int:
    if not _PAGE_TOKEN.fullmatch(text):
        raise SampleApiError(
            400, f"page: {text[:40]!r} is not a token; accepted: a next_page value from this API"
        )
    return int(text)


def _int_field(body: dict[str, Any], name: str, low: int, high: int, default: int | None) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SampleApiError(
            400, f"{name}: {value!r} is invalid; accepted: an integer {low}..{high}"
        )
    return value


def _json_object(raw: bytes, allowed: frozenset[str]) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise SampleApiError(400, "body: not valid JSON; accepted: a JSON object") from None
    if not isinstance(body, dict):
        raise SampleApiError(400, "body: not a JSON object; accepted: a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise SampleApiError(
            400, f"{unknown[0]}: unknown field; accepted: {', '.join(sorted(allowed))}"
        )
    return body


_FILTER_PARAMS = frozenset({"updated_since", "updated_before", "ids"})
#: The parameters of ``GET /customers`` in each paging style.
_LIST_PARAMS: dict[Paging, frozenset[str]] = {
    "token": _FILTER_PARAMS | {"page_size", "page"},
    "page": _FILTER_PARAMS | {"page_size", "page"},
    "offset": _FILTER_PARAMS | {"limit", "offset"},
    "link": _FILTER_PARAMS | {"page_size", "after"},
}
_MUTATE_FIELDS = frozenset({"ids", "count", "fields"})
_INSERT_FIELDS = frozenset({"count"})
_DELETE_FIELDS = frozenset({"ids"})
_FAULT_FIELDS = frozenset({"fail_next", "status", "after"})
_CONFIG_FIELDS = frozenset(asdict(Behaviour()))

_ROUTES = {
    "/health": "GET",
    "/customers": "GET",
    "/admin/mutate": "POST",
    "/admin/insert": "POST",
    "/admin/delete": "POST",
    "/admin/faults": "POST",
    "/admin/config": "POST",
    "/admin/stats": "GET",
    "/admin/stats/reset": "POST",
}


def _allowed_method(path: str) -> str | None:
    """The one method a path accepts, or None for a path that does not exist."""
    if path.startswith("/customers/"):
        return "GET"
    return _ROUTES.get(path)


@dataclass(frozen=True)
class Reply:
    """An answer: status, JSON body and extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class _App:
    """Routing and request semantics, independent of the HTTP plumbing."""

    def __init__(self, store: _Store) -> None:
        self.store = store

    def handle(
        self,
        method: str,
        target: str,
        authorization: str | None,
        body: bytes,
        host: str | None = None,
    ) -> Reply:
        """Answer one request; refusals raise :class:`SampleApiError`.

        ``host`` is the request's ``Host`` header: the ``link`` style's next links point there.
        """
        parts = urlsplit(target)
        path = parts.path
        if path != "/health" and not self._authorized(authorization):
            raise SampleApiError(401, "missing or wrong bearer token")
        allowed = _allowed_method(path)
        if allowed is None:
            raise SampleApiError(404, f"no such resource: {path[:80]}")
        if method != allowed:
            raise SampleApiError(405, f"{path} accepts {allowed}, not {method}")
        if path == "/health":
            return Reply(200, {"status": "ok", "records": len(self.store)})
        if path.startswith("/admin/"):
            return self._admin(path, body)
        served = self.store.begin(target)
        status = 500
        try:
            reply = self._customer_read(parts.path, parts.query, host)
            status = reply.status
            return reply
        except SampleApiError as err:
            status = err.status
            raise
        finally:
            self.store.end(served, status)

    def _customer_read(self, path: str, query: str, host: str | None) -> Reply:
        behaviour = self.store.behaviour
        if behaviour.latency_ms:
            time.sleep(behaviour.latency_ms / 1000)
        # Faults hit customer reads only, before validation, like an outage would.
        fault = self.store.take_fault()
        if fault is not None:
            headers = {}
            if fault == 429 and behaviour.retry_after:
                headers["Retry-After"] = str(behaviour.retry_after)
            return Reply(fault, {"error": f"injected fault (HTTP {fault})"}, headers)
        if path == "/customers":
            return self._list(query, behaviour.paging, host)
        return self._one(unquote(path.removeprefix("/customers/")))

    def _admin(self, path: str, body: bytes) -> Reply:
        if path == "/admin/mutate":
            return self._mutate(body)
        if path == "/admin/insert":
            return self._insert(body)
        if path == "/admin/delete":
            return self._delete(body)
        if path == "/admin/faults":
            return self._faults(body)
        if path == "/admin/config":
            try:
                behaviour = self.store.configure(_json_object(body, _CONFIG_FIELDS))
            except ValueError as err:
                raise SampleApiError(400, str(err)) from None
            return Reply(200, asdict(behaviour))
        if path == "/admin/stats/reset":
            self.store.reset_stats()
        max_concurrent, served = self.store.stats()
        statuses = Counter(str(s.status) for s in served if s.finished)
        return Reply(
            200,
            {
                "requests": len(served),
                "max_concurrent": max_concurrent,
                "statuses": dict(sorted(statuses.items())),
            },
        )

    def _authorized(self, authorization: str | None) -> bool:
        if self.store.token is None:
            return True
        expected = f"Bearer {self.store.token}".encode()
        # Constant-time comparison: the sample API models what a real one should do.
        return hmac.compare_digest((authorization or "").encode(), expected)

    def _list(self, query: str, paging: Paging, host: str | None) -> Reply:
        params = _single_params(query, _LIST_PARAMS[paging])
        filters = _parse_filters(params)
        if paging == "token":
            page_size = _parse_page_size(params.get("page_size", str(DEFAULT_PAGE_SIZE)))
            after = _parse_page_token(params["page"]) if "page" in params else 0
            data, next_page = self.store.page(filters, page_size, after)
            return Reply(200, {"data": data, "next_page": next_page})
        if paging == "link":
            page_size = _parse_page_size(params.get("page_size", str(DEFAULT_PAGE_SIZE)))
            after = _parse_count("after", params["after"], 1) if "after" in params else 0
            data, last = self.store.page(filters, page_size, after)
            if last is None:
                return Reply(200, {"data": data, "links": {"next": None}})
            link = f"http://{host or DEFAULT_HOST}/customers?" + urlencode(
                {**{k: v for k, v in params.items() if k != "after"}, "after": last}
            )
            return Reply(
                200, {"data": data, "links": {"next": link}}, {"Link": f'<{link}>; rel="next"'}
            )
        if paging == "page":
            page_size = _parse_page_size(params.get("page_size", str(DEFAULT_PAGE_SIZE)))
            page = _parse_count("page", params["page"], 1) if "page" in params else 1
            data, total = self.store.slice(filters, (page - 1) * page_size, page_size)
            pages = math.ceil(total / page_size)
            return Reply(200, {"data": data, "page": page, "total_pages": pages})
        limit = _parse_page_size(params.get("limit", str(DEFAULT_PAGE_SIZE)), "limit")
        offset = _parse_count("offset", params["offset"], 0) if "offset" in params else 0
        data, total = self.store.slice(filters, offset, limit)
        return Reply(200, {"result": {"items": data, "total": total}})

    def _one(self, customer_id: str) -> Reply:
        record = self.store.get(customer_id)
        if record is None:
            raise SampleApiError(404, f"no customer with id {customer_id[:80]!r}")
        return Reply(200, record)

    def _mutate(self, raw: bytes) -> Reply:
        body = _json_object(raw, _MUTATE_FIELDS)
        if ("ids" in body) == ("count" in body):
            raise SampleApiError(400, "body: give exactly one of ids, count")
        fields = body.get("fields")
        if "fields" in body:
            _check_fields(fields)
        if "ids" in body:
            changed = self.store.mutate(ids=_ids_field(body), count=None, fields=fields)
        else:
            count = _int_field(body, "count", 1, len(self.store), None)
            changed = self.store.mutate(ids=None, count=count, fields=fields)
        return Reply(200, {"changed": changed})

    def _insert(self, raw: bytes) -> Reply:
        body = _json_object(raw, _INSERT_FIELDS)
        count = _int_field(body, "count", 1, _MAX_MUTATE_IDS, None)
        return Reply(200, {"inserted": self.store.insert(count)})

    def _delete(self, raw: bytes) -> Reply:
        body = _json_object(raw, _DELETE_FIELDS)
        return Reply(200, {"deleted": self.store.delete(_ids_field(body))})

    def _faults(self, raw: bytes) -> Reply:
        body = _json_object(raw, _FAULT_FIELDS)
        fail_next = _int_field(body, "fail_next", 0, _MAX_FAULTS, None)
        status = _int_field(body, "status", 400, 599, 503)
        after = _int_field(body, "after", 0, _MAX_FAULTS, 0)
        self.store.set_faults(fail_next, status, after)
        return Reply(200, {"fail_next": fail_next, "status": status, "after": after})


def _ids_field(body: dict[str, Any]) -> list[str]:
    ids = body.get("ids")
    if (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= _MAX_MUTATE_IDS
        or not all(isinstance(i, str) for i in ids)
    ):
        raise SampleApiError(400, f"ids: accepted: a list of 1..{_MAX_MUTATE_IDS} id strings")
    return ids


def _parse_filters(params: dict[str, str]) -> Filters:
    since = before = None
    if "updated_since" in params:
        since = _parse_instant("updated_since", params["updated_since"])
    if "updated_before" in params:
        before = _parse_instant("updated_before", params["updated_before"])
    if since is not None and before is not None and before < since:
        raise SampleApiError(
            400, "updated_before: earlier than updated_since; accepted: a later instant"
        )
    ids = _parse_ids(params["ids"]) if "ids" in params else None
    return Filters(since, before, ids)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: _App, verbose: bool) -> None:
        self.app = app
        self.verbose = verbose
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server_version = "glue-replay-sample-api/1"
    # Keep-alive, as real APIs do: a client's connection pool reuses its connections.
    protocol_version = "HTTP/1.1"
    timeout = _IDLE_CONNECTION_SECONDS
    # Headers and body go out in two writes: with Nagle's algorithm, a keep-alive client's
    # delayed ACK would add ~40 ms to every answer.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # Answered (405/404) rather than left to the base class, whose 501 page is HTML.
    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        server = cast(_HttpServer, self.server)
        try:
            body = self._read_body() if method == "POST" else b""
            host = self.headers.get("Host")
            reply = server.app.handle(
                method,
                self.path,
                self.headers.get("Authorization"),
                body,
                host if host and _HOST.fullmatch(host) else None,
            )
        except SampleApiError as err:
            headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else {}
            reply = Reply(err.status, {"error": err.message}, headers)
        except Exception:
            # Answer instead of dropping the connection, and say why on stderr.
            logger.exception("sample API failed on %s %s", method, self.path)
            reply = Reply(500, {"error": "internal error"})
        data = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        length_text = self.headers.get("Content-Length", "0")
        if not _is_number(length_text):
            self.close_connection = True
            raise SampleApiError(400, "Content-Length: not a number")
        length = int(length_text)
        if length > _MAX_BODY_BYTES:
            # The unread body would be taken for the next request on this connection.
            self.close_connection = True
            raise SampleApiError(413, f"body: {length} bytes; accepted: at most {_MAX_BODY_BYTES}")
        return self.rfile.read(length)

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet unless --verbose: tests and the demo start many servers and read many pages.
        if cast(_HttpServer, self.server).verbose:
            super().log_message(format, *args)


class SampleApiServer:
    """The sample API on a background thread, for tests and the demo.

    The socket is bound on construction (``port=0`` picks a free port, readable from ``port``);
    ``start()`` serves on a daemon thread; ``stop()`` or leaving the ``with`` block shuts it down.
    ``now`` anchors the generated data (default: the current UTC time); ``clock`` stamps
    mutations (default: the real UTC clock), so a test can pin both. ``paging``, ``latency_ms``,
    ``failure_rate``, ``failure_statuses`` and ``retry_after`` are the :class:`Behaviour`
    (changeable later with :meth:`configure`); a bad one raises ``ValueError`` naming it.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        records: int = DEFAULT_RECORDS,
        seed: int = DEFAULT_SEED,
        now: datetime | None = None,
        clock: Callable[[], datetime] | None = None,
        token: str | None = None,
        verbose: bool = False,
        *,
        paging: Paging = "token",
        latency_ms: int = 0,
        failure_rate: float = 0.0,
        failure_statuses: Sequence[int] = (503, 429),
        retry_after: int = DEFAULT_RETRY_AFTER,
    ) -> None:
        behaviour = Behaviour(
            paging, latency_ms, failure_rate, tuple(failure_statuses), retry_after
        )
        customers = generate_customers(records, now or _utc_now(), seed)
        self._store = _Store(customers, clock or _utc_now, token, behaviour, seed)
        self._httpd = _HttpServer((host, port), _App(self._store), verbose)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        host = str(self._httpd.server_address[0])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self) -> SampleApiServer:
        """Serve on a daemon thread; returns ``self``, so ``api = SampleApiServer().start()``."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"sample-api-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._thread is not None:
            # shutdown() waits for serve_forever to notice; only call it when that loop runs.
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SampleApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def customers(self) -> list[SampleCustomer]:
        """A copy of every customer as the API holds it now, in id order."""
        return self._store.snapshot()

    def mutate(
        self,
        ids: Sequence[str] | None = None,
        count: int | None = None,
        fields: dict[str, Any] | None = None,
    ) -> list[str]:
        """Same as ``POST /admin/mutate``, in process: the ids changed, in order. With
        ``fields``, the records get exactly those fields (a new one, another type) instead."""
        if (ids is None) == (count is None):
            raise ValueError("give exactly one of ids, count")
        return self._store.mutate(ids=ids, count=count, fields=fields)

    def insert(self, count: int) -> list[str]:
        """Same as ``POST /admin/insert``: ``count`` new customers with the next ids, updated
        now; their ids, in order."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count: {count!r} is invalid; accepted: an integer >= 1")
        return self._store.insert(count)

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Same as ``POST /admin/delete``: soft-delete ``ids`` (status ``deleted``, updated
        now; still served); the ids deleted, in order."""
        return self._store.delete(ids)

    def inject_faults(self, fail_next: int, status: int = 503, after: int = 0) -> None:
        """Same as ``POST /admin/faults``: the next ``fail_next`` customer reads get ``status``,
        once ``after`` more have been served."""
        self._store.set_faults(fail_next, status, after)

    @property
    def behaviour(self) -> Behaviour:
        """How the server pages and misbehaves now."""
        return self._store.behaviour

    def configure(self, **changes: Any) -> Behaviour:
        """Same as ``POST /admin/config``: e.g. ``configure(failure_rate=0.2, latency_ms=50)``."""
        return self._store.configure(changes)

    @property
    def max_concurrent(self) -> int:
        """The most customer reads served at the same time since the start or the last reset."""
        return self._store.stats()[0]

    def served(self) -> list[ServedRequest]:
        """Every customer read since the start or the last reset, in arrival order."""
        return self._store.stats()[1]

    def reset_stats(self) -> None:
        """Same as ``POST /admin/stats/reset``."""
        self._store.reset_stats()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point: serve until SIGTERM or SIGINT, then exit 0."""
    parser = argparse.ArgumentParser(
        prog="python -m glue_replay_devtools.sample_api",
        description="The bundled sample customers API.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--token-env",
        metavar="NAME",
        help="require 'Authorization: Bearer <token>', the token read from this variable",
    )
    parser.add_argument(
        "--paging", choices=PAGING_STYLES, default="token", help="how /customers pages"
    )
    parser.add_argument(
        "--latency-ms", type=int, default=0, help="added to every customer read (default 0)"
    )
    parser.add_argument(
        "--failure-rate",
        type=float,
        default=0.0,
        help="share of customer reads that fail, drawn from --seed (default 0)",
    )
    parser.add_argument(
        "--failure-statuses",
        default="503,429",
        metavar="S,S",
        help="statuses the failures are drawn from (default 503,429)",
    )
    parser.add_argument(
        "--retry-after",
        type=int,
        default=DEFAULT_RETRY_AFTER,
        help=f"seconds in every 429's Retry-After, 0 for none (default {DEFAULT_RETRY_AFTER})",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    if args.records < 0:
        parser.error(f"--records: {args.records} is negative; accepted: 0 or more")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port: {args.port} is out of range; accepted: 0..65535")
    token = None
    if args.token_env is not None:
        # The token comes from the environment so it never shows in `ps` output.
        token = os.environ.get(args.token_env)
        if not token:
            parser.error(f"--token-env: environment variable {args.token_env} is unset or empty")
    statuses = args.failure_statuses.split(",")
    if not all(_is_number(status) for status in statuses):
        parser.error(
            f"--failure-statuses: {args.failure_statuses!r} is invalid; accepted: e.g. 503,429"
        )
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    try:
        server = SampleApiServer(
            host=args.host,
            port=args.port,
            records=args.records,
            seed=args.seed,
            token=token,
            verbose=args.verbose,
            paging=args.paging,
            latency_ms=args.latency_ms,
            failure_rate=args.failure_rate,
            failure_statuses=[int(status) for status in statuses],
            retry_after=args.retry_after,
        )
    except ValueError as err:
        name, _, problem = str(err).partition(": ")
        parser.error(f"--{name.replace('_', '-')}: {problem}")
    except OSError as err:
        print(f"sample API cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 1

    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with server:
        print(f"sample API listening on {server.url} ({args.records} customers)", flush=True)
        # A timed wait keeps the main thread returning to the interpreter, where signals run.
        while not stopping.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
