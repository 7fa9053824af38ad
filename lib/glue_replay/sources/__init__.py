"""Sources: where ingest reads records from. The interface, and the REST source."""

from glue_replay.sources.base import RecordSource, Source, SourceRecord, SourceSettings

__all__ = ["RecordSource", "Source", "SourceRecord", "SourceSettings"]
