"""Predicates on a set of keys that Delta's data skipping understands.

Delta skips a data file when its min/max statistics prove a predicate false for every row.
Open-source Delta 3.3 turns ``key IN (a, b, c)`` into one range, ``min(list) <= key <=
max(list)``, so ten scattered ids still read every file; and a join with the ids frame skips
nothing. An OR of equalities (or of narrow ranges) is checked file by file:

    key_predicate(F.col("id"), ["7", "42", "9"])
    -> (id = '42') OR ((id = '7') OR (id = '9'))

For more keys than :data:`MAX_RANGES`, the sorted keys are cut into that many runs of
neighbours, each a range ``lo <= key <= hi``: still a superset of the keys (the caller joins
on the exact set), narrow when the keys cluster, the whole table when they do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

#: A selection carries a literal predicate on its keys up to this many keys (beyond it, the keys
#: spread over most files of any layout, and the predicate would only cost planning time).
PRUNING_KEYS = 1_000
#: At most this many OR-ed terms in one predicate.
MAX_RANGES = 64
#: Up to this many keys, a read of a keyed table is semi-joined with them (broadcast) before
#: anything is shuffled; beyond it (a full run), the whole table takes part anyway.
BROADCAST_KEYS = 100_000


def key_ranges(keys: Sequence[Any], max_ranges: int | None = None) -> list[tuple[Any, Any]]:
    """The distinct non-null ``keys``, sorted, as at most ``max_ranges`` ``(lo, hi)`` runs.

    ["9", "7", "42", "7"] -> [("42", "42"), ("7", "7"), ("9", "9")]
    """
    max_ranges = MAX_RANGES if max_ranges is None else max_ranges
    if max_ranges < 1:
        raise ValueError("max_ranges must be at least 1")
    ordered = sorted({k for k in keys if k is not None})
    if not ordered:
        return []
    size = -(-len(ordered) // max_ranges)  # ceiling: every run but the last holds `size` keys
    return [
        (ordered[i], ordered[min(i + size, len(ordered)) - 1]) for i in range(0, len(ordered), size)
    ]


def key_predicate(column: Column, keys: Sequence[Any], max_ranges: int | None = None) -> Column:
    """``column`` equal to one of ``keys`` (or within one of their runs): see the module doc.
    No keys: a predicate that is always false. ``max_ranges`` defaults to :data:`MAX_RANGES`."""
    terms = [
        column == F.lit(lo) if lo == hi else column.between(F.lit(lo), F.lit(hi))
        for lo, hi in key_ranges(keys, max_ranges)
    ]
    if not terms:
        return F.lit(False)
    return _balanced_or(terms)


def exact_key_predicate(column: Column, keys: Sequence[Any]) -> Column | None:
    """:func:`key_predicate` when it is exact, an equality per key (at most :data:`MAX_RANGES`
    distinct keys): then it is the whole selection and no join with the keys is needed.
    ``None`` when there are more: the predicate would be a superset of runs.

        exact_key_predicate(F.col("id"), ["7", "42"]) -> (id = '7') OR (id = '42')
    """
    if len({k for k in keys if k is not None}) > MAX_RANGES:
        return None
    return key_predicate(column, keys)


def _balanced_or(terms: list[Column]) -> Column:
    """OR the terms as a balanced tree: its depth grows with log(terms), not terms."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return _balanced_or(terms[:middle]) | _balanced_or(terms[middle:])


@dataclass(frozen=True)
class KeyScope:
    """The keys a run touches, and what narrows a read of a table keyed by them to those keys.

    ``values``: the keys themselves when there are at most :data:`PRUNING_KEYS` (for a literal
    predicate Delta skips files by); ``frame``: a one-column frame of them when there are at
    most :data:`BROADCAST_KEYS` (for a broadcast semi-join before any shuffle).

        KeyScope.of(rows with keys 7, 42, 42) -> KeyScope(count=2, values=(7, 42), frame=...)
    """

    count: int
    values: tuple[Any, ...] | None
    frame: DataFrame | None

    @classmethod
    def of(cls, rows: DataFrame, key: str) -> KeyScope:
        """The distinct non-null ``key`` values of ``rows``: a count, then :meth:`counted`."""
        return cls.counted(rows, key, cls._distinct(rows, key).count())

    @classmethod
    def counted(cls, rows: DataFrame, key: str, count: int) -> KeyScope:
        """:meth:`of`, for a caller that already counted the distinct keys: the keys are
        collected (one job) only when there are at most :data:`PRUNING_KEYS` of them."""
        keys = cls._distinct(rows, key)
        if count <= PRUNING_KEYS:
            return cls(count, tuple(row[0] for row in keys.collect()), keys)
        return cls(count, None, keys if count <= BROADCAST_KEYS else None)

    @staticmethod
    def _distinct(rows: DataFrame, key: str) -> DataFrame:
        return rows.select(key).where(F.col(key).isNotNull()).distinct()

    def restrict(self, table: DataFrame, key: str) -> DataFrame:
        """The rows of ``table`` whose ``key`` is one of these keys (all rows when too many).

        When the literal predicate is exact (:func:`exact_key_predicate`) it is all it takes;
        beyond, it is a superset and a broadcast semi-join with the keys narrows it (the keys
        recomputed, shuffled and broadcast: jobs a small run skips)."""
        if self.values is not None:
            exact = exact_key_predicate(F.col(key), self.values)
            if exact is not None:
                return table.where(exact)
            table = table.where(key_predicate(F.col(key), self.values))
        if self.frame is not None:
            table = table.join(F.broadcast(self.frame), on=key, how="left_semi")
        return table

    def target_predicate(self, column: Column) -> Column | None:
        """A predicate on ``column`` that every row with one of these keys satisfies, for a
        MERGE condition (Delta prunes the target's files by it); ``None`` when too many."""
        return None if self.values is None else key_predicate(column, self.values)
