"""The model-based test (``tests/replay_model.py``): random sequences of source changes, BAU
runs, replays, reused request ids, retries and kills, every invariant of DESIGN §6 checked
after every step.

``make test`` runs the short profile (one sequence of 12 steps). ``make soak`` runs the long
one (``GLUE_REPLAY_MODEL_PROFILE=soak``: at least 200 steps) and writes its summary to
``docs/SOAK.md``.
"""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

import replay_model
from glue_replay_devtools.postgres import Login, PostgresServer

pytest_plugins = ["postgres_fixture"]

SOAK_SUMMARY = replay_model.REPO / "docs" / "SOAK.md"


def test_every_invariant_holds_under_random_sequences_of_runs_replays_retries_and_kills(
    spark: SparkSession, postgres: PostgresServer, jdbc_login: Login
) -> None:
    soak = os.environ.get("GLUE_REPLAY_MODEL_PROFILE") == "soak"
    profile = replay_model.SOAK if soak else replay_model.SHORT
    world = replay_model.World(
        spark=spark,
        postgres=postgres,
        summary=replay_model.Summary(),
        progress=lambda line: print(f"[model] {line}", file=sys.__stderr__, flush=True),
    )
    summary = replay_model.run(world, profile)

    print(summary.markdown(f"the {profile.name} profile"))
    assert summary.steps >= profile.steps
    assert sum(summary.checks.values()) >= summary.steps
    if soak:
        SOAK_SUMMARY.write_text(summary.markdown("make soak"), encoding="utf-8")
