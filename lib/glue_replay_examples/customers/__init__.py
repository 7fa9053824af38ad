"""The customers pipeline: a CRM's customers, read from its paged JSON REST API.

Everything here uses glue-replay's public API — an :class:`~glue_replay.Entity` (what a
customer is, how it is normalized, which ids are valid) and a :class:`~glue_replay.Pipeline`
binding it to a :class:`~glue_replay.sources.rest.RestApiSource` — and the Glue jobs are
``glue_jobs/ingest_customers.py`` and ``glue_jobs/normalize_customers.py``.
"""

from __future__ import annotations

from datetime import timedelta

from glue_replay import Entity, IdRule, Pipeline, Source, SourceSettings
from glue_replay.sources.rest import RestApiSource
from glue_replay_examples.customers.transforms import CUSTOMER_SCHEMA, normalize_customers

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
    description="CRM customers: contact details, status and loyalty points",
)


def customers_api(settings: SourceSettings) -> Source:
    """The CRM's ``/customers`` endpoint at the deployment's ``--source_url``."""
    return RestApiSource(settings.source_url, path="customers", token=settings.token())


PIPELINE = Pipeline(entity=CUSTOMERS, source=customers_api)
