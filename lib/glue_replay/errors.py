"""Every error glue-replay raises on purpose derives from :class:`GlueReplayError`.

Messages say what was wrong, the value seen and what is accepted. Exceptions that carry more
than a message define ``__reduce__`` so they pickle (Spark ships exceptions from executors).
"""

from __future__ import annotations


class GlueReplayError(Exception):
    """Root of the package's exceptions."""


class InvalidRequestError(GlueReplayError):
    """A replay request (job arguments, CLI flags, Lambda event) that cannot be run.

    Raised before anything is written; the job entry points turn it into exit code 2.
    """

    def __init__(self, argument: str, problem: str, accepted: str) -> None:
        self.argument = argument
        self.problem = problem
        self.accepted = accepted
        super().__init__(f"{argument}: {problem}; accepted: {accepted}")

    def __reduce__(self) -> tuple[type[InvalidRequestError], tuple[str, str, str]]:
        return (type(self), (self.argument, self.problem, self.accepted))


class SourceError(GlueReplayError):
    """The source system could not be read (unreachable, bad status, unparseable response)."""


class RequestConflictError(GlueReplayError):
    """A request_id was reused for a different request."""
