"""The entities a pipeline knows: each names its tables, its transform and its output schema."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql.types import StructType

from glue_replay.id_rules import CUSTOMER_IDS, DEFAULT_IDS, IdRule
from glue_replay.transforms.customers import CUSTOMER_SCHEMA, normalize_customers


@dataclass(frozen=True)
class Entity:
    """One kind of record flowing through ingest -> normalize -> outbox.

    ``normalize`` maps raw rows to rows carrying every column of ``schema`` plus
    ``quarantine_reason``; ``schema`` must have ``id`` and the version column ``updated_at``.
    """

    name: str
    aggregate: str
    normalize: Callable[[DataFrame], DataFrame]
    schema: StructType
    ids: IdRule = DEFAULT_IDS

    @property
    def business_columns(self) -> list[str]:
        return self.schema.fieldNames()

    @property
    def hashed_columns(self) -> list[str]:
        """Columns whose change is a content change (the version itself is not)."""
        return [name for name in self.schema.fieldNames() if name != "updated_at"]


CUSTOMERS = Entity(
    name="customers",
    aggregate="customer",
    normalize=normalize_customers,
    schema=CUSTOMER_SCHEMA,
    ids=CUSTOMER_IDS,
)

ENTITIES = {entity.name: entity for entity in (CUSTOMERS,)}
