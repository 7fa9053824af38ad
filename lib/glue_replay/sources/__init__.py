"""Source adapters: where ingest reads records from."""

from glue_replay.sources.base import Source, SourceQuery, SourceRecord

__all__ = ["Source", "SourceQuery", "SourceRecord"]
