"""The Delta tables: raw, normalized (MERGE), outbox, the runs ledger and quarantine."""

from glue_replay.tables.delta import (
    Warehouse,
    append_once,
    ensure_table,
    read_all,
    read_outbox,
    read_quarantine,
    read_runs,
    read_table,
)
from glue_replay.tables.runs import PriorRuns, RunRecord, RunsLedger, RunStatus

__all__ = [
    "PriorRuns",
    "RunRecord",
    "RunStatus",
    "RunsLedger",
    "Warehouse",
    "append_once",
    "ensure_table",
    "read_all",
    "read_outbox",
    "read_quarantine",
    "read_runs",
    "read_table",
]
