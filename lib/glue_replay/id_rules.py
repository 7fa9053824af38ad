"""Which ids each entity accepts, importable without Spark: requests are validated before the JVM
starts, and an id that the source would refuse (or that could change an HTTP query or a SQL
predicate) never gets further than the argument parser."""

from __future__ import annotations

from dataclasses import dataclass

from glue_replay.request import DEFAULT_ID_PATTERN, DEFAULT_ID_PATTERN_HELP


@dataclass(frozen=True)
class IdRule:
    pattern: str
    help: str


DEFAULT_IDS = IdRule(DEFAULT_ID_PATTERN, DEFAULT_ID_PATTERN_HELP)
#: What the customers API accepts in its ``ids`` filter.
CUSTOMER_IDS = IdRule(
    r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}",
    "1-64 letters, digits or _ . : -, starting with a letter or digit",
)
