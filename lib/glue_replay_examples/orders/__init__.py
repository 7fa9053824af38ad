"""The orders pipeline: a shop's orders and their line items, read from its PostgreSQL database.

Everything here uses glue-replay's public API — an :class:`~glue_replay.Entity` (what an order
is, how it is normalized, which ids are valid) and a :class:`~glue_replay.Pipeline` binding it
to a :class:`~glue_replay.sources.jdbc.JdbcSource` — and the Glue jobs are
``glue_jobs/ingest_orders.py`` and ``glue_jobs/normalize_orders.py``.

The deployment gives the database's URL (``--jdbc_url jdbc:postgresql://host:5432/shop``) and
its credentials: on Glue the ``--source_token_secret`` secret (JSON ``{"username": ...,
"password": ...}``), locally ``$GLUE_REPLAY_JDBC_USER`` and ``$GLUE_REPLAY_JDBC_PASSWORD``.

The payload is built by the database, one JSON object per order: line items aggregated from the
``order_lines`` child table (in line order), decimals as strings (``"194.44"``: no consumer
parses an amount into a float), timestamps as ISO-8601 UTC. Reads filter the outer query on
``id`` and ``updated_at``; PostgreSQL pushes those predicates into it, onto the primary key and
the ``orders_updated_at`` index.
"""

from __future__ import annotations

from datetime import timedelta

from glue_replay import Entity, IdRule, Pipeline, Source, SourceSettings
from glue_replay.sources.jdbc import JdbcSource, jdbc_credentials
from glue_replay_examples.orders.transforms import ORDER_SCHEMA, normalize_orders

#: The shop's order numbers: a bigint primary key, as text.
ORDER_IDS = IdRule(r"[1-9][0-9]{0,17}", "an order number: 1-18 digits, not starting with 0")

ORDERS = Entity(
    name="orders",
    aggregate="order",
    schema=ORDER_SCHEMA,
    normalize=normalize_orders,
    key="id",
    version="updated_at",
    ids=ORDER_IDS,
    # updated_at is set when the shop's transaction starts; one that commits minutes later
    # must still be seen by the next BAU run.
    bau_overlap=timedelta(minutes=30),
    description="shop orders with their line items, from the shop's PostgreSQL database",
)

_UTC_ISO = """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"""
#: One row per order: id, updated_at and the order as JSON text (built by PostgreSQL).
ORDERS_QUERY = f"""
SELECT o.id,
       o.updated_at,
       json_build_object(
           'id', o.id,
           'customer_id', o.customer_id,
           'amount', o.amount::text,
           'currency', o.currency,
           'status', o.status,
           'created_at', to_char(o.created_at AT TIME ZONE 'UTC', {_UTC_ISO}),
           'updated_at', to_char(o.updated_at AT TIME ZONE 'UTC', {_UTC_ISO}),
           'line_items', coalesce(
               (SELECT json_agg(json_build_object(
                           'sku', l.sku,
                           'quantity', l.quantity,
                           'unit_price', l.unit_price::text) ORDER BY l.line_no)
                FROM order_lines AS l
                WHERE l.order_id = o.id),
               '[]'::json)
       )::text AS payload
FROM orders AS o
"""

#: PostgreSQL driver settings: fail fast on an unreachable host, never write.
CONNECTION_PROPERTIES = {
    "connectTimeout": "10",
    "loginTimeout": "20",
    "readOnly": "true",
    "ApplicationName": "glue-replay-orders",
}


def shop_database(settings: SourceSettings) -> Source:
    """The shop's orders at the deployment's ``--jdbc_url``."""
    return JdbcSource(
        settings.require("jdbc_url"),
        query=ORDERS_QUERY,
        name="orders",
        id_column="id",
        updated_column="updated_at",
        payload_column="payload",
        partition_column="id",
        num_partitions=8,
        ids_batch_size=1000,
        credentials=jdbc_credentials(settings),
        properties=CONNECTION_PROPERTIES,
        ids=ORDER_IDS,
    )


PIPELINE = Pipeline(entity=ORDERS, source=shop_database, settings=("jdbc_url",))
