"""The public extension API, used as a user would: a third pipeline, outside ``lib/``.

The pipeline is the README's worked example ("Add your own source and entity"): every block
marked ``<!-- example: PATH -->`` is written into a fresh project under ``tmp_path`` and run from
there, so the README cannot rot. It is a products pipeline over a JSON file — key ``sku``,
version ``revision`` (a long), its own id rule, event names and BAU overlap — written with
``from glue_replay import ...`` only.

The README's own conformance test runs the kit on it (full, the same request twice, BAU after a
change at the source, targeted, since, through the job entry points); the tests here then
compare what each of those runs wrote with explicit expected rows, run the ingest job script
as a Glue job would (a subprocess), and check that bad requests are refused with exit 2.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType
from typing import Any

import hcl2
import pytest
from chispa import assert_df_equality
from hcl2.utils import SerializationOptions
from pyspark.sql import DataFrame, SparkSession

from glue_replay import Pipeline, run_normalize_job
from glue_replay.tables import Warehouse, read_outbox, read_quarantine, read_runs
from glue_replay.testing import REQUEST_IDS, ConformanceError, check_pipeline

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Add your own source and entity"
EXAMPLE = re.compile(r"<!-- example: (?P<path>\S+) -->\n```(?P<lang>\w+)\n(?P<code>.*?)\n```", re.S)
EXAMPLE_PATHS = {
    "my_pipelines/products.py",
    "glue_jobs/ingest_products.py",
    "glue_jobs/normalize_products.py",
    "tests/test_products.py",
    "terraform",
}
FULL, BAU = REQUEST_IDS["full"], REQUEST_IDS["bau"]
TARGETED, SINCE = REQUEST_IDS["targeted"], REQUEST_IDS["since"]
SKU_RULE = "a SKU: 3 capital letters, a dash, 4 digits (ABC-0042)"


def readme_examples() -> dict[str, tuple[str, str]]:
    """``{path: (language, code)}`` of the marked blocks of the README's extension section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n{SECTION}\n")
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else len(text)]
    return {m["path"]: (m["lang"], m["code"] + "\n") for m in EXAMPLE.finditer(section)}


@dataclass
class UserProject:
    """The README's example, written out as a user's own project and imported from there."""

    root: Path
    examples: dict[str, tuple[str, str]]
    products: ModuleType  # my_pipelines.products
    readme_tests: ModuleType  # tests/test_products.py

    @property
    def pipeline(self) -> Pipeline:
        pipeline: Pipeline = self.products.PIPELINE
        return pipeline

    def write_catalog(self, path: Path) -> Path:
        import json

        path.write_text(json.dumps(self.readme_tests.CATALOG), encoding="utf-8")
        return path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserProject]:
    root = tmp_path_factory.mktemp("user_project")
    examples = readme_examples()
    for path, (_, code) in examples.items():
        if path.endswith(".py"):
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(code, encoding="utf-8")
    sys.path.insert(0, str(root))
    try:
        products = importlib.import_module("my_pipelines.products")
        spec = importlib.util.spec_from_file_location(
            "readme_test_products", root / "tests" / "test_products.py"
        )
        assert spec is not None and spec.loader is not None
        readme_tests = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(readme_tests)
        yield UserProject(root, examples, products, readme_tests)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n.split(".")[0] == "my_pipelines"]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def conformed(
    project: UserProject, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Warehouse:
    """The README's conformance test, run once: its warehouse, with every mode's runs in it."""
    folder = tmp_path_factory.mktemp("products_conformance")
    project.readme_tests.test_the_products_pipeline_conforms(spark, folder)
    return Warehouse(str(folder / "warehouse"))


def read(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.format("delta").load(path)


def assert_rows(actual: DataFrame, expected: list[tuple[Any, ...]], spark: SparkSession) -> None:
    """``actual`` equals the frame of ``expected`` rows, in ``actual``'s schema, in any order."""
    assert_df_equality(
        actual,
        spark.createDataFrame(expected, actual.schema),
        ignore_row_order=True,
        ignore_nullable=True,
    )


# --- the README example is a complete pipeline, written with the public API only ---------------


def test_the_readme_example_has_every_file_and_uses_only_the_public_api(
    project: UserProject,
) -> None:
    assert set(project.examples) == EXAMPLE_PATHS
    for path in sorted(EXAMPLE_PATHS - {"terraform"}):
        tree = ast.parse(project.examples[path][1])
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("glue_replay")
        }
        imported |= {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name.startswith("glue_replay")
        }
        assert imported <= {"glue_replay", "glue_replay.testing"}, path
    entity = project.pipeline.entity
    assert (entity.name, entity.key, entity.version) == ("products", "sku", "revision")
    assert (entity.event_types.created, entity.event_types.updated) == (
        "product.listed",
        "product.changed",
    )
    assert project.pipeline.settings == ("catalog_file",)


def test_the_readme_registration_and_terraform_entry_match_the_pipeline(
    project: UserProject,
) -> None:
    section = (REPO / "README.md").read_text(encoding="utf-8").split(f"\n{SECTION}\n")[1]
    declared = re.search(r'"glue_replay\.pipelines": \["(\w+) = ([\w.]+:\w+)"\]', section)
    assert declared is not None, "the README's setup.py entry point"
    point = EntryPoint(declared[1], declared[2], "glue_replay.pipelines")
    assert point.load() is project.pipeline
    assert point.name == project.pipeline.name

    options = SerializationOptions(with_comments=False, strip_string_quotes=True)
    tfvars = hcl2.loads(project.examples["terraform"][1], serialization_options=options)
    entry = tfvars["pipelines"]["products"]
    rule = project.pipeline.entity.ids
    assert entry["id_rule"] == {"pattern": rule.pattern, "help": rule.help}
    assert set(entry["settings"]) == set(project.pipeline.settings)
    for script in (entry["ingest_script"], entry["normalize_script"]):
        assert (project.root / script).is_file()


# --- every mode, end to end, through the job entry points -------------------------------------


def test_the_readme_pipeline_passes_the_conformance_kit_in_every_mode(
    spark: SparkSession, conformed: Warehouse
) -> None:
    runs = read_runs(spark, conformed).select(
        "request_id",
        "stage",
        "replay_mode",
        "status",
        "rows_read",
        "rows_written",
        "rows_outboxed",
        "rows_quarantined",
        "missing_ids",
        "note",
    )
    done = "request already succeeded in run conformance-full-{}-1; nothing written"
    assert_rows(
        runs,
        [
            (FULL, "ingest", "full", "succeeded", 5, 5, 0, 0, [], None),
            (FULL, "normalize", "full", "succeeded", 5, 4, 4, 1, [], None),
            # the same request again: recorded, nothing written
            (FULL, "ingest", "full", "succeeded", 0, 0, 0, 0, [], done.format("ingest")),
            (FULL, "normalize", "full", "succeeded", 0, 0, 0, 0, [], done.format("normalize")),
            # BAU reads the two repriced products; normalize re-reads the day's raw rows
            (BAU, "ingest", "bau", "succeeded", 2, 2, 0, 0, [], None),
            (BAU, "normalize", "bau", "succeeded", 7, 2, 2, 1, [], None),
            (TARGETED, "ingest", "targeted", "succeeded", 3, 3, 0, 0, ["ABC-9999"], None),
            (TARGETED, "normalize", "targeted", "succeeded", 7, 0, 2, 2, ["ABC-9999"], None),
            (SINCE, "ingest", "since", "succeeded", 4, 4, 0, 0, [], None),
            (SINCE, "normalize", "since", "succeeded", 12, 0, 3, 3, [], None),
        ],
        spark,
    )

    listed, changed = "product.listed", "product.changed"
    events = read_outbox(spark, conformed).select(
        "request_id", "aggregate_type", "aggregate_id", "event_type", "replay_mode", "payload"
    )
    kettle_v4 = '{"sku":"ABC-0001","name":"Kettle","price":9.99,"revision":4}'
    teapot = '{"sku":"ABC-0002","name":"Teapot","price":18.00,"revision":1}'
    mug_v8 = '{"sku":"ABC-0003","name":"Mug","price":9.99,"revision":8}'
    assert_rows(
        events,
        [
            (FULL, "products", "ABC-0001", listed, "full",
             '{"sku":"ABC-0001","name":"Kettle","price":24.90,"revision":3}'),
            (FULL, "products", "ABC-0002", listed, "full", teapot),
            (FULL, "products", "ABC-0003", listed, "full",
             '{"sku":"ABC-0003","name":"Mug","price":6.50,"revision":7}'),
            (FULL, "products", "ABC-0005", listed, "full",
             '{"sku":"ABC-0005","name":"Whisk","price":3.20,"revision":1}'),
            (BAU, "products", "ABC-0001", changed, "bau", kettle_v4),
            (BAU, "products", "ABC-0003", changed, "bau", mug_v8),
            (TARGETED, "products", "ABC-0001", changed, "targeted", kettle_v4),
            (TARGETED, "products", "ABC-0002", changed, "targeted", teapot),
            (SINCE, "products", "ABC-0001", changed, "since", kettle_v4),
            (SINCE, "products", "ABC-0002", changed, "since", teapot),
            (SINCE, "products", "ABC-0003", changed, "since", mug_v8),
        ],
        spark,
    )  # fmt: skip

    normalized = read(spark, conformed.normalized("products")).select(
        "sku", "name", "price", "revision", "request_id", "replay_mode"
    )
    assert_rows(
        normalized,
        [
            ("ABC-0001", "Kettle", Decimal("9.99"), 4, BAU, "bau"),
            ("ABC-0002", "Teapot", Decimal("18.00"), 1, FULL, "full"),
            ("ABC-0003", "Mug", Decimal("9.99"), 8, BAU, "bau"),
            ("ABC-0005", "Whisk", Decimal("3.20"), 1, FULL, "full"),
        ],
        spark,
    )

    # Each bad raw row once: BAU re-read the backfill's row and did not quarantine it again.
    quarantine = read_quarantine(spark, conformed, "products").select(
        "id", "reason", "stage", "request_id"
    )
    assert_rows(
        quarantine,
        [
            ("ABC-0004", "price is not a number", "normalize", FULL),
            ("ABC-0004", "price is not a number", "normalize", TARGETED),
            ("ABC-0004", "price is not a number", "normalize", SINCE),
        ],
        spark,
    )


# --- the job scripts, as Glue runs them -------------------------------------------------------


def _run_script(
    project: UserProject, script: str, *arguments: str
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(project.root), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run(
        [sys.executable, f"glue_jobs/{script}.py", *arguments],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_ingest_script_runs_as_a_glue_job_and_normalize_follows(
    project: UserProject, spark: SparkSession, tmp_path: Path
) -> None:
    catalog = project.write_catalog(tmp_path / "products.json")
    tables = Warehouse(str(tmp_path / "warehouse"))
    glue = [
        "--JOB_NAME", "products-ingest", "--JOB_RUN_ID", "jr_42_attempt_1",
        "--TempDir", "s3://aws-glue-temporary/admin", "--enable-metrics",
    ]  # fmt: skip
    request = ["--replay_mode", "targeted", "--ids", "ABC-0005, ABC-0002,ABC-0042"]
    ingest = _run_script(
        project,
        "ingest_products",
        *glue,
        *request,
        "--warehouse",
        tables.root,
        "--catalog_file",
        str(catalog),
    )
    assert ingest.returncode == 0, ingest.stderr[-3000:]
    assert "[ingest products] succeeded: read 2, written 2" in ingest.stdout

    # Normalize in this session (a second JVM would cost seconds, not add anything); the
    # request id is the one Glue's run id gave the ingest run.
    normalize_argv = ["glue_jobs/normalize_products.py", *request, "--warehouse", tables.root]
    assert run_normalize_job([*normalize_argv, "--request_id", "jr_42"], project.pipeline,
                             spark=spark) == 0  # fmt: skip

    assert_rows(
        read_runs(spark, tables).select(
            "request_id", "job_name", "stage", "replay_mode", "status", "rows_read",
            "rows_outboxed", "missing_ids",
        ),
        [
            ("jr_42", "products-ingest", "ingest", "targeted", "succeeded", 2, 0, ["ABC-0042"]),
            ("jr_42", "local", "normalize", "targeted", "succeeded", 2, 2, ["ABC-0042"]),
        ],
        spark,
    )  # fmt: skip
    assert_rows(
        read_outbox(spark, tables).select("aggregate_id", "event_type", "replay_mode"),
        [("ABC-0002", "product.listed", "targeted"), ("ABC-0005", "product.listed", "targeted")],
        spark,
    )
    assert_rows(
        read(spark, tables.normalized("products")).select("sku", "name", "price", "revision"),
        [("ABC-0002", "Teapot", Decimal("18.00"), 1), ("ABC-0005", "Whisk", Decimal("3.20"), 1)],
        spark,
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(
            ["--replay_mode", "targeted", "--ids", "ABC-0001,abc-1", "--catalog_file", "c.json"],
            f"--ids: 'abc-1' is not a valid id; accepted: {SKU_RULE}",
            id="an id failing the entity's own rule",
        ),
        pytest.param(
            ["--replay-mode", "full", "--catalog_file", "c.json"],
            "--replay_mode: --replay-mode is not an argument of this job; "
            "did you mean --replay_mode?; accepted: --replay_mode, ",
            id="a near miss of --replay_mode",
        ),
        pytest.param(
            ["--replay_mode", "full"],
            "--catalog_file: is required by this pipeline's source; accepted: --catalog_file ...",
            id="the pipeline's own setting missing",
        ),
    ],
)
def test_a_bad_request_is_refused_with_exit_2_naming_the_argument(
    project: UserProject, tmp_path: Path, arguments: list[str], message: str
) -> None:
    warehouse = tmp_path / "warehouse"
    refused = _run_script(project, "ingest_products", *arguments, "--warehouse", str(warehouse))
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert refused.stderr.startswith(f"ingest_products: invalid request: {message}")
    assert refused.stderr.count("\n") == 1
    assert not warehouse.exists()


def test_the_normalize_script_calls_the_normalize_entry_point_with_the_pipeline(
    project: UserProject,
) -> None:
    import runpy

    script = runpy.run_path(str(project.root / "glue_jobs" / "normalize_products.py"))
    assert script["PIPELINE"] is project.pipeline
    assert script["run_normalize_job"] is run_normalize_job


def test_the_kit_names_every_property_a_pipeline_breaks(
    project: UserProject, spark: SparkSession, tmp_path: Path
) -> None:
    """Told that the Teapot (a good record) must be quarantined, the kit stops at the backfill
    and lists each property that does not hold."""
    catalog = project.write_catalog(tmp_path / "products.json")
    with pytest.raises(ConformanceError) as failure:
        check_pipeline(
            spark,
            project.pipeline,
            warehouse=str(tmp_path / "warehouse"),
            job_args=["--catalog_file", str(catalog)],
            known_ids=["ABC-0001", "ABC-0002", "ABC-0003", "ABC-0004", "ABC-0005"],
            bad_ids=["ABC-0002"],
            missing_id="ABC-9999",
            since=date(2025, 7, 1),
        )
    emitted = [(f"ABC-000{n}", "product.listed", "full") for n in (1, 2, 3, 5)]
    claimed = [(f"ABC-000{n}", "product.listed", "full") for n in (1, 3, 4, 5)]
    assert failure.value.problems == (
        "normalized/products keys: got ['ABC-0001', 'ABC-0002', 'ABC-0003', 'ABC-0005'], "
        "expected ['ABC-0001', 'ABC-0003', 'ABC-0004', 'ABC-0005']",
        "outbox events (aggregate_id, event_type, replay_mode) of request conformance-full: "
        f"got {emitted}, expected {claimed}",
        "quarantine/products ids: got ['ABC-0004'], expected ['ABC-0002']",
    )
    assert str(failure.value).startswith("pipeline 'products' fails the 'full' check:\n  - ")
