"""The model-based test (``tests/replay_model.py``): random sequences of source changes, BAU
runs, replays, reused request ids, retries and kills, every invariant of DESIGN §6 checked
after every step.

``make test`` runs the short profile (one random sequence of 10 steps) and the sequences below,
written down because a random run found them or because they must always run. ``make soak``
runs the long profile (``GLUE_REPLAY_MODEL_PROFILE=soak``: at least 200 steps) and writes its
summary to ``docs/SOAK.md``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

import replay_model
from glue_replay.tables import read_outbox, read_runs
from glue_replay_devtools.postgres import Login, PostgresServer

pytest_plugins = ["postgres_fixture"]

SOAK_SUMMARY = replay_model.REPO / "docs" / "SOAK.md"


@pytest.fixture
def world(spark: SparkSession, postgres: PostgresServer, jdbc_login: Login) -> replay_model.World:
    return replay_model.World(
        spark=spark,
        postgres=postgres,
        summary=replay_model.Summary(),
        progress=lambda line: print(f"[model] {line}", file=sys.__stderr__, flush=True),
    )


@pytest.fixture
def model(world: replay_model.World) -> Iterator[replay_model.ReplayModel]:
    """One model, driven step by step by the test instead of hypothesis."""

    class Model(replay_model.ReplayModel):
        pass

    Model.world = world
    Model.made = 1  # not hypothesis's simplest example: a live model
    machine = Model()
    machine.began = True
    yield machine
    machine.teardown()


def test_every_invariant_holds_under_random_sequences_of_runs_replays_retries_and_kills(
    world: replay_model.World,
) -> None:
    soak = os.environ.get("GLUE_REPLAY_MODEL_PROFILE") == "soak"
    profile = replay_model.SOAK if soak else replay_model.SHORT
    summary = replay_model.run(world, profile)

    print(summary.markdown(f"the {profile.name} profile"))
    assert summary.steps >= profile.steps
    assert sum(summary.checks.values()) >= summary.steps
    if soak:
        SOAK_SUMMARY.write_text(summary.markdown("make soak"), encoding="utf-8")


def test_a_bau_killed_after_its_writes_is_retried_after_a_later_bau_without_moving_back(
    spark: SparkSession, model: replay_model.ReplayModel
) -> None:
    """Two sequences random runs found. A BAU normalize killed after its writes, as it records
    its success, and retried: the retry finds nothing left to publish, and its ledger row still
    counts the request's two events (it said 0). Retried after a later BAU succeeded: its
    window ended before that run's watermark, which it must not move back (it did)."""
    model.bau(("customers",))
    model.update("customers", ["3", "5"])
    killed = model._request("customers", "bau", ())
    model.run_killed(killed, "normalize", "before_finish", delay=0)
    assert [r.request_id for r, _ in model.killed] == [killed.request_id]
    model.tables_agree_with_the_model()
    model.bau(("customers",))
    model.tables_agree_with_the_model()

    model.retry(model.killed[0])
    model.tables_agree_with_the_model()

    events = (
        read_outbox(spark, model.tables)
        .where(F.col("request_id") == killed.request_id)
        .select("aggregate_id", "event_type", "replay_mode")
    )
    assert_df_equality(
        events,
        spark.createDataFrame(
            # 3 and 5 were last changed years ago: new to normalized, the first BAU's 24 hours
            # did not hold them.
            [("3", "customer.created", "bau"), ("5", "customer.created", "bau")],
            "aggregate_id string, event_type string, replay_mode string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    ledger = (
        read_runs(spark, model.tables)
        .where((F.col("request_id") == killed.request_id) & (F.col("stage") == "normalize"))
        .select(
            "status",
            "rows_outboxed",
            "watermark",
            F.regexp_replace("note", "local-[0-9a-f]+", "<run>").alias("note"),
        )
    )
    assert_df_equality(
        ledger,
        spark.createDataFrame(
            [
                (
                    "abandoned",
                    0,
                    None,
                    "abandoned: run <run> of the same request started at "
                    "2026-06-01T12:14:00+00:00 while this attempt was still marked running",
                ),
                (
                    "succeeded",
                    2,
                    None,
                    "window ended at or before the watermark 2026-06-01T12:11:00+00:00; kept",
                ),
            ],
            "status string, rows_outboxed long, watermark timestamp, note string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
