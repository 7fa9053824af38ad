"""A lock that every process running the tests of this checkout at once shares.

`make test` runs the suite in two pytest-xdist workers, and a developer may run a test beside
it: whatever such processes do in a folder of the checkout itself, rather than in their own
``tmp_path``, must be done by one of them at a time. ``scripts/package.py``'s ``build_wheel``
is such a thing: ``pip wheel .`` builds in ``build/`` and ``lib/*.egg-info`` of the checkout,
then deletes ``build/``, so two builds at once can pack or delete each other's files.

    with checkout_lock("package-build"):
        package.build_wheel(tmp_path)

An exclusive ``flock`` on ``.cache/test-locks/<name>.lock``: the kernel releases it when its
holder dies, so a killed test run leaves no stale lock behind.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCKS = Path(__file__).resolve().parents[1] / ".cache" / "test-locks"


@contextmanager
def checkout_lock(name: str) -> Iterator[None]:
    """Hold the checkout-wide lock ``name`` for the ``with`` block, waiting for it if needed."""
    LOCKS.mkdir(parents=True, exist_ok=True)
    with (LOCKS / f"{name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
