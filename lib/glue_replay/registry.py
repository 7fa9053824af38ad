"""Which pipelines are installed: the ``glue_replay.pipelines`` entry points.

A package that brings pipelines declares them in its packaging metadata, e.g. in ``setup.py``::

    entry_points={"glue_replay.pipelines": ["orders = my_pipelines.orders:ORDERS"]}

and the CLI (``glue-replay --entity orders --target local``) and the demo find them here. The
core never imports a pipeline by name; Glue jobs import theirs directly in their script.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from glue_replay.errors import InvalidRequestError, PipelineDefinitionError, ref

if TYPE_CHECKING:
    from glue_replay.jobs import Pipeline

ENTRY_POINT_GROUP = "glue_replay.pipelines"


def installed_pipelines() -> dict[str, Pipeline]:
    """Every installed pipeline by entity name (each entry point is loaded)."""
    from glue_replay.jobs import Pipeline

    found: dict[str, Pipeline] = {}
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        pipeline = point.load()
        if not isinstance(pipeline, Pipeline):
            raise PipelineDefinitionError(
                f"entry point {point.name} = {point.value} is a {type(pipeline).__name__}, "
                "not a glue_replay.Pipeline"
            )
        if pipeline.name != point.name:
            raise PipelineDefinitionError(
                f"entry point {point.name} = {point.value} is the pipeline of entity "
                f"{pipeline.name!r}; name the entry point after its entity"
            )
        found[pipeline.name] = pipeline
    return found


def installed_pipeline_names() -> list[str]:
    """The names of the installed pipelines, without loading them (no Spark import)."""
    return sorted({point.name for point in entry_points(group=ENTRY_POINT_GROUP)})


def choose_entity(requested: str | None, known: list[str], where: str) -> str:
    """The entity a request is for: the one asked for, or the only one there is.

    With several pipelines, a request must name its entity: one is never picked for the user.
    """
    if requested:
        if requested not in known:
            raise InvalidRequestError(
                "entity",
                f"{requested!r} is not a pipeline of {where}",
                ", ".join(known) or "(none configured)",
            )
        return requested
    if len(known) == 1:
        return known[0]
    raise InvalidRequestError(
        "entity",
        f"is required: {where} has {len(known)} pipelines" if known else f"{where} has none",
        f"{ref('entity')} " + (" | ".join(known) or "NAME"),
    )
