"""The model-based test of DESIGN §6: random sequences of source changes, BAU runs, replays,
reused request ids, retries and kills, against a real local warehouse, the sample API on
loopback (customers) and a real PostgreSQL (orders). After every step the invariants are
checked against the tables.

The model knows only what an operator knows: what it changed at the source and when, which
requests it ran, how each run ended (exit code, or killed). From that it keeps, per entity,
the ids whose normalized row must equal the source's latest state ("fresh"): an id is fresh
after a successful request whose read covered it, and stale again when the source changes it.
Every step then checks, with real Spark reads:

1. normalized equals the source's latest state for every fresh id (version, status, deleted);
2. every fresh id's latest version has reached the outbox (a change reaches it by the next
   successful BAU at the latest: a BAU makes every id changed before its start fresh);
3. no two outbox rows share an ``event_id``; a BAU change (aggregate, content) has one
   ``event_id``;
4. the BAU watermark of each job never moves backwards;
5. the ledger agrees with the tables: a succeeded ingest's ``rows_written`` is the raw rows of
   its request, a succeeded normalize's ``rows_outboxed`` the outbox rows of its request; only
   killed runs nobody retried are left ``running``; every request the model completed has a
   succeeded row per stage; a refused request or a dry run wrote no data.

``run(profile)`` runs examples until the profile's step count is reached and returns a
:class:`Summary` (steps, kills, replays, events, invariants checked).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chispa import assert_df_equality
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from glue_replay import run_ingest_job, run_normalize_job
from glue_replay.tables import Warehouse, read_outbox, read_runs
from glue_replay.tables.delta import table_exists, table_version
from glue_replay_devtools.postgres import PostgresServer, insert_orders, sample_orders, touch_orders
from glue_replay_devtools.sample_api import SampleApiServer, malformed_ids
from glue_replay_examples import customers, orders
from test_pipelines import SteppingClock

REPO = Path(__file__).resolve().parents[1]
#: The model's first instant; the sample data is anchored here.
START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CUSTOMERS_AT_START = 24
ORDERS_AT_START = 12
FIRST_ORDER_ID = 1001
PIPELINES = {"customers": customers.PIPELINE, "orders": orders.PIPELINE}
ENTITIES = tuple(PIPELINES)
KILL_POINTS = ("timer", "second_batch", "before_merge", "before_finish")
#: Normalized columns the model compares with the source (both entities have them).
COMPARED = "id string, updated_at timestamp, status string"


@dataclass(frozen=True)
class Profile:
    """How long a model run is: ``steps`` in total, over examples of ``steps_per_example``."""

    name: str
    steps: int
    steps_per_example: int


SHORT = Profile("short", steps=10, steps_per_example=10)
SOAK = Profile("soak", steps=200, steps_per_example=40)


@dataclass
class Summary:
    """What a model run did; :meth:`markdown` is what ``make soak`` writes to ``docs/``."""

    profile: str = ""
    examples: int = 0
    steps: int = 0
    kills: int = 0
    kill_points: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    replays: Counter[str] = field(default_factory=Counter)
    bau_runs: int = 0
    reused_same: int = 0
    reused_refused: int = 0
    dry_runs: int = 0
    source_changes: Counter[str] = field(default_factory=Counter)
    events: int = 0
    checks: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def markdown(self, command: str) -> str:
        def counts(counter: Counter[str]) -> str:
            return ", ".join(f"{name} {n}" for name, n in sorted(counter.items())) or "none"

        rows = [
            ("steps", f"{self.steps} in {self.examples} sequences (fresh warehouse each)"),
            ("source changes", counts(self.source_changes)),
            ("BAU runs (both stages)", str(self.bau_runs)),
            ("replays", counts(self.replays)),
            ("kills (SIGKILL)", f"{self.kills}: {counts(self.kill_points)}"),
            ("retries of a killed request", str(self.retries)),
            ("request ids reused, same request", str(self.reused_same)),
            ("request ids reused, other request (refused)", str(self.reused_refused)),
            ("dry runs", str(self.dry_runs)),
            ("outbox events at the ends of the sequences", str(self.events)),
            ("invariants checked", f"{sum(self.checks.values())}: {counts(self.checks)}"),
            ("invariants broken", "0"),
            ("wall time", f"{self.seconds / 60:.1f} min"),
        ]
        table = "\n".join(f"| {name} | {value} |" for name, value in rows)
        return (
            "# Soak: the model-based test, long profile\n\n"
            f"`{command}` ran the model of `tests/replay_model.py` (hypothesis stateful) "
            "against a local Delta warehouse, the sample API on loopback (customers) and a real "
            "PostgreSQL (orders). Every invariant is checked after every step; a broken one "
            "fails the run with the step sequence that broke it.\n\n"
            f"| what | how many |\n|---|---|\n{table}\n"
        )


@dataclass
class World:
    """What a model run shares across examples: Spark, PostgreSQL, the summary."""

    spark: SparkSession
    postgres: PostgresServer
    summary: Summary
    progress: Callable[[str], None]


@dataclass
class Request:
    """One request the model sent: its id, entity and replay arguments."""

    request_id: str
    entity: str
    arguments: tuple[str, ...]
    mode: str


class InvariantBrokenError(AssertionError):
    """An invariant of DESIGN §6 does not hold after a step."""


class ReplayModel(RuleBasedStateMachine):
    world: World  # set by run()

    #: Machines made in this hypothesis run; the first one is hypothesis's "simplest example"
    #: (the same rule with the smallest arguments, every step): it runs inert, costing nothing.
    made = 0

    def __init__(self) -> None:
        super().__init__()
        type(self).made += 1
        self.inert = type(self).made == 1
        if not self.inert:
            self._start()

    @precondition(lambda self: self.inert)
    @rule()
    def nothing(self) -> None:
        """The inert machine's only rule."""

    def _start(self) -> None:
        self.clock = SteppingClock(START)
        self.folder = Path(tempfile.mkdtemp(prefix="glue-replay-model-"))
        self.warehouse = str(self.folder / "warehouse")
        self.tables = Warehouse(self.warehouse)
        self.api = SampleApiServer(records=CUSTOMERS_AT_START, now=START, clock=self.clock).start()
        postgres = self.world.postgres
        postgres.run_sql("TRUNCATE order_lines, orders;")
        self.orders = sample_orders(ORDERS_AT_START, now=START, first_id=FIRST_ORDER_ID)
        insert_orders(postgres, self.orders)
        self.next_order = FIRST_ORDER_ID + ORDERS_AT_START
        self.malformed = {
            "customers": set(malformed_ids(CUSTOMERS_AT_START)),
            "orders": {str(o.id) for i, o in enumerate(self.orders) if i % 10 == 9},
        }
        self.fresh: dict[str, set[str]] = {e: set() for e in ENTITIES}
        self.changed_at: dict[str, dict[str, datetime]] = {e: {} for e in ENTITIES}
        self.completed: list[Request] = []
        self.killed: list[tuple[Request, datetime]] = []  # and the killed attempt's clock
        self.refused: list[str] = []
        self.watermarks: dict[tuple[str, str], datetime] = {}
        self.counter = 0
        self.began = False
        self.world.summary.examples += 1
        self.world.progress(f"sequence {self.world.summary.examples}: warehouse {self.warehouse}")

    def teardown(self) -> None:
        if self.inert:
            return
        self.world.summary.events += len(self._outbox_rows())
        self.api.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- the source -------------------------------------------------------------------------

    @precondition(lambda self: not self.inert)
    @rule(entity=st.sampled_from(ENTITIES), how_many=st.integers(1, 3), data=st.data())
    def update_records(self, entity: str, how_many: int, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(self._good_ids(entity)), min_size=1,
                                 max_size=how_many, unique=True))  # fmt: skip
        self.update(entity, ids)

    def update(self, entity: str, ids: list[str]) -> None:
        """The source changes ``ids`` now."""
        self._tick()
        if entity == "customers":
            self.api.mutate(ids=ids)
        else:
            touch_orders(self.world.postgres, [int(i) for i in ids], self.clock.now)
        self._changed(entity, ids, "update")

    @precondition(lambda self: not self.inert)
    @rule(entity=st.sampled_from(ENTITIES), how_many=st.integers(1, 2))
    def insert_records(self, entity: str, how_many: int) -> None:
        self._tick()
        if entity == "customers":
            ids = self.api.insert(how_many)
        else:
            new = [
                replace(order, id=self.next_order + n, updated_at=self.clock.now)
                for n, order in enumerate(sample_orders(how_many, now=START, seed=self.next_order))
            ]
            insert_orders(self.world.postgres, new)
            self.next_order += how_many
            ids = [str(o.id) for o in new]
        self._changed(entity, ids, "insert")

    @precondition(lambda self: not self.inert)
    @rule(data=st.data())
    def delete_customer(self, data: st.DataObject) -> None:
        self._tick()
        ids = [data.draw(st.sampled_from(self._good_ids("customers")))]
        self.api.delete(ids)
        self._changed("customers", ids, "delete")

    # --- runs -------------------------------------------------------------------------------

    @precondition(lambda self: not self.inert)
    @rule(entities=st.sampled_from([("customers",), ("orders",), ENTITIES]))
    def bau(self, entities: tuple[str, ...]) -> None:
        for entity in entities:
            request = self._request(entity, "bau", ())
            self._tick()
            started = self.clock.now
            self._workflow(request)
            self._bau_done(entity, started)
            self.world.summary.bau_runs += 1

    @precondition(lambda self: not self.inert)
    @rule(entities=st.sampled_from([("customers",), ("orders",), ENTITIES]))
    def full_replay(self, entities: tuple[str, ...]) -> None:
        for entity in entities:
            request = self._request(entity, "full", ("--replay_mode", "full"))
            self._tick()
            self._workflow(request)
            self._covered(request, self.clock.now)

    @precondition(lambda self: not self.inert)
    @rule(entity=st.sampled_from(ENTITIES), days_back=st.integers(0, 3), until=st.booleans())
    def since_replay(self, entity: str, days_back: int, until: bool) -> None:
        day = (self.clock.now - timedelta(days=days_back)).date()
        arguments = ["--replay_mode", "since", "--date", day.isoformat()]
        if until:
            arguments += ["--until", (day + timedelta(days=1)).isoformat()]
        request = self._request(entity, "since", tuple(arguments))
        self._tick()
        self._workflow(request)
        self._covered(request, self.clock.now)

    @precondition(lambda self: not self.inert)
    @rule(entity=st.sampled_from(ENTITIES), data=st.data(), unknown=st.booleans())
    def targeted_replay(self, entity: str, data: st.DataObject, unknown: bool) -> None:
        ids = data.draw(st.lists(st.sampled_from(self._all_ids(entity)), min_size=1,
                                 max_size=4, unique=True))  # fmt: skip
        if unknown:
            ids.append("999999")  # not at the source: reported, never fatal
        request = self._request(entity, "targeted", ("--replay_mode", "targeted",
                                                     "--ids", ",".join(ids)))  # fmt: skip
        self._tick()
        self._workflow(request)
        self._covered(request, self.clock.now)

    @precondition(lambda self: not self.inert and bool(self.completed))
    @rule(data=st.data())
    def reuse_request_id_for_the_same_request(self, data: st.DataObject) -> None:
        request = data.draw(st.sampled_from(self.completed))
        before = self._versions(request.entity)
        self._tick()
        for stage in ("ingest", "normalize"):
            self._expect(self._run(stage, request), 0, request, stage)
        if self._versions(request.entity) != before:
            raise InvariantBrokenError(f"{request.request_id} run again wrote data: {before}")
        self.world.summary.reused_same += 1

    @precondition(lambda self: not self.inert and bool(self.completed))
    @rule(data=st.data())
    def reuse_request_id_for_another_request(self, data: st.DataObject) -> None:
        earlier = data.draw(st.sampled_from(self.completed))
        other = "targeted" if earlier.mode != "targeted" else "full"
        arguments = (
            ("--replay_mode", "targeted", "--ids", self._good_ids(earlier.entity)[0])
            if other == "targeted"
            else ("--replay_mode", "full")
        )
        request = Request(earlier.request_id, earlier.entity, arguments, other)
        before = self._versions(request.entity)
        self._tick()
        for stage in ("ingest", "normalize"):
            self._expect(self._run(stage, request), 2, request, stage)
        if self._versions(request.entity) != before:
            raise InvariantBrokenError(f"refused reuse of {request.request_id} wrote data")
        self.world.summary.reused_refused += 1

    @precondition(lambda self: not self.inert)
    @rule(entity=st.sampled_from(ENTITIES), mode=st.sampled_from(["bau", "full", "targeted"]))
    def dry_run(self, entity: str, mode: str) -> None:
        arguments: tuple[str, ...] = {
            "bau": (),
            "full": ("--replay_mode", "full"),
            "targeted": ("--replay_mode", "targeted", "--ids", self._good_ids(entity)[0]),
        }[mode]
        request = self._request(entity, mode, (*arguments, "--dry_run", "true"))
        before = self._versions(entity)
        self._tick()
        for stage in ("ingest", "normalize"):
            self._expect(self._run(stage, request), 0, request, stage)
        if self._versions(entity) != before:
            raise InvariantBrokenError(f"dry run {request.request_id} wrote data")
        self.world.summary.dry_runs += 1

    @precondition(lambda self: not self.inert)
    @rule(
        entity=st.sampled_from(ENTITIES),
        mode=st.sampled_from(["bau", "full", "since", "targeted"]),
        stage=st.sampled_from(["ingest", "normalize"]),
        point=st.sampled_from(KILL_POINTS),
        delay=st.floats(2.0, 30.0),
        data=st.data(),
    )
    def killed_run(
        self, entity: str, mode: str, stage: str, point: str, delay: float, data: st.DataObject
    ) -> None:
        if point == "second_batch":
            stage = "ingest"
        if point == "before_merge":
            stage = "normalize"
        arguments: tuple[str, ...] = {
            "bau": (),
            "full": ("--replay_mode", "full"),
            "since": ("--replay_mode", "since", "--date",
                      (self.clock.now - timedelta(days=1)).date().isoformat()),
            "targeted": ("--replay_mode", "targeted", "--ids",
                         ",".join(data.draw(st.lists(st.sampled_from(self._all_ids(entity)),
                                                     min_size=1, max_size=3, unique=True)))),
        }[mode]  # fmt: skip
        self.run_killed(self._request(entity, mode, arguments), stage, point, delay)

    def run_killed(self, request: Request, stage: str, point: str, delay: float) -> None:
        """Run ``request``'s workflow, ``stage`` in a process of its own, killed at ``point``
        (or after ``delay`` seconds for ``timer``); it may also finish first."""
        self._tick()
        started = self.clock.now
        if stage == "normalize":
            self._expect(self._run("ingest", request), 0, request, "ingest")
            self.clock.advance(minutes=1)
        code = self._run_killable(stage, request, point, delay)
        if code == -signal.SIGKILL:
            self.killed.append((request, started))
            self.world.summary.kills += 1
            self.world.summary.kill_points[point] += 1
            return
        self._expect(code, 0, request, stage)
        if stage == "ingest":
            self.clock.advance(minutes=1)
            self._expect(self._run("normalize", request), 0, request, "normalize")
        self.completed.append(request)
        self._after_success(request, started)

    @precondition(lambda self: not self.inert and bool(self.killed))
    @rule(data=st.data())
    def retry_killed_request(self, data: st.DataObject) -> None:
        self.retry(data.draw(st.sampled_from(self.killed)))

    def retry(self, killed: tuple[Request, datetime]) -> None:
        """Run a killed request again, as a Glue retry does: same request id, same arguments."""
        request, started = killed
        self.killed.remove(killed)
        self._tick()
        self._workflow(request, count=False)
        self._after_success(request, started)
        self.world.summary.retries += 1

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def tables_agree_with_the_model(self) -> None:
        if self.inert:
            return
        if not self.began:  # hypothesis also checks right after __init__: no step yet
            self.began = True
            return
        summary = self.world.summary
        summary.steps += 1
        self.world.progress(
            f"step {summary.steps}: clock {self.clock.now:%H:%M}, fresh "
            + ", ".join(f"{e} {len(self.fresh[e])}" for e in ENTITIES)
        )
        outbox = self._outbox_rows()
        for entity in ENTITIES:
            self._check_fresh(entity, outbox)
        self._check_outbox_ids(outbox)
        self._check_ledger(outbox)

    # --- helpers ----------------------------------------------------------------------------

    def _tick(self) -> None:
        self.clock.advance(minutes=2)

    def _request(self, entity: str, mode: str, arguments: tuple[str, ...]) -> Request:
        self.counter += 1
        request = Request(f"m{self.counter}-{mode}-{entity}", entity, arguments, mode)
        if mode != "bau":
            self.world.summary.replays[mode] += 1
        return request

    def _argv(self, stage: str, request: Request) -> list[str]:
        argv = [f"glue_jobs/{stage}_{request.entity}.py", *request.arguments]
        argv += ["--request_id", request.request_id, "--warehouse", self.warehouse]
        if request.entity == "customers":
            argv += ["--source_url", self.api.url]
        else:
            argv += ["--jdbc_url", self.world.postgres.jdbc_url]
        return argv

    def _run(self, stage: str, request: Request) -> int:
        job = run_ingest_job if stage == "ingest" else run_normalize_job
        return job(
            self._argv(stage, request),
            PIPELINES[request.entity],
            spark=self.world.spark,
            clock=self.clock,
        )

    def _run_killable(self, stage: str, request: Request, point: str, delay: float) -> int:
        command = [
            sys.executable,
            str(REPO / "tests" / "model_job.py"),
            self.clock.now.isoformat(),
            "none" if point == "timer" else point,
            request.entity,
            stage,
            *self._argv(stage, request),
        ]
        env = dict(os.environ, **self.world.postgres.reader.as_env())
        with subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        ) as process:
            deadline = time.monotonic() + (delay if point == "timer" else 600)
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            _, stderr = process.communicate(timeout=60)
        if process.returncode not in (0, -signal.SIGKILL):
            raise InvariantBrokenError(
                f"{stage} of {request.request_id} exited {process.returncode}: "
                f"{stderr.decode(errors='replace')[-2000:]}"
            )
        return process.returncode

    def _workflow(self, request: Request, count: bool = True) -> None:
        """Ingest, then normalize a minute later, as the workflow's cascade does."""
        self._expect(self._run("ingest", request), 0, request, "ingest")
        self.clock.advance(minutes=1)
        self._expect(self._run("normalize", request), 0, request, "normalize")
        if count:
            self.completed.append(request)

    def _expect(self, code: int, expected: int, request: Request, stage: str) -> None:
        if code != expected:
            raise InvariantBrokenError(
                f"{stage} of {request.request_id} {request.arguments} exited {code}, "
                f"expected {expected}"
            )

    def _changed(self, entity: str, ids: Sequence[str], how: str) -> None:
        for record_id in ids:
            self.fresh[entity].discard(record_id)
            self.changed_at[entity][record_id] = self.clock.now
        self.world.summary.source_changes[f"{entity} {how}"] += len(ids)

    def _after_success(self, request: Request, started: datetime) -> None:
        if request.mode == "bau":
            self._bau_done(request.entity, started)
        else:
            self._covered(request, started)

    def _bau_done(self, entity: str, started: datetime) -> None:
        """A successful BAU: every change made before it started has reached normalized and
        the outbox (the first BAU looks back 24 hours, longer than any model run)."""
        for record_id, at in self.changed_at[entity].items():
            if at < started and record_id not in self.malformed[entity]:
                self.fresh[entity].add(record_id)

    def _covered(self, request: Request, as_of: datetime) -> None:
        """A successful replay read the source as of its first attempt's start: the ids it
        covered, unchanged since, are fresh."""
        state = self._source(request.entity)
        if request.mode == "targeted":
            ids_text = request.arguments[request.arguments.index("--ids") + 1]
            covered = {i for i in ids_text.split(",") if i in state}
        else:
            start = datetime.min.replace(tzinfo=UTC)
            end = as_of
            if request.mode == "since":
                day = request.arguments[request.arguments.index("--date") + 1]
                start = datetime.fromisoformat(day).replace(tzinfo=UTC)
                if "--until" in request.arguments:
                    until = request.arguments[request.arguments.index("--until") + 1]
                    end = min(end, datetime.fromisoformat(until).replace(tzinfo=UTC))
            covered = {i for i, (at, _) in state.items() if start <= at < end}
        for record_id in covered:
            changed = self.changed_at[request.entity].get(record_id)
            if record_id not in self.malformed[request.entity] and (
                changed is None or changed < as_of
            ):
                self.fresh[request.entity].add(record_id)

    def _source(self, entity: str) -> dict[str, tuple[datetime, str]]:
        """The source's latest state: id -> (version, status as normalized)."""
        if entity == "customers":
            return {
                c.id: (c.updated_at, str(c.record.get("status") or "").strip().lower())
                for c in self.api.customers()
            }
        text = self.world.postgres.run_sql(
            "SELECT id, status, to_char(updated_at AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS') FROM orders ORDER BY id;"
        )
        state = {}
        for line in text.splitlines():
            if line.strip():
                record_id, status, at = line.split("|")
                version = datetime.fromisoformat(at).replace(tzinfo=UTC)
                state[record_id] = (version, status.strip().lower())
        return state

    def _good_ids(self, entity: str) -> list[str]:
        return [i for i in sorted(self._source(entity)) if i not in self.malformed[entity]]

    def _all_ids(self, entity: str) -> list[str]:
        return sorted(self._source(entity))

    def _versions(self, entity: str) -> dict[str, int | None]:
        """The Delta version of every data table of ``entity`` (None: not created)."""
        spark = self.world.spark
        paths = {
            "raw": self.tables.raw(entity),
            "normalized": self.tables.normalized(entity),
            "outbox": self.tables.outbox_of(entity),
            "quarantine/ingest": self.tables.quarantine_of("ingest", entity),
            "quarantine/normalize": self.tables.quarantine_of("normalize", entity),
        }
        return {name: table_version(spark, path) for name, path in paths.items()}

    def _outbox_rows(self) -> list[dict[str, Any]]:
        spark = self.world.spark
        if not any(table_exists(spark, self.tables.outbox_of(e)) for e in ENTITIES):
            return []
        outbox = read_outbox(spark, self.tables).select(
            "event_id", "aggregate_type", "aggregate_id", "payload", "request_id", "replay_mode"
        )
        return [row.asDict() for row in outbox.collect()]

    def _check_fresh(self, entity: str, outbox: list[dict[str, Any]]) -> None:
        """Normalized equals the source for every fresh id, and its version is published."""
        fresh = sorted(self.fresh[entity])
        if not fresh:
            return
        spark = self.world.spark
        state = self._source(entity)
        expected = [(i, state[i][0], state[i][1]) for i in fresh]
        normalized = (
            spark.read.format("delta")
            .load(self.tables.normalized(entity))
            .where(F.col("id").isin(fresh))
        )
        if entity == "customers":
            # The tombstone: deleted exactly when the source's status says so.
            normalized = normalized.where(F.col("is_deleted") == (F.col("status") == "deleted"))
        assert_df_equality(
            normalized.select("id", "updated_at", "status"),
            spark.createDataFrame(expected, COMPARED),
            ignore_row_order=True,
            ignore_nullable=True,
        )
        self.world.summary.checks["normalized = source"] += 1
        published = {
            (row["aggregate_id"], _instant(json.loads(row["payload"])["updated_at"]))
            for row in outbox
            if row["aggregate_type"] == entity
        }
        lost = [
            (i, at.isoformat())
            for i, at, _ in expected
            if (i, at.astimezone(UTC).replace(tzinfo=None)) not in published
        ]
        if lost:
            raise InvariantBrokenError(f"{entity}: latest versions never published: {lost}")
        self.world.summary.checks["every change in the outbox"] += 1

    def _check_outbox_ids(self, outbox: list[dict[str, Any]]) -> None:
        shared = [i for i, n in Counter(r["event_id"] for r in outbox).items() if n > 1]
        if shared:
            raise InvariantBrokenError(f"event_ids shared by several outbox rows: {shared}")
        self.world.summary.checks["event_id unique"] += 1
        ids_of_change: dict[tuple[str, str, str], set[str]] = {}
        for row in outbox:
            if row["replay_mode"] == "bau":
                change = (row["aggregate_type"], row["aggregate_id"], row["payload"])
                ids_of_change.setdefault(change, set()).add(row["event_id"])
        twice = [change for change, ids in ids_of_change.items() if len(ids) > 1]
        if twice:
            raise InvariantBrokenError(f"a BAU change under several event_ids: {twice}")
        self.world.summary.checks["BAU change has one event_id"] += 1

    def _check_ledger(self, outbox: list[dict[str, Any]]) -> None:
        spark = self.world.spark
        rows = [r.asDict() for r in read_runs(spark, self.tables).collect()]
        summary = self.world.summary
        # The watermark never moves backwards: in start order, and from one step to the next.
        latest: dict[tuple[str, str], datetime] = {}
        for row in sorted(rows, key=lambda r: r["started_at"]):
            if row["watermark"] is None:
                continue
            key = (row["stage"], row["entity"])
            last = latest.get(key)
            if last is not None and row["watermark"] < last:
                moved = f"{last} -> {row['watermark']}"
                raise InvariantBrokenError(f"{key} watermark moved back: {moved}")
            latest[key] = row["watermark"]
        for key, last in self.watermarks.items():
            if latest.get(key, last) < last:
                raise InvariantBrokenError(f"{key} watermark moved back below {last}")
        self.watermarks = latest
        summary.checks["watermark never backwards"] += 1
        # Only killed runs nobody retried are left running.
        unretried = {r.request_id for r, _ in self.killed}
        stuck = [r for r in rows if r["status"] == "running" and r["request_id"] not in unretried]
        if stuck:
            raise InvariantBrokenError(f"runs left running: {[r['request_id'] for r in stuck]}")
        # Every completed request has a succeeded row per stage.
        succeeded = {(r["request_id"], r["stage"]) for r in rows if r["status"] == "succeeded"}
        for request in self.completed:
            for stage in ("ingest", "normalize"):
                if (request.request_id, stage) not in succeeded:
                    raise InvariantBrokenError(f"{request.request_id}: no succeeded {stage} run")
        # Counts agree with the tables.
        raw_counts = self._raw_counts()
        # The outbox's aggregate_type is the entity's name (DESIGN §5).
        outbox_counts = Counter((r["aggregate_type"], r["request_id"]) for r in outbox)
        for row in rows:
            if row["status"] != "succeeded" or (row["note"] or "").startswith(
                "request already succeeded"
            ):
                continue
            key = (row["entity"], row["request_id"])
            if row["stage"] == "ingest" and row["rows_written"] != raw_counts.get(key, 0):
                raise InvariantBrokenError(
                    f"ledger: ingest {key} wrote {row['rows_written']}, raw holds "
                    f"{raw_counts.get(key, 0)}"
                )
            if row["stage"] == "normalize" and row["rows_outboxed"] != outbox_counts[key]:
                raise InvariantBrokenError(
                    f"ledger: normalize {key} outboxed {row['rows_outboxed']}, outbox holds "
                    f"{outbox_counts[key]}"
                )
        summary.checks["ledger agrees with tables"] += 1

    def _raw_counts(self) -> dict[tuple[str, str], int]:
        spark = self.world.spark
        counts: dict[tuple[str, str], int] = {}
        for entity in ENTITIES:
            path = self.tables.raw(entity)
            if table_exists(spark, path):
                frame = spark.read.format("delta").load(path).groupBy("request_id").count()
                for row in frame.collect():
                    counts[(entity, row["request_id"])] = int(row["count"])
        return counts


def _instant(text: str) -> datetime:
    """A payload's timestamp (``2026-06-01T12:04:00.000Z``) as the naive UTC Spark collects."""
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def run(world: World, profile: Profile) -> Summary:
    """Run sequences of the model until ``profile.steps`` steps have run; the summary."""
    summary = world.summary
    summary.profile = profile.name
    began = time.monotonic()

    class Model(ReplayModel):
        pass

    Model.world = world
    configured = settings(
        max_examples=2,  # the inert simplest example, then a random sequence
        stateful_step_count=profile.steps_per_example,
        deadline=None,
        database=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    while summary.steps < profile.steps:
        Model.made = 0
        run_state_machine_as_test(Model, settings=configured)
    summary.seconds = time.monotonic() - began
    return summary
