"""The stages: ingest (source -> raw) and normalize (raw -> normalized + outbox)."""
