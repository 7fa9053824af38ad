"""The customers pipeline: a CRM's customers, read from its paged JSON REST API.

Everything here uses glue-replay's public API — an :class:`~glue_replay.Entity` (what a
customer is, how it is normalized, which ids are valid) and a :class:`~glue_replay.Pipeline`
binding it to a :class:`~glue_replay.sources.rest.RestSource` configured for the CRM's API —
and the Glue jobs are ``glue_jobs/ingest_customers.py`` and ``glue_jobs/normalize_customers.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from glue_replay import Entity, IdRule, Pipeline, SoftDelete, Source, SourceSettings
from glue_replay.sources.rest import CursorPaging, RestSource, RestSourceConfig
from glue_replay_examples.customers.transforms import (
    CUSTOMER_SCHEMA,
    PAYLOAD_SCHEMA,
    normalize_customers,
)

#: What the CRM's API accepts in its ``ids`` filter.
CUSTOMER_IDS = IdRule(
    r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}",
    "1-64 letters, digits or _ . : -, starting with a letter or digit",
)

CUSTOMERS = Entity(
    name="customers",
    aggregate="customer",
    schema=CUSTOMER_SCHEMA,
    normalize=normalize_customers,
    key="id",
    version="updated_at",
    ids=CUSTOMER_IDS,
    bau_overlap=timedelta(minutes=10),
    # The CRM soft-deletes: the record stays, with status "deleted" (any case, padded).
    deleted=SoftDelete("status", ("deleted",)),
    # A field whose JSON shape changes (an object where text was) is quarantined, named.
    payload=PAYLOAD_SCHEMA,
    description="CRM customers: contact details, status and loyalty points",
)


def customers_api_config(base_url: str) -> RestSourceConfig:
    """How the CRM's ``/customers`` endpoint (and the bundled sample API) is read.

    ``GET /customers?updated_since=&updated_before=&ids=&page_size=&page=`` answers
    ``{"data": [...], "next_page": token | null}``; at most 200 ids and 500 records a request.
    Its records are updated since 2023: a full read is cut into half-years from then (the first
    slice also takes anything older), all of them fetched at once by up to 8 tasks.
    """
    return RestSourceConfig(
        base_url=base_url,
        path="customers",
        records_at="data",
        paging=CursorPaging(cursor_param="page", next_at="next_page", size_param="page_size"),
        page_size=200,
        since_param="updated_since",
        until_param="updated_before",
        ids_param="ids",
        max_ids_per_request=100,
        full_start=datetime(2023, 1, 1, tzinfo=UTC),
        slice_width=timedelta(days=180),
        max_concurrency=8,
        slices_per_batch=16,
    )


def customers_api(settings: SourceSettings) -> Source:
    """The CRM's ``/customers`` endpoint at the deployment's ``--source_url``."""
    return RestSource(customers_api_config(settings.source_url), token=settings.token())


PIPELINE = Pipeline(entity=CUSTOMERS, source=customers_api)
