"""After a replay's workflow run starts, the trigger watches it until Glue accepts its first run.

A workflow's ``MaxConcurrentRuns`` counts runs of that workflow only: when a BAU run takes the
ingest job between the busy check and ``StartWorkflowRun``, Glue accepts the replay's workflow
run and refuses its ingest job run at once (FAILED, "exceeded its maximum allowed concurrent
runs"). moto runs no workflow and answers without a graph, so these tests answer as Glue does
(``GetWorkflowRun`` with ``IncludeGraph``, botocore's shapes) from a scripted stand-in: Glue
itself is the one part that cannot run here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from glue_replay.request import ReplayMode, ReplayRequest
from glue_replay.trigger.start import (
    BusyRun,
    Confirmation,
    GlueTarget,
    JobBusyError,
    StartedReplay,
    confirm_started,
)

INGEST, NORMALIZE = "glue-replay-orders-ingest", "glue-replay-orders-normalize"
REPLAY, BAU = "glue-replay-orders-replay", "glue-replay-orders-bau"
TARGET = GlueTarget("orders", "all", REPLAY, (INGEST, NORMALIZE), (REPLAY, BAU))
STARTED = StartedReplay("fix-1842", TARGET, {"replay_mode": "full"}, workflow_run_id="wr_replay")
BAU_STARTED = datetime(2026, 11, 29, 3, 0, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 29, 3, 0, 2, tzinfo=UTC)
REFUSAL = "Job glue-replay-orders-ingest exceeded its maximum allowed concurrent runs (1)"


def graph(*ingest_runs: dict[str, Any]) -> dict[str, Any]:
    """A replay workflow run's graph: its two job nodes, ingest with these runs."""
    return {
        "Nodes": [
            {"Type": "TRIGGER", "Name": "glue-replay-orders-replay-start"},
            {"Type": "JOB", "Name": INGEST, "JobDetails": {"JobRuns": list(ingest_runs)}},
            {"Type": "JOB", "Name": NORMALIZE, "JobDetails": {}},
        ]
    }


class ScriptedGlue:
    """Answers GetWorkflowRun from a script of graphs (one per call, the last one repeated) and
    the busy check's listings with a BAU run that holds the ingest job."""

    def __init__(self, *graphs: dict[str, Any] | None) -> None:
        self.graphs, self.calls = list(graphs), 0

    def get_workflow_run(self, Name: str, RunId: str, IncludeGraph: bool) -> dict[str, Any]:  # noqa: N803
        assert (Name, RunId, IncludeGraph) == (REPLAY, "wr_replay", True)
        answer = self.graphs[min(self.calls, len(self.graphs) - 1)]
        self.calls += 1
        run: dict[str, Any] = {"Name": Name, "WorkflowRunId": RunId, "Status": "RUNNING"}
        return {"Run": run if answer is None else {**run, "Graph": answer}}

    def get_job_runs(self, JobName: str, MaxResults: int) -> dict[str, Any]:  # noqa: N803
        if JobName != INGEST:
            return {"JobRuns": []}
        return {
            "JobRuns": [
                {"Id": "jr_refused", "JobRunState": "FAILED", "ErrorMessage": REFUSAL},
                {"Id": "jr_bau", "JobRunState": "RUNNING", "StartedOn": BAU_STARTED},
            ]
        }

    def get_workflow_runs(self, Name: str, IncludeGraph: bool, MaxResults: int) -> dict[str, Any]:  # noqa: N803
        runs = {
            REPLAY: [{"WorkflowRunId": "wr_replay", "Status": "RUNNING", "StartedOn": NOW}],
            BAU: [{"WorkflowRunId": "wr_bau", "Status": "RUNNING", "StartedOn": BAU_STARTED}],
        }
        return {"Runs": runs[Name]}


class FakeTime:
    """A monotonic clock that only ``sleep`` moves."""

    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def watch(glue: ScriptedGlue, time: FakeTime, within: float = 20.0) -> Confirmation:
    return confirm_started(
        glue, STARTED, within=within, poll=2.0, sleep=time.sleep, clock=time.clock
    )


def test_an_ingest_run_refused_for_concurrency_is_busy_naming_the_holder_and_the_refused_run() -> (
    None
):
    refused_run = {"Id": "jr_refused", "JobRunState": "FAILED", "ErrorMessage": REFUSAL}
    glue, time = ScriptedGlue(graph(), graph(refused_run)), FakeTime()
    with pytest.raises(JobBusyError) as refused:
        watch(glue, time)
    assert refused.value.busy == BusyRun("job", INGEST, "jr_bau", "RUNNING", BAU_STARTED)
    assert refused.value.outcome() == (
        f"workflow {REPLAY} run wr_replay was started and Glue refused its first job run: "
        "nothing ran"
    )
    assert time.slept == [2.0]


def test_an_accepted_ingest_run_confirms_the_start_as_soon_as_it_shows() -> None:
    running = {"Id": "jr_7", "JobRunState": "RUNNING"}
    glue, time = ScriptedGlue(graph(), graph(), graph(running)), FakeTime()
    assert watch(glue, time) == Confirmation(True, f"{INGEST} run jr_7 RUNNING")
    assert time.slept == [2.0, 2.0]


def test_an_ingest_run_that_failed_for_another_reason_is_not_a_busy_job() -> None:
    failed = {"Id": "jr_7", "JobRunState": "FAILED", "ErrorMessage": "SystemExit: 1"}
    glue, time = ScriptedGlue(graph(failed)), FakeTime()
    assert watch(glue, time) == Confirmation(True, f"{INGEST} run jr_7 FAILED")


def test_no_ingest_run_within_the_wait_is_reported_unconfirmed_after_exactly_the_wait() -> None:
    glue, time = ScriptedGlue(graph()), FakeTime()
    assert watch(glue, time, within=6.0) == Confirmation(False, f"no run of {INGEST} yet after 6 s")
    assert (time.slept, glue.calls) == ([2.0, 2.0, 2.0], 4)


def test_an_answer_without_a_graph_is_unconfirmed_at_once() -> None:
    glue, time = ScriptedGlue(None), FakeTime()
    assert watch(glue, time) == Confirmation(False, "Glue answered with no workflow graph to watch")
    assert (time.slept, glue.calls) == ([], 1)


def test_a_single_stage_needs_no_watch_start_job_run_refuses_a_busy_job_itself() -> None:
    target = GlueTarget("orders", "ingest", None, (INGEST,), (REPLAY, BAU))
    started = StartedReplay("fix-1", target, {}, job_run_ids={INGEST: "jr_1"})
    assert confirm_started(object(), started).confirmed


def test_the_confirmation_is_part_of_what_the_cli_prints_and_the_lambda_answers() -> None:
    request = ReplayRequest(ReplayMode.FULL, request_id="fix-1842")
    confirmed = Confirmation(True, f"{INGEST} run jr_7 RUNNING")
    started = StartedReplay(
        request.request_id, TARGET, {}, workflow_run_id="wr_replay", confirmation=confirmed
    )
    assert started.describe() == [
        f"workflow {REPLAY} run wr_replay",
        f"  jobs: {INGEST} -> {NORMALIZE} (normalize after ingest)",
        f"confirmed: {INGEST} run jr_7 RUNNING",
    ]
    assert started.as_response() == {
        "request_id": "fix-1842",
        "workflow_name": REPLAY,
        "workflow_run_id": "wr_replay",
        "confirmed": True,
        "confirmation": f"{INGEST} run jr_7 RUNNING",
    }
