"""The source interface: what every ingest adapter (REST, JDBC, ...) gives the ingest pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class SourceQuery:
    """What to read, in the source's own terms.

    ``updated_since`` is inclusive and ``updated_before`` exclusive (both timezone-aware UTC);
    ``ids`` restricts the read to those record ids. ``None`` everywhere means "everything".
    """

    updated_since: datetime | None = None
    updated_before: datetime | None = None
    ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SourceRecord:
    """One record exactly as the source returned it.

    ``payload`` is the record serialised as JSON, unchanged; ``id`` and ``updated_at`` are the
    source's id and update time as text (``None`` when the record lacks them: such records are
    quarantined by the ingest pipeline, never dropped silently).
    """

    id: str | None
    updated_at: str | None
    payload: str


class Source(Protocol):
    """A readable source system for one entity."""

    @property
    def entity(self) -> str:
        """The entity this source serves, e.g. ``customers``: names the raw table."""
        ...

    @property
    def description(self) -> str:
        """Where the source is, for logs and the runs ledger (no credentials)."""
        ...

    def read(self, query: SourceQuery) -> Iterator[SourceRecord]:
        """Yield every record matching ``query``, paging as the source needs."""
        ...
