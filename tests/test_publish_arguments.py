"""The publish job refuses a bad argument before Spark starts: exit 2, one line naming it."""

from __future__ import annotations

import pytest

from glue_replay import run_publish_job
from glue_replay.publishing import DeadLetterAction, PublishArguments, parse_publish_arguments
from glue_replay.sinks import SinkSpec
from glue_replay_examples.customers import PIPELINE as CUSTOMERS
from glue_replay_examples.orders import PIPELINE as ORDERS

SCRIPT = "glue_jobs/publish_outbox.py"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--sink", "s3://bucket/x"],
            "--sink: 's3://bucket/x' is not a sink; accepted: file:<folder>, kinesis:<stream "
            "ARN or name>, sqs:<queue URL or ARN>, sns:<topic ARN>, eventbridge:<bus ARN or "
            "name>, kafka:<host:port,...>/<topic>",
        ),
        (
            ["--sinks", "kinesis:events"],
            "--sink: --sinks is not an argument of this job; did you mean --sink?",
        ),
        (
            ["--entity_sinks", '{"invoices": "kinesis:events"}'],
            "--entity_sinks: 'invoices' is not a pipeline; accepted: customers, orders",
        ),
        (
            ["--entity_sinks", "orders=kinesis:events"],
            "--entity_sinks: is not JSON; accepted: a JSON object of entity -> sink",
        ),
        (["--entities", "customers,invoices"], "--entities: 'invoices' is not a pipeline"),
        (
            ["--dead_letters", "drop"],
            "--dead_letters: 'drop' is not an action; accepted: retry or skip",
        ),
        (["--dead_letter_ids", "e-1"], "--dead_letter_ids: given without --dead_letters"),
        (
            ["--dead_letters", "skip", "--dead_letter_ids", "e-1,'; DROP TABLE x"],
            '--dead_letter_ids: "\'; DROP TABLE x" is not an event id',
        ),
        (["--fail_on_dead_letter", "yes"], "--fail_on_dead_letter: 'yes' is not a flag"),
        (["--sink", "kafka:127.0.0.1:9092"], "--sink: "),
    ],
)
def test_a_bad_argument_is_refused_with_one_line_naming_it(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    code = run_publish_job([SCRIPT, "--warehouse", str(tmp_path), *arguments], [CUSTOMERS, ORDERS])
    lines = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith(f"publish_outbox: invalid request: {message}"), lines[0]


def test_sinks_per_entity_override_the_default_and_glue_own_arguments_are_ignored() -> None:
    args = parse_publish_arguments(
        [
            SCRIPT,
            "--warehouse",
            "s3://lake/replay",
            "--sink",
            "kinesis:arn:aws:kinesis:eu-west-1:123456789012:stream/events",
            "--entity_sinks",
            '{"orders": "sqs:https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo"}',
            "--dead_letters",
            "retry",
            "--dead_letter_ids",
            "e-1, e-2,e-1",
            "--JOB_RUN_ID",
            "jr_42_attempt_1",
            "--job-bookmark-option",
            "job-bookmark-disable",
        ],
        ["customers", "orders"],
    )
    kinesis = SinkSpec("kinesis", "arn:aws:kinesis:eu-west-1:123456789012:stream/events")
    sqs = SinkSpec("sqs", "https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo")
    assert args == PublishArguments(
        warehouse="s3://lake/replay",
        default_sink=kinesis,
        entity_sinks={"orders": sqs},
        entities=("customers", "orders"),
        dead_letters=DeadLetterAction.RETRY,
        dead_letter_ids=("e-1", "e-2"),
        fail_on_dead_letter=False,
        run_id="jr_42",
    )
    assert (args.sink_for("customers"), args.sink_for("orders")) == (kinesis, sqs)
    assert sqs.is_fifo and not kinesis.is_fifo


def test_without_a_sink_events_go_to_jsonl_files_under_the_warehouse(tmp_path: object) -> None:
    args = parse_publish_arguments([SCRIPT, "--warehouse", f"{tmp_path}/wh/"], ["customers"])
    assert args.default_sink == SinkSpec("file", f"{tmp_path}/wh/published")
    assert args.run_id.startswith("publish-")
