"""glue-replay: replayable AWS Glue PySpark jobs, ingest -> normalize -> Delta outbox.

The public extension API, for your own entities and sources::

    from glue_replay import Entity, Pipeline, RecordSource, Source, SourceRecord
    from glue_replay import run_ingest_job, run_normalize_job, run_publish_job

Importing the package starts no JVM and imports no Spark: the names below are loaded when
first used, so the replay trigger (the CLI, the Lambda) imports it without PySpark.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from glue_replay.entity import Entity as Entity
    from glue_replay.entity import EventTypes as EventTypes
    from glue_replay.entity import SoftDelete as SoftDelete
    from glue_replay.errors import GlueReplayError as GlueReplayError
    from glue_replay.errors import InvalidRequestError as InvalidRequestError
    from glue_replay.errors import SourceError as SourceError
    from glue_replay.jobs import Pipeline as Pipeline
    from glue_replay.jobs import run_ingest_job as run_ingest_job
    from glue_replay.jobs import run_normalize_job as run_normalize_job
    from glue_replay.jobs import run_publish_job as run_publish_job
    from glue_replay.request import DEFAULT_IDS as DEFAULT_IDS
    from glue_replay.request import IdRule as IdRule
    from glue_replay.request import ReplayMode as ReplayMode
    from glue_replay.request import ReplayRequest as ReplayRequest
    from glue_replay.sources.base import RecordSource as RecordSource
    from glue_replay.sources.base import Source as Source
    from glue_replay.sources.base import SourceRecord as SourceRecord
    from glue_replay.sources.base import SourceSettings as SourceSettings

_EXPORTS = {
    "Entity": "glue_replay.entity",
    "EventTypes": "glue_replay.entity",
    "SoftDelete": "glue_replay.entity",
    "GlueReplayError": "glue_replay.errors",
    "InvalidRequestError": "glue_replay.errors",
    "SourceError": "glue_replay.errors",
    "Pipeline": "glue_replay.jobs",
    "run_ingest_job": "glue_replay.jobs",
    "run_normalize_job": "glue_replay.jobs",
    "run_publish_job": "glue_replay.jobs",
    "DEFAULT_IDS": "glue_replay.request",
    "IdRule": "glue_replay.request",
    "ReplayMode": "glue_replay.request",
    "ReplayRequest": "glue_replay.request",
    "RecordSource": "glue_replay.sources.base",
    "Source": "glue_replay.sources.base",
    "SourceRecord": "glue_replay.sources.base",
    "SourceSettings": "glue_replay.sources.base",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'glue_replay' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
