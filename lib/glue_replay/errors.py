"""Every error glue-replay raises on purpose derives from :class:`GlueReplayError`.

Messages say what was wrong, the value seen and what is accepted. Exceptions that carry more
than a message define ``__reduce__`` so they pickle (Spark ships exceptions from executors).

An :class:`InvalidRequestError` names the request field by its canonical name (``replay_mode``,
``ids_file``, ...). Each boundary renders it in its own spelling: a job says ``--replay_mode``,
the CLI ``--mode``, the Lambda ``mode`` (see :meth:`InvalidRequestError.render`). Other fields a
message mentions are written with :func:`ref`, so they are rendered the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: Exit codes of every entry point (DESIGN §4); the CLI adds 3 for a busy job.
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2

Spelling = Callable[[str], str]

_REF = re.compile(r"\u27e8([A-Za-z_][A-Za-z0-9_]*)\u27e9")


def ref(field: str) -> str:
    """A reference to request field ``field`` inside a message, rendered per boundary."""
    return f"\u27e8{field}\u27e9"


def job_spelling(field: str) -> str:
    """How a Glue job spells a field: ``replay_mode`` -> ``--replay_mode``."""
    return f"--{field}"


def render(text: str, spelling: Spelling) -> str:
    """``text`` with every :func:`ref` spelled by ``spelling``."""
    return _REF.sub(lambda match: spelling(match.group(1)), text)


class GlueReplayError(Exception):
    """Root of the package's exceptions."""


class InvalidRequestError(GlueReplayError):
    """A replay request (job arguments, CLI flags, Lambda event) that cannot be run.

    ``field`` is the canonical field name (``replay_mode``); ``problem`` and ``accepted`` may
    mention other fields through :func:`ref`. Raised before anything is written; the entry
    points turn it into exit code 2 (HTTP 400 for the Lambda).
    """

    def __init__(self, field: str, problem: str, accepted: str) -> None:
        self.field = field
        self.problem = problem
        self.accepted = accepted
        super().__init__(self.render(job_spelling))

    def render(self, spelling: Spelling) -> str:
        """One line in a boundary's spelling: ``--mode: 'x' is not a replay mode; accepted: ...``"""
        return render(f"{ref(self.field)}: {self.problem}; accepted: {self.accepted}", spelling)

    def __reduce__(self) -> tuple[type[InvalidRequestError], tuple[str, str, str]]:
        return (type(self), (self.field, self.problem, self.accepted))


class SourceError(GlueReplayError):
    """The source system could not be read (unreachable, bad status, unparseable response)."""


class RequestConflictError(GlueReplayError):
    """A request_id was reused for a different request."""


class PipelineDefinitionError(GlueReplayError):
    """An entity, source or pipeline definition that the library cannot run (a programming
    error in the user's pipeline, reported when it is defined, not in the middle of a run)."""


_TASK_ERROR = re.compile(r"^glue_replay\.errors\.(\w+): (.+)$", re.MULTILINE)


def task_error(exc: BaseException) -> GlueReplayError | None:
    """The error of ours that a Spark task raised, when ``exc`` is the action's error around it.

    An exception raised on an executor reaches the driver as a ``Py4JJavaError`` (or a
    ``PythonException``) whose text holds the task's Python traceback, ending in the exception's
    class and message. That error is rebuilt from the text, so the ledger and the job's last
    line say what went wrong instead of "An error occurred while calling o131.collectToPython".
    ``None`` when there is none.
    """
    found = _TASK_ERROR.search(str(exc))
    if found is None:
        return None
    name, message = found.groups()
    kind = {c.__name__: c for c in (SourceError, PipelineDefinitionError)}.get(name)
    return (kind or GlueReplayError)(message)
