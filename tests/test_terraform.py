"""terraform/: what it deploys is what the code runs, checked by Terraform itself, offline.

Three layers:

- **static**: python-hcl2 reads the .tf files (variables typed and described, module calls,
  the example tfvars); the checkov skip comments are read as text; checkov scans terraform/.
- **Terraform**: ``terraform fmt``, ``terraform validate``, ``terraform console`` (the
  variables as Terraform reads them) and ``terraform test`` on a copy of terraform/, with a
  generated test file that *plans* the root module with the AWS provider offline (fake
  credentials; the account id and a few ARNs overridden): no AWS call, Terraform's own
  evaluation of every expression and the provider's own checks of every name. The plans
  (``terraform test -verbose -json``) are what the tests below read: jobs and their arguments,
  workflows and triggers, every role's policy document, the secrets, the Lambda's environment
  and ``cli_config``; for the bundled pipelines (the default) and for three pipelines that use
  every option of a ``pipelines`` entry (and once more with a sink of every kind for the
  publisher). The same file checks that the variable validations refuse what they should
  (``expect_failures``).
- **the code**: the bundled pipelines are the ones ``glue_jobs/`` runs, with the Python
  entities' id rules and settings; the wheel and the Lambda zip hold what they should.

The tests that run Terraform skip, saying so, only where there is no Terraform binary
(``$TERRAFORM`` or ``terraform`` on the PATH); providers come
as ``$TF_CLI_CONFIG_FILE`` says if that file exists, else from the plugin mirror /opt/tf-plugins
if present, else from the registry.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2.utils import SerializationOptions

from checkout_lock import checkout_lock
from glue_replay.arguments import job_fields
from glue_replay.request import REPLAY_FIELDS

ROOT = Path(__file__).resolve().parents[1]
TERRAFORM = ROOT / "terraform"
PLUGIN_MIRROR = Path("/opt/tf-plugins")

#: AWS Glue's own job parameters: the only keys a job may have beyond the ones its script reads.
GLUE_PARAMETERS = frozenset(
    {
        "--job-language",
        "--enable-metrics",
        "--enable-continuous-cloudwatch-log",
        "--enable-continuous-log-filter",
        "--continuous-log-logGroup",
        "--job-bookmark-option",
        "--TempDir",
        "--datalake-formats",
        "--conf",
        "--additional-python-modules",
        "--python-modules-installer-option",
        "--extra-jars",
        "--extra-py-files",
        "--enable-job-insights",
        "--enable-observability-metrics",
        "--enable-spark-ui",
        "--spark-event-logs-path",
        "--enable-glue-datacatalog",
        "--enable-auto-scaling",
    }
)
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(?P<check>[A-Z0-9_]+)(?::(?P<reason>.*))?")
HCL = SerializationOptions(with_comments=False, explicit_blocks=False)

# --- the mocked account the plans run in ---------------------------------------------------------

ACCOUNT = "123456789012"
REGION = "eu-west-1"
PREFIX = "glue-replay"  # var.name_prefix's default
BUCKETS = {
    purpose: f"{PREFIX}-{purpose}-{ACCOUNT}-{REGION}"
    for purpose in ("warehouse", "artifacts", "uploads")
}
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-1111-2222-3333-444444444444"
WAREHOUSE = f"s3://{BUCKETS['warehouse']}/warehouse"
UPLOADS = f"s3://{BUCKETS['uploads']}/ids"

# --- the publisher's sinks -----------------------------------------------------------------------

PUBLISH_SCRIPT = "glue_jobs/publish_outbox.py"
PUBLISH_JOB = f"{PREFIX}-publish"
STREAM = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/events"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-events.fifo"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:customer-events"
BUS = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/orders"
SINK_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/55555555-6666-7777-8888-999999999999"
#: publish_sink of every plan run (a test-file-wide variable: the variable has no default).
DEFAULT_SINK = f"kinesis:{STREAM}"
#: longest_names' publish_sink: Kafka, which needs no AWS grant.
KAFKA_SINK = "kafka:broker-1.example.com:9092,broker-2.example.com:9092/events"
#: three_pipelines' publish_entity_sinks: orders to an SQS queue, the others to the default.
THREE_PIPELINES_SINKS = {"orders": f"sqs:{QUEUE}"}
#: The every_sink_kind run (THREE_PIPELINES): every pipeline overrides the (Kinesis) default,
#: so no pipeline uses it; an SNS topic, an EventBridge bus and JSONL files on S3.
FILE_SINK = "file:s3://events-archive/glue-replay/events/"
EVERY_SINK_KIND = {
    "publish_entity_sinks": {
        "customers": f"sns:{TOPIC}",
        "orders": f"eventbridge:{BUS}",
        "products": FILE_SINK,
    },
    "publish_sink_kms_key_arns": [SINK_KEY],
    "publish_fail_on_dead_letter": True,
    "enable_publish_schedule": False,
    "maintenance_vacuum_retention_days": 14,
    "enable_maintenance_schedule": False,
}

#: Three pipelines that use every option of an entry: a REST source with a token, a JDBC
#: source with its own settings and a token, and a minimal entry that leaves every optional
#: attribute to its default (no source URL, no secret, no settings).
THREE_PIPELINES: dict[str, dict[str, Any]] = {
    "customers": {
        "description": "CRM customers",
        "ingest_script": "glue_jobs/ingest_customers.py",
        "normalize_script": "glue_jobs/normalize_customers.py",
        "id_rule": {"pattern": "[A-Za-z0-9]{1,12}", "help": "1-12 letters or digits"},
        "source_url": "https://crm.example.com/api",
        "reads_source_token": True,
    },
    "orders": {
        "description": "shop orders from PostgreSQL",
        "ingest_script": "glue_jobs/ingest_orders.py",
        "normalize_script": "glue_jobs/normalize_orders.py",
        "id_rule": {"pattern": "ORD-[0-9]{1,12}", "help": "ORD- and 1-12 digits"},
        "reads_source_token": True,
        "settings": {
            "jdbc_url": "jdbc:postgresql://db.example.com:5432/shop",
            "jdbc_table": "orders",
        },
    },
    "products": {
        "description": "the product catalogue",
        "ingest_script": "glue_jobs/ingest_products.py",
        "normalize_script": "glue_jobs/normalize_products.py",
        "id_rule": {"pattern": "[0-9]{1,9}", "help": "1-9 digits"},
    },
}
ENTRY_DEFAULTS = {"source_url": None, "reads_source_token": False, "settings": {}}
#: The longest names the variables accept: every resource name must still be valid.
LONGEST_PREFIX = "glue-replay-abcdefgh"
LONGEST_ENTITY = "a" * 32

#: Variable values each variable validation must refuse: (run name, variable, values).
REFUSED = [
    ("refuses_an_entity_name_not_lower_snake_case", "pipelines", {"Orders": {}}),
    (
        "refuses_a_script_outside_glue_jobs",
        "pipelines",
        {"orders": {"ingest_script": "scripts/ingest_orders.py"}},
    ),
    (
        "refuses_a_script_used_twice",
        "pipelines",
        {"orders": {"normalize_script": "glue_jobs/ingest_orders.py"}},
    ),
    (
        "refuses_a_setting_named_like_a_replay_argument",
        "pipelines",
        {"orders": {"settings": {"replay_mode": "full"}}},
    ),
    (
        "refuses_a_setting_name_with_dashes",
        "pipelines",
        {"orders": {"settings": {"--jdbc_url": "x"}}},
    ),
    (
        "refuses_credentials_in_source_url",
        "pipelines",
        {"orders": {"source_url": "https://user:pw@db.example.com"}},
    ),
    ("refuses_an_empty_id_rule", "pipelines", {"orders": {"id_rule": {"pattern": "", "help": ""}}}),
    ("refuses_no_pipeline", "pipelines", None),
    ("refuses_a_worker_type_glue_5_1_does_not_run", "worker_type", "G.12X"),
    ("refuses_a_sink_without_its_kind", "publish_sink", STREAM),
    ("refuses_a_kinesis_sink_by_name_not_arn", "publish_sink", "kinesis:events"),
    ("refuses_a_kafka_sink_without_a_topic", "publish_sink", "kafka:broker-1:9092"),
    ("refuses_a_file_sink_outside_s3", "publish_sink", "file:/var/lib/published"),
    (
        "refuses_a_file_sink_inside_the_warehouse_tables",
        "publish_sink",
        f"file:s3://{BUCKETS['warehouse']}/warehouse/outbox/copy",
    ),
    ("refuses_a_file_sink_above_the_warehouse", "publish_sink", "file:s3://any-bucket/warehouse"),
    ("refuses_an_entity_sink_of_no_pipeline", "publish_entity_sinks", {"invoices": DEFAULT_SINK}),
    (
        "refuses_an_entity_sink_by_queue_url",
        "publish_entity_sinks",
        {"orders": f"sqs:https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/orders"},
    ),
    ("refuses_a_publish_schedule_that_is_no_cron", "publish_schedule", "rate(15 minutes)"),
    ("refuses_a_maintenance_schedule_that_is_no_cron", "maintenance_schedule", "rate(1 day)"),
    ("refuses_a_vacuum_retention_under_a_week", "maintenance_vacuum_retention_days", 6),
    ("refuses_a_vacuum_retention_in_part_days", "maintenance_vacuum_retention_days", 7.5),
    (
        "refuses_a_setting_named_like_a_maintenance_argument",
        "pipelines",
        {"orders": {"settings": {"maintenance": "true"}}},
    ),
]


# --- reading HCL ---------------------------------------------------------------------------------


def unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


@dataclass(frozen=True)
class Module:
    """The blocks of one Terraform module (every .tf file of one directory), as hcl2 parses them."""

    directory: Path
    blocks: dict[str, list[Any]]

    @classmethod
    def load(cls, directory: Path) -> Module:
        blocks: dict[str, list[Any]] = {}
        for path in sorted(directory.glob("*.tf")):
            document = hcl2.loads(path.read_text(encoding="utf-8"), serialization_options=HCL)
            for kind, entries in document.items():
                blocks.setdefault(kind, []).extend(entries)
        return cls(directory, blocks)

    def labelled(self, kind: str) -> dict[str, dict[str, Any]]:
        """``variable "x" {...}`` blocks (and outputs, module calls) by label."""
        return {
            unquote(label): body
            for entry in self.blocks.get(kind, [])
            for label, body in entry.items()
        }

    @property
    def variables(self) -> dict[str, dict[str, Any]]:
        return self.labelled("variable")

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        return self.labelled("output")

    @property
    def module_calls(self) -> dict[str, dict[str, Any]]:
        return self.labelled("module")


def tf_directories() -> list[Path]:
    return [TERRAFORM, *sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())]


@cache
def module(directory: Path) -> Module:
    return Module.load(directory)


def root() -> Module:
    return module(TERRAFORM)


def default_of(variable: str) -> str:
    return unquote(str(root().variables[variable]["default"]))


def hcl(value: Any) -> str:
    """A Python value as an HCL literal (strings JSON-escaped, template sequences escaped)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value).replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, dict):
        return "{\n" + "".join(f"{json.dumps(k)} = {hcl(v)}\n" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(hcl(item) for item in value) + "]"
    raise TypeError(f"no HCL literal for {value!r}")


# --- running Terraform ---------------------------------------------------------------------------


def terraform_binary() -> str:
    found = os.environ.get("TERRAFORM") or shutil.which("terraform")
    if not found:
        pytest.skip("no terraform binary: put it on the PATH or set TERRAFORM to its executable")
    return found


def run_terraform(
    workdir: Path, command: str, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    configured = os.environ.get("TF_CLI_CONFIG_FILE")
    if not (configured and Path(configured).is_file()) and PLUGIN_MIRROR.is_dir():
        config = workdir.parent / "terraform-cli.tfrc"
        mirror = f'filesystem_mirror {{\n    path = "{PLUGIN_MIRROR}"\n  }}'
        config.write_text(f"provider_installation {{\n  {mirror}\n}}\n", encoding="utf-8")
        env["TF_CLI_CONFIG_FILE"] = str(config)
    result = subprocess.run(
        [terraform_binary(), command, "-no-color", *args],
        cwd=workdir,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"terraform {command} {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stderr}\n{result.stdout[-5000:]}"
        )
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised copy of terraform/ laid out like the repository: beside glue_jobs/ (the
    real scripts and those of THREE_PIPELINES) and a dist/ of placeholder artifacts."""
    repo = tmp_path_factory.mktemp("repo")
    shutil.copytree(
        TERRAFORM,
        repo / "terraform",
        ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "*.tfvars", "tests"),
    )
    shutil.copytree(
        ROOT / "glue_jobs", repo / "glue_jobs", ignore=shutil.ignore_patterns("__pycache__")
    )
    scripts = [
        entry[key]
        for entry in THREE_PIPELINES.values()
        for key in ("ingest_script", "normalize_script")
    ]
    scripts += [f"glue_jobs/{stage}_{LONGEST_ENTITY}.py" for stage in ("ingest", "normalize")]
    scripts.append(PUBLISH_SCRIPT)  # the real one, copied above, when it is there
    for script in scripts:
        if not (repo / script).exists():
            (repo / script).write_text("# a placeholder: only its hash is read\n", encoding="utf-8")
    for artifact in (default_of("wheel_file"), default_of("lambda_zip_file")):
        (repo / artifact).parent.mkdir(parents=True, exist_ok=True)
        (repo / artifact).write_bytes(b"placeholder")
    directory = repo / "terraform"
    run_terraform(directory, "init", "-backend=false", "-input=false")
    return directory


def terraform_value(workdir: Path, expression: str, *args: str) -> Any:
    """``expression`` evaluated by ``terraform console`` (variables validated, no AWS call)."""
    result = run_terraform(workdir, "console", *args, stdin=f"jsonencode({expression})\n")
    return json.loads(json.loads(result.stdout.strip()))


# --- planning offline -----------------------------------------------------------------------------


def entry(overrides: dict[str, Any]) -> dict[str, Any]:
    """A valid pipeline entry (THREE_PIPELINES' orders) with ``overrides`` applied."""
    return THREE_PIPELINES["orders"] | overrides


def resource_override(target: str, values: dict[str, str]) -> str:
    return (
        "override_resource {\n"
        f"  target          = {target}\n"
        "  override_during = plan\n"
        f"  values          = {hcl(values)}\n"
        "}\n"
    )


def secret_overrides(pipelines: dict[str, dict[str, Any]]) -> str:
    return "".join(
        resource_override(
            f'module.secrets.aws_secretsmanager_secret.source_token["{entity}"]',
            {"arn": secret_arn(entity)},
        )
        for entity, pipeline in pipelines.items()
        if pipeline.get("reads_source_token")
    )


def plan_test_file(bundled: dict[str, dict[str, Any]]) -> str:
    """The ``terraform test`` file: an offline AWS account, then one run per deployment
    (``bundled``: var.pipelines' default)."""
    # The real AWS provider, offline: fake credentials and no account look-up. Nothing is
    # created (the runs only plan); the one data source that would call AWS is overridden.
    account = "".join(
        f"override_data {{\n  target = module.{name}.data.aws_caller_identity.current\n"
        f'  values = {{ account_id = "{ACCOUNT}" }}\n}}\n'
        for name in ("kms", "storage", "iam", "monitoring")
    )
    offline = f"""
provider "aws" {{
  region                      = "{REGION}"
  access_key                  = "not-a-key"
  secret_key                  = "not-a-secret"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}}

variables {{
  region       = "{REGION}"
  publish_sink = {hcl(DEFAULT_SINK)}
}}

{account}
{resource_override("module.kms.aws_kms_key.this", {"arn": KMS_KEY})}
"""
    buckets = "".join(
        resource_override(
            f'module.storage.aws_s3_bucket.data["{purpose}"]',
            {"id": name, "arn": f"arn:aws:s3:::{name}"},
        )
        for purpose, name in BUCKETS.items()
    )
    runs = [
        # the bundled pipelines: var.pipelines' default, every other variable's default too
        'run "bundled" {\n  command = plan\n' + secret_overrides(bundled) + "}\n",
        'run "three_pipelines" {\n  command = plan\n'
        f"  variables {{\n    pipelines = {hcl(THREE_PIPELINES)}\n"
        f"    publish_entity_sinks = {hcl(THREE_PIPELINES_SINKS)}\n  }}\n"
        + secret_overrides(THREE_PIPELINES)
        + "}\n",
        'run "every_sink_kind" {\n  command = plan\n'
        f"  variables {{\n    pipelines = {hcl(THREE_PIPELINES)}\n"
        + "".join(f"    {name} = {hcl(value)}\n" for name, value in EVERY_SINK_KIND.items())
        + "  }\n"
        + secret_overrides(THREE_PIPELINES)
        + "}\n",
        'run "longest_names" {\n  command = plan\n  variables {\n'
        f"    name_prefix = {hcl(LONGEST_PREFIX)}\n"
        f"    publish_sink = {hcl(KAFKA_SINK)}\n"
        f"    pipelines = {hcl({LONGEST_ENTITY: longest_entry()})}\n  }}\n}}\n",
    ]
    for name, variable, value in REFUSED:
        if variable == "pipelines":
            value = {} if value is None else {k: entry(v) for k, v in value.items()}
        runs.append(
            f'run "{name}" {{\n  command = plan\n'
            f"  variables {{\n    {variable} = {hcl(value)}\n  }}\n"
            f"  expect_failures = [var.{variable}]\n}}\n"
        )
    return offline + buckets + "\n".join(runs)


def longest_entry() -> dict[str, Any]:
    return {
        **THREE_PIPELINES["orders"],
        "ingest_script": f"glue_jobs/ingest_{LONGEST_ENTITY}.py",
        "normalize_script": f"glue_jobs/normalize_{LONGEST_ENTITY}.py",
    }


class _Unknown:
    def __repr__(self) -> str:
        return "<known after apply>"


UNKNOWN = _Unknown()


def with_unknowns(after: Any, unknown: Any) -> Any:
    """A planned value with the leaves Terraform knows only at apply time set to UNKNOWN."""
    if unknown is True:
        return UNKNOWN
    if isinstance(after, dict):
        marks = unknown if isinstance(unknown, dict) else {}
        return {
            key: with_unknowns(after.get(key), marks.get(key))
            for key in after.keys() | marks.keys()
        }
    if isinstance(after, list):
        marks = unknown if isinstance(unknown, list) else []
        return [
            with_unknowns(item, marks[i] if i < len(marks) else None)
            for i, item in enumerate(after)
        ]
    return after


@dataclass(frozen=True)
class Plan:
    """One run's plan: every resource and data source instance, and the root outputs."""

    instances: dict[
        tuple[str, str], dict[Any, Any]
    ]  # (module.x.[data.]type, name) -> index -> values
    outputs: dict[str, Any]

    @classmethod
    def parse(cls, document: dict[str, Any]) -> Plan:
        instances: dict[tuple[str, str], dict[Any, Any]] = {}
        for change in document.get("resource_changes", []):
            kind = change["type"] if change["mode"] == "managed" else f"data.{change['type']}"
            where = f"{change.get('module_address', '')}.{kind}".lstrip(".")
            values = with_unknowns(
                change["change"].get("after"), change["change"].get("after_unknown")
            )
            instances.setdefault((where, change["name"]), {})[change.get("index")] = values
        outputs = {
            name: with_unknowns(output.get("after"), output.get("after_unknown"))
            for name, output in document.get("output_changes", {}).items()
        }
        return cls(instances, outputs)

    def __call__(self, where: str, name: str) -> dict[Any, Any]:
        """Instances of ``<where>.<name>`` by index, ``plan("module.glue.aws_glue_job", "this")``"""
        return self.instances.get((where, name), {})


@dataclass(frozen=True)
class PlanRuns:
    plans: dict[str, Plan]
    statuses: dict[str, str]
    diagnostics: list[str]


@pytest.fixture(scope="module")
def plan_runs(workdir: Path, bundled_pipelines: dict[str, dict[str, Any]]) -> PlanRuns:
    tests = workdir / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "plan.tftest.hcl").write_text(plan_test_file(bundled_pipelines), encoding="utf-8")
    result = run_terraform(workdir, "test", "-verbose", "-json", check=False)
    plans, statuses, diagnostics = {}, {}, []
    for line in result.stdout.splitlines():
        message = json.loads(line)
        run = message.get("@testrun")
        if message["type"] == "test_plan" and run:
            plans[run] = Plan.parse(message["test_plan"])
        elif message["type"] == "test_run" and message["test_run"].get("progress") == "complete":
            statuses[run] = message["test_run"]["status"]
        elif message["type"] == "diagnostic":
            detail = message["diagnostic"].get("detail") or ""
            diagnostics.append(f"[{run or '-'}] {message['@message']} {detail}".strip())
    if not statuses:
        pytest.fail(f"terraform test ran nothing ({result.returncode}):\n{result.stderr}")
    return PlanRuns(plans, statuses, diagnostics)


@dataclass(frozen=True)
class Deployment:
    """A planned deployment and the pipelines it was planned with (entry defaults applied)."""

    plan: Plan
    pipelines: dict[str, dict[str, Any]]
    #: the bundled pipelines, whose scripts and Python pipelines are in the repository
    bundled: bool
    #: publish_entity_sinks (publish_sink is DEFAULT_SINK)
    entity_sinks: dict[str, str]

    def jobs(self) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
        """(job key, entity, stage, pipeline entry) of every job the pipelines should have."""
        for entity, pipeline in self.pipelines.items():
            for stage in ("ingest", "normalize"):
                yield f"{entity}-{stage}", entity, stage, pipeline


@pytest.fixture(scope="module")
def bundled_pipelines(workdir: Path) -> dict[str, dict[str, Any]]:
    """var.pipelines' default, as Terraform reads it (optional attributes filled in)."""
    value = terraform_value(
        workdir, "var.pipelines", f"-var=region={REGION}", f"-var=publish_sink={DEFAULT_SINK}"
    )
    assert isinstance(value, dict)
    return value


@pytest.fixture(scope="module", params=["bundled", "three_pipelines"])
def deployment(
    request: pytest.FixtureRequest,
    plan_runs: PlanRuns,
    bundled_pipelines: dict[str, dict[str, Any]],
) -> Deployment:
    run = request.param
    if run not in plan_runs.plans:
        pytest.fail(f"terraform test did not plan {run}:\n" + "\n".join(plan_runs.diagnostics))
    if run == "bundled":
        return Deployment(plan_runs.plans[run], bundled_pipelines, bundled=True, entity_sinks={})
    pipelines = {entity: ENTRY_DEFAULTS | entry for entity, entry in THREE_PIPELINES.items()}
    return Deployment(
        plan_runs.plans[run], pipelines, bundled=False, entity_sinks=THREE_PIPELINES_SINKS
    )


def secret_arn(entity: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{PREFIX}-{entity}-source-token-AbCdEf"


def glue_arn(kind: str, name: str) -> str:
    return f"arn:aws:glue:{REGION}:{ACCOUNT}:{kind}/{name}"


def statements(policy: str) -> dict[str, dict[str, Any]]:
    """A policy document's JSON by statement sid, Action and Resource always lists."""
    document = json.loads(policy)
    by_sid = {
        statement["Sid"]: statement
        | {
            key: [statement[key]] if isinstance(statement[key], str) else statement[key]
            for key in ("Action", "Resource")
            if key in statement
        }
        for statement in document["Statement"]
    }
    assert len(by_sid) == len(document["Statement"]), "every statement needs its own Sid"
    return by_sid


def table_objects(*tables: str) -> set[str]:
    """What a role may touch of these tables: their objects and the key (S3A's HEADs)."""
    base = f"arn:aws:s3:::{BUCKETS['warehouse']}/warehouse"
    return {f"{base}/{table}{suffix}" for table in tables for suffix in ("", "/*")}


# --- checkov -------------------------------------------------------------------------------------


def checkov_executable() -> Path:
    candidates = [os.environ.get("CHECKOV"), ".venv/bin/checkov", ".cache/checkov-venv/bin/checkov"]
    for candidate in candidates:
        if candidate and (ROOT / candidate).is_file():
            return ROOT / candidate
    pytest.fail("checkov not found: set CHECKOV to its executable or install it into .venv")


def test_checkov_reports_no_failed_check() -> None:
    command = [
        str(checkov_executable()),
        "--directory",
        str(TERRAFORM),
        "--framework",
        "terraform",
        "--quiet",
        "--compact",
        "--output",
        "json",
        "--download-external-modules",
        "false",
        "--skip-download",  # no Prisma Cloud look-ups: the scan is offline
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}):\n{result.stderr}"
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    (report,) = [r for r in reports if r["check_type"] == "terraform"]
    summary = report["summary"]
    print(f"checkov {summary}")
    failures = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} "
        f"({c['file_path']}:{c['file_line_range'][0]})"
        for c in report["results"].get("failed_checks", [])
    ]
    assert summary["parsing_errors"] == 0, f"checkov could not parse terraform/: {summary}"
    assert summary["resource_count"] > 0, "checkov scanned no resource"
    assert not failures, "checkov failed checks:\n" + "\n".join(failures)


def test_every_checkov_skip_says_why() -> None:
    unjustified = []
    for path in sorted(TERRAFORM.rglob("*.tf")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = SKIP_COMMENT.search(line)
            if match and len((match["reason"] or "").strip()) < 30:
                unjustified.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not unjustified, "a checkov skip needs a reason beside it:\n" + "\n".join(unjustified)


# --- terraform fmt, validate, test ---------------------------------------------------------------


def test_terraform_validate(workdir: Path) -> None:
    result = run_terraform(workdir, "validate", "-json", check=False)
    report = json.loads(result.stdout)
    problems = [
        f"{d['severity']}: {d['summary']} {d.get('detail', '')}" for d in report["diagnostics"]
    ]
    assert report["valid"], "terraform validate:\n" + "\n".join(problems)
    assert not problems, "terraform validate warns:\n" + "\n".join(problems)


def test_terraform_files_are_formatted(workdir: Path) -> None:
    result = run_terraform(
        workdir, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM), check=False
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}"


def test_every_plan_and_every_validation_refusal_passes(plan_runs: PlanRuns) -> None:
    expected = {
        "bundled",
        "three_pipelines",
        "every_sink_kind",
        "longest_names",
        *(name for name, _, _ in REFUSED),
    }
    failed = {run: status for run, status in plan_runs.statuses.items() if status != "pass"}
    assert plan_runs.statuses.keys() == expected
    assert not failed, f"terraform test runs failed: {failed}\n" + "\n".join(plan_runs.diagnostics)


# --- the bundled pipelines are the code's --------------------------------------------------------


def pipeline_of_script(script: Path) -> tuple[str, Any]:
    """(the glue_replay runner a job script calls, the Pipeline object it passes it)."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    imported = {
        alias.asname or alias.name: (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("run_ingest_job", "run_normalize_job")
    ]
    assert len(calls) == 1, f"{script.name} must call run_ingest_job or run_normalize_job once"
    (call,) = calls
    assert isinstance(call.func, ast.Name)
    argument = call.args[1]
    assert isinstance(argument, ast.Name), f"{script.name}: pass an imported Pipeline"
    module_name, name = imported[argument.id]
    return call.func.id, getattr(importlib.import_module(module_name), name)


def test_the_bundled_pipelines_are_the_scripts_pipelines(
    bundled_pipelines: dict[str, dict[str, Any]],
) -> None:
    for entity, entry in bundled_pipelines.items():
        runners = {}
        for stage in ("ingest", "normalize"):
            script = ROOT / entry[f"{stage}_script"]
            assert script.is_file(), (
                f"{entity}: {entry[f'{stage}_script']} is not in the repository"
            )
            runner, pipeline = pipeline_of_script(script)
            assert runner == f"run_{stage}_job", f"{script.name} is not a {stage} job: {runner}"
            runners[stage] = pipeline
        assert runners["ingest"] is runners["normalize"], (
            f"{entity}: the scripts run different pipelines"
        )
        pipeline = runners["ingest"]
        assert pipeline.entity.name == entity
        assert entry["id_rule"] == {
            "pattern": pipeline.entity.ids.pattern,
            "help": pipeline.entity.ids.help,
        }
        assert sorted(entry["settings"]) == sorted(pipeline.settings), f"{entity}: settings differ"


def test_the_customers_id_rule_is_the_python_entitys(
    bundled_pipelines: dict[str, dict[str, Any]],
) -> None:
    from glue_replay_examples.customers import CUSTOMER_IDS

    assert bundled_pipelines["customers"]["id_rule"] == {
        "pattern": CUSTOMER_IDS.pattern,
        "help": CUSTOMER_IDS.help,
    }


def test_the_orders_pipeline_is_deployed_with_its_id_rule_url_and_secret(
    bundled_pipelines: dict[str, dict[str, Any]],
) -> None:
    from glue_replay_examples.orders import ORDER_IDS, PIPELINE

    orders = bundled_pipelines["orders"]
    assert orders["id_rule"] == {"pattern": ORDER_IDS.pattern, "help": ORDER_IDS.help}
    assert list(orders["settings"]) == list(PIPELINE.settings) == ["jdbc_url"]
    assert orders["settings"]["jdbc_url"].startswith("jdbc:postgresql://")
    assert "@" not in orders["settings"]["jdbc_url"], "credentials belong in the secret"
    assert orders["reads_source_token"] is True
    assert orders["source_url"] is None


def test_every_glue_script_belongs_to_one_bundled_pipeline(
    bundled_pipelines: dict[str, dict[str, Any]],
) -> None:
    scripts = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "glue_jobs").glob("*.py"))
    declared = [
        entry[f"{stage}_script"]
        for entry in bundled_pipelines.values()
        for stage in ("ingest", "normalize")
    ]
    assert scripts, "no glue_jobs/*.py"
    # The publisher's script is deployed once for every pipeline, not by one of them.
    assert PUBLISH_SCRIPT in scripts, f"the publish job runs {PUBLISH_SCRIPT}: it is not there"
    pipeline_scripts = [script for script in scripts if script != PUBLISH_SCRIPT]
    assert sorted(declared) == pipeline_scripts, (
        "var.pipelines' default must deploy every script of glue_jobs/ once"
    )


# --- variables, examples, module interfaces ------------------------------------------------------


def test_root_variables_are_typed_described_and_in_the_example_tfvars() -> None:
    example = hcl2.loads(
        (TERRAFORM / "terraform.tfvars.example").read_text(encoding="utf-8"),
        serialization_options=HCL,
    )
    variables = root().variables
    for name, body in variables.items():
        assert "type" in body, f"variable {name} has no type"
        assert unquote(str(body.get("description", ""))).strip(), f"variable {name}: no description"
    assert not variables.keys() - example.keys(), (
        f"terraform.tfvars.example lacks {sorted(variables.keys() - example.keys())}"
    )
    unknown = sorted(example.keys() - variables.keys())
    assert not unknown, f"terraform.tfvars.example sets unknown variables {unknown}"


def test_the_example_tfvars_is_valid_and_its_scripts_exist(workdir: Path) -> None:
    example = workdir.parent / "example.tfvars"
    shutil.copyfile(TERRAFORM / "terraform.tfvars.example", example)
    pipelines = terraform_value(workdir, "var.pipelines", f"-var-file={example}")
    for entity, entry in pipelines.items():
        for stage in ("ingest", "normalize"):
            assert (ROOT / entry[f"{stage}_script"]).is_file(), (
                f"{entity}: no {entry[f'{stage}_script']}"
            )


@pytest.mark.parametrize("directory", tf_directories(), ids=lambda path: path.name)
def test_module_variables_and_outputs_are_typed_and_described(directory: Path) -> None:
    tf = module(directory)
    for name, body in tf.variables.items():
        assert "type" in body, f"{directory.name}: variable {name} has no type"
        assert unquote(str(body.get("description", ""))).strip(), f"variable {name}: no description"
    for name, body in tf.outputs.items():
        assert unquote(str(body.get("description", ""))).strip(), f"output {name}: no description"
    assert tf.outputs or directory == TERRAFORM, f"module {directory.name} has no outputs"


def test_module_calls_pass_only_declared_inputs_and_every_required_one() -> None:
    meta = {"source", "count", "for_each", "depends_on", "providers"}
    for call, body in root().module_calls.items():
        child = module((TERRAFORM / unquote(body["source"])).resolve())
        inputs = body.keys() - meta
        declared = child.variables
        required = {name for name, variable in declared.items() if "default" not in variable}
        assert not inputs - declared.keys(), f"module {call}: undeclared {inputs - declared.keys()}"
        assert not required - inputs, f"module {call}: missing {required - inputs}"


# --- the planned deployment: jobs ----------------------------------------------------------------


def test_each_pipeline_has_an_ingest_and_a_normalize_job_running_its_script(
    deployment: Deployment,
) -> None:
    jobs = deployment.plan("module.glue.aws_glue_job", "this")
    assert set(jobs) == {key for key, *_ in deployment.jobs()}
    for key, _, stage, pipeline in deployment.jobs():
        job = jobs[key]
        assert job["name"] == f"{PREFIX}-{key}"
        (command,) = job["command"]
        assert command["name"] == "glueetl"
        assert (
            command["script_location"]
            == f"s3://{BUCKETS['artifacts']}/{pipeline[f'{stage}_script']}"
        )
    uploads = deployment.plan("module.artifacts.aws_s3_object", "script")
    assert {key: upload["key"] for key, upload in uploads.items()} == {
        **{key: pipeline[f"{stage}_script"] for key, _, stage, pipeline in deployment.jobs()},
        "publish": PUBLISH_SCRIPT,
    }, "modules/artifacts must upload each job's script under the key the job runs"


def test_jobs_run_on_glue_5_1_one_run_at_a_time_with_delta(deployment: Deployment) -> None:
    for key, job in deployment.plan("module.glue.aws_glue_job", "this").items():
        assert job["glue_version"] == "5.1", key
        assert job["execution_property"] == [{"max_concurrent_runs": 1}], key
        assert job["worker_type"] == default_of("worker_type"), key
        assert job["non_overridable_arguments"]["--datalake-formats"] == "delta", key
        assert (
            "io.delta.sql.DeltaSparkSessionExtension" in job["non_overridable_arguments"]["--conf"]
        )
        assert job["default_arguments"]["--job-bookmark-option"] == "job-bookmark-disable", key


def test_replay_arguments_are_absent_not_defaulted(deployment: Deployment) -> None:
    for key, job in deployment.plan("module.glue.aws_glue_job", "this").items():
        defaults = job["default_arguments"]
        assert not defaults.keys() - GLUE_PARAMETERS, (
            f"{key}: {sorted(defaults.keys() - GLUE_PARAMETERS)}"
        )
        assert not {f"--{name}" for name in REPLAY_FIELDS} & defaults.keys()


def test_deployment_settings_are_non_overridable(deployment: Deployment) -> None:
    jobs = deployment.plan("module.glue.aws_glue_job", "this")
    for key, entity, stage, pipeline in deployment.jobs():
        expected = {"--warehouse": WAREHOUSE}
        if stage == "ingest":
            if pipeline["source_url"] is not None:
                expected["--source_url"] = pipeline["source_url"]
            if pipeline["reads_source_token"]:
                expected["--source_token_secret"] = secret_arn(entity)
            expected |= {f"--{name}": value for name, value in pipeline["settings"].items()}
        fixed = dict(jobs[key]["non_overridable_arguments"])
        runtime = {
            name: fixed.pop(name)
            for name in ("--datalake-formats", "--conf", "--additional-python-modules")
        }
        assert fixed == expected, key
        assert (
            runtime["--additional-python-modules"]
            == f"s3://{BUCKETS['artifacts']}/{default_of('wheel_file')}"
        )
        assert (
            not jobs[key]["default_arguments"].keys()
            & jobs[key]["non_overridable_arguments"].keys()
        )


def test_every_job_argument_is_one_its_script_reads_or_glues_own(deployment: Deployment) -> None:
    """What a job reads is ``job_fields(settings)``: the replay fields, the deployment settings
    and, for ingest, its pipeline's own settings (the Python pipeline's, when bundled)."""
    jobs = deployment.plan("module.glue.aws_glue_job", "this")
    for key, _, stage, pipeline in deployment.jobs():
        settings: tuple[str, ...] = ()
        if stage == "ingest" and deployment.bundled:
            settings = tuple(pipeline_of_script(ROOT / pipeline["ingest_script"])[1].settings)
        elif stage == "ingest":
            settings = tuple(pipeline["settings"])
        readable = {f"--{name}" for name in job_fields(settings)} | GLUE_PARAMETERS
        given = (
            jobs[key]["default_arguments"].keys() | jobs[key]["non_overridable_arguments"].keys()
        )
        assert not given - readable, (
            f"{key} gets arguments its script does not read: {sorted(given - readable)}"
        )


# --- workflows and triggers ----------------------------------------------------------------------


def test_bau_and_replay_workflows_run_normalize_after_ingest(deployment: Deployment) -> None:
    plan, entities = deployment.plan, list(deployment.pipelines)
    workflows = plan("module.glue.aws_glue_workflow", "this")
    assert {key: workflow["name"] for key, workflow in workflows.items()} == {
        f"{entity}-{kind}": f"{PREFIX}-{entity}-{kind}"
        for entity in entities
        for kind in ("bau", "replay")
    }
    assert all(workflow["max_concurrent_runs"] == 1 for workflow in workflows.values())
    schedules = plan("module.glue.aws_glue_trigger", "bau_schedule")
    starts = plan("module.glue.aws_glue_trigger", "replay_start")
    cascades = plan("module.glue.aws_glue_trigger", "cascade")
    assert set(schedules) == set(starts) == set(entities)
    assert set(cascades) == set(workflows)
    for entity in entities:
        ingest, normalize = f"{PREFIX}-{entity}-ingest", f"{PREFIX}-{entity}-normalize"
        schedule, start = schedules[entity], starts[entity]
        assert (schedule["type"], schedule["workflow_name"]) == (
            "SCHEDULED",
            f"{PREFIX}-{entity}-bau",
        )
        assert schedule["schedule"] == default_of("bau_schedule")
        assert (start["type"], start["workflow_name"]) == ("ON_DEMAND", f"{PREFIX}-{entity}-replay")
        assert start["enabled"] is False, "an enabled ON_DEMAND trigger starts a run at creation"
        for trigger in (schedule, start):
            assert [action["job_name"] for action in trigger["actions"]] == [ingest]
        for kind in ("bau", "replay"):
            cascade = cascades[f"{entity}-{kind}"]
            assert (cascade["type"], cascade["workflow_name"]) == (
                "CONDITIONAL",
                f"{PREFIX}-{entity}-{kind}",
            )
            assert [action["job_name"] for action in cascade["actions"]] == [normalize]
            (predicate,) = cascade["predicate"]
            assert [
                (c["job_name"], c["state"], c["logical_operator"]) for c in predicate["conditions"]
            ] == [(ingest, "SUCCEEDED", "EQUALS")]


def test_every_job_maintains_its_own_tables_on_a_schedule_outside_the_workflows(
    plan_runs: PlanRuns, deployment: Deployment
) -> None:
    """Through the job itself (--maintenance true), so each table keeps one writer at a time."""
    triggers = deployment.plan("module.glue.aws_glue_trigger", "maintenance_schedule")
    assert set(triggers) == {key for key, *_ in deployment.jobs()}
    for key, trigger in triggers.items():
        assert (trigger["name"], trigger["type"], trigger["workflow_name"]) == (
            f"{PREFIX}-{key}-maintenance",
            "SCHEDULED",
            None,
        )
        assert (trigger["schedule"], trigger["enabled"]) == (
            default_of("maintenance_schedule"),
            True,
        )
        (action,) = trigger["actions"]
        assert (action["job_name"], action["arguments"]) == (
            f"{PREFIX}-{key}",
            {"--maintenance": "true"},  # no VACUUM unless asked
        )
    # Asked for: VACUUM with that retention; and the schedule can be turned off.
    every_sink_kind = plan_runs.plans["every_sink_kind"]
    for trigger in every_sink_kind("module.glue.aws_glue_trigger", "maintenance_schedule").values():
        assert trigger["enabled"] is False
        (action,) = trigger["actions"]
        assert action["arguments"] == {"--maintenance": "true", "--vacuum_retention_days": "14"}


# --- IAM -----------------------------------------------------------------------------------------


def test_no_two_jobs_may_write_the_same_table(deployment: Deployment) -> None:
    """One writer per table (DESIGN §6.9): Delta on S3 is safe for one driver at a time and
    each job runs once at a time, so no table may be writable by two jobs' roles (the ledger
    and the outbox were, before they became a table per job and per entity)."""
    policies = deployment.plan("module.iam.aws_iam_role_policy", "glue")
    (publisher,) = deployment.plan("module.iam.aws_iam_role_policy", "publish").values()
    roles = {key: policies[key]["policy"] for key, *_ in deployment.jobs()}
    roles["publish"] = publisher["policy"]
    writers: dict[str, list[str]] = {}
    for key, policy in roles.items():
        for resource in statements(policy)["WriteTables"]["Resource"]:
            if resource.endswith("/*"):
                writers.setdefault(resource, []).append(key)
    shared = {table: keys for table, keys in writers.items() if len(keys) > 1}
    assert shared == {}
    # Each pipeline: raw, quarantine/ingest and runs/ingest; normalized, outbox,
    # quarantine/normalize and runs/normalize. The publisher: dead_letter, runs/publish and
    # _publish, of every entity.
    assert len(writers) == 7 * len(deployment.pipelines) + 3


def test_each_job_role_reaches_only_its_pipelines_tables(deployment: Deployment) -> None:
    policies = deployment.plan("module.iam.aws_iam_role_policy", "glue")
    warehouse = f"arn:aws:s3:::{BUCKETS['warehouse']}/warehouse"
    for key, entity, stage, _ in deployment.jobs():
        if stage == "ingest":
            reads = []
            writes = [f"raw/{entity}", f"quarantine/{entity}/ingest", f"runs/ingest/{entity}"]
        else:
            reads, writes = (
                [f"raw/{entity}"],
                [
                    f"normalized/{entity}",
                    f"outbox/{entity}",
                    f"quarantine/{entity}/normalize",
                    f"runs/normalize/{entity}",
                ],
            )
        granted = statements(policies[key]["policy"])
        assert set(granted["ReadTables"]["Resource"]) == table_objects(*reads, *writes), key
        assert set(granted["WriteTables"]["Resource"]) == table_objects(*writes), key
        assert set(granted["WriteTables"]["Action"]) == {
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
        }
        folders = [
            warehouse,
            *{
                f"{warehouse}/{'/'.join(table.split('/')[:depth])}"
                for table in reads + writes
                for depth in range(1, table.count("/") + 1)
            },
        ]
        assert set(granted["HeadTableFolders"]["Resource"]) == {
            f"{folder}{suffix}" for folder in folders for suffix in ("", "/")
        }, key
        warehouse_grants = [
            resource
            for statement in granted.values()
            for resource in statement["Resource"]
            if resource.startswith(f"arn:aws:s3:::{BUCKETS['warehouse']}/")
        ]
        assert granted["ClaimRequests"]["Resource"] == [f"{warehouse}/requests/*"], key
        assert set(granted["ClaimRequests"]["Action"]) == {"s3:GetObject", "s3:PutObject"}
        others = (
            set(warehouse_grants)
            - table_objects(*reads, *writes)
            - set(granted["HeadTableFolders"]["Resource"])
            - {f"{warehouse}/requests/*"}
        )
        assert not others, f"{key} reaches more of the warehouse: {sorted(others)}"


def test_each_job_role_reads_its_own_script_workflows_and_secret(deployment: Deployment) -> None:
    plan = deployment.plan
    policies = plan("module.iam.aws_iam_role_policy", "glue")
    roles = plan("module.iam.aws_iam_role", "glue")
    assert set(roles) == set(policies) == {key for key, *_ in deployment.jobs()}
    for key, entity, stage, pipeline in deployment.jobs():
        assert roles[key]["name"] == f"{PREFIX}-{key}"
        granted = statements(policies[key]["policy"])
        artifacts = f"arn:aws:s3:::{BUCKETS['artifacts']}"
        assert set(granted["ReadCode"]["Resource"]) == {
            f"{artifacts}/{pipeline[f'{stage}_script']}",
            f"{artifacts}/{default_of('wheel_file')}",
        }
        assert set(granted["ReadReplayRequest"]["Resource"]) == {
            glue_arn("workflow", f"{PREFIX}-{entity}-{kind}") for kind in ("bau", "replay")
        }
        secret_statements = [
            s for s in granted.values() if any(a.startswith("secretsmanager:") for a in s["Action"])
        ]
        if stage == "ingest" and pipeline["reads_source_token"]:
            assert [(s["Sid"], s["Action"], s["Resource"]) for s in secret_statements] == [
                ("ReadSourceToken", ["secretsmanager:GetSecretValue"], [secret_arn(entity)])
            ]
        else:
            assert not secret_statements, f"{key} must not read any secret"


def test_a_source_token_secret_per_pipeline_that_reads_one(deployment: Deployment) -> None:
    secrets = deployment.plan("module.secrets.aws_secretsmanager_secret", "source_token")
    assert {entity: secret["name"] for entity, secret in secrets.items()} == {
        entity: f"{PREFIX}-{entity}-source-token"
        for entity, pipeline in deployment.pipelines.items()
        if pipeline["reads_source_token"]
    }
    assert all(secret["kms_key_id"] == KMS_KEY for secret in secrets.values())


def test_the_lambda_may_start_and_inspect_every_pipeline(deployment: Deployment) -> None:
    (policy,) = deployment.plan("module.iam.aws_iam_role_policy", "lambda").values()
    granted = statements(policy["policy"])
    entities = list(deployment.pipelines)
    glue_grants = {
        sid: s for sid, s in granted.items() if any(a.startswith("glue:") for a in s["Action"])
    }
    assert {sid: (sorted(s["Action"]), set(s["Resource"])) for sid, s in glue_grants.items()} == {
        "StartReplayWorkflows": (
            ["glue:GetWorkflowRun", "glue:StartWorkflowRun"],
            {glue_arn("workflow", f"{PREFIX}-{entity}-replay") for entity in entities},
        ),
        "ListWorkflowRuns": (
            ["glue:GetWorkflowRuns"],
            {
                glue_arn("workflow", f"{PREFIX}-{e}-{kind}")
                for e in entities
                for kind in ("bau", "replay")
            },
        ),
        "StartAndInspectJobRuns": (
            ["glue:GetJobRun", "glue:GetJobRuns", "glue:StartJobRun"],
            {glue_arn("job", f"{PREFIX}-{key}") for key, *_ in deployment.jobs()},
        ),
    }


# --- the publisher -------------------------------------------------------------------------------

#: Sink kind => the statement its role gets: (Sid, actions). Kafka and file sinks have none here.
SINK_STATEMENTS = {
    "kinesis": ("PutKinesisRecords", ["kinesis:DescribeStreamSummary", "kinesis:PutRecords"]),
    "sqs": ("SendSqsMessages", ["sqs:GetQueueUrl", "sqs:SendMessage"]),
    "sns": ("PublishSnsMessages", ["sns:Publish"]),
    "eventbridge": ("PutEventBridgeEvents", ["events:PutEvents"]),
}
SINK_SERVICES = ("kinesis", "sqs", "sns", "events", "kafka")
PUBLISH_TABLE_STATEMENTS = {
    "ReadCode",
    "UseTempDir",
    "ListTempDir",
    "ListWarehouse",
    "HeadTableFolders",
    "ReadTables",
    "WriteTables",
    "UseTheKey",
    "WriteLogs",
    "PutGlueMetrics",
}


def sink_grants(policy: str) -> dict[str, tuple[list[str], set[str]]]:
    """A policy's statements that reach a sink service: Sid -> (sorted actions, resources)."""
    return {
        sid: (sorted(statement["Action"]), set(statement["Resource"]))
        for sid, statement in statements(policy).items()
        if any(action.split(":")[0] in SINK_SERVICES for action in statement["Action"])
    }


def publisher(plan: Plan) -> tuple[dict[str, Any], str]:
    """The publish job and its role's policy document."""
    (job,) = plan("module.glue.aws_glue_job", "publish").values()
    (policy,) = plan("module.iam.aws_iam_role_policy", "publish").values()
    return job, policy["policy"]


def test_the_publish_job_runs_its_script_with_the_sinks_as_overridable_defaults(
    deployment: Deployment,
) -> None:
    from glue_replay.publishing import PUBLISH_FIELDS

    job, _ = publisher(deployment.plan)
    assert job["name"] == PUBLISH_JOB
    (command,) = job["command"]
    assert (command["name"], command["script_location"]) == (
        "glueetl",
        f"s3://{BUCKETS['artifacts']}/{PUBLISH_SCRIPT}",
    )
    assert (job["glue_version"], job["security_configuration"]) == ("5.1", f"{PREFIX}-glue")
    # One cascade per workflow, the schedule and a start by hand may overlap: the lease, not
    # Glue, lets one of them run, the others exit 0 at once.
    assert job["execution_property"] == [{"max_concurrent_runs": 2 * len(deployment.pipelines) + 2}]
    defaults = dict(job["default_arguments"])
    sinks = {name: defaults.pop(name) for name in ("--sink", "--entity_sinks")}
    assert sinks["--sink"] == DEFAULT_SINK
    assert json.loads(sinks["--entity_sinks"]) == deployment.entity_sinks
    assert defaults.pop("--fail_on_dead_letter") == "false"
    assert not defaults.keys() - GLUE_PARAMETERS, sorted(defaults.keys() - GLUE_PARAMETERS)
    fixed = dict(job["non_overridable_arguments"])
    runtime = {
        name: fixed.pop(name)
        for name in ("--datalake-formats", "--conf", "--additional-python-modules")
    }
    assert fixed == {"--warehouse": WAREHOUSE}
    assert runtime["--datalake-formats"] == "delta"
    given = job["default_arguments"].keys() | job["non_overridable_arguments"].keys()
    assert not job["default_arguments"].keys() & job["non_overridable_arguments"].keys()
    assert not given & {"--entities", "--dead_letters", "--dead_letter_ids"}, "per-run only"
    readable = {f"--{name}" for name in PUBLISH_FIELDS} | GLUE_PARAMETERS
    assert not given - readable, f"the publisher does not read {sorted(given - readable)}"


def test_every_workflow_publishes_after_normalize_and_a_schedule_publishes_too(
    deployment: Deployment,
) -> None:
    plan = deployment.plan
    workflows = plan("module.glue.aws_glue_workflow", "this")
    cascades = plan("module.glue.aws_glue_trigger", "publish_after_normalize")
    assert set(cascades) == set(workflows)
    for entity in deployment.pipelines:
        for kind in ("bau", "replay"):
            cascade = cascades[f"{entity}-{kind}"]
            assert (cascade["type"], cascade["workflow_name"]) == (
                "CONDITIONAL",
                f"{PREFIX}-{entity}-{kind}",
            )
            assert [action["job_name"] for action in cascade["actions"]] == [PUBLISH_JOB]
            (predicate,) = cascade["predicate"]
            assert [
                (c["job_name"], c["state"], c["logical_operator"]) for c in predicate["conditions"]
            ] == [(f"{PREFIX}-{entity}-normalize", "SUCCEEDED", "EQUALS")]
    (schedule,) = plan("module.glue.aws_glue_trigger", "publish_schedule").values()
    assert (schedule["type"], schedule["schedule"], schedule["enabled"]) == (
        "SCHEDULED",
        default_of("publish_schedule"),
        True,
    )
    assert schedule["workflow_name"] is None, "the schedule starts the job outside the workflows"
    assert [action["job_name"] for action in schedule["actions"]] == [PUBLISH_JOB]


def test_the_publish_role_reads_the_outboxes_and_writes_only_its_own_tables(
    deployment: Deployment,
) -> None:
    """By folder, not per entity: the job publishes every pipeline installed in the wheel, which
    may be more than var.pipelines (the bundled examples always are)."""
    (role,) = deployment.plan("module.iam.aws_iam_role", "publish").values()
    assert role["name"] == PUBLISH_JOB
    _, policy = publisher(deployment.plan)
    granted = statements(policy)
    reads, writes = ["outbox"], ["dead_letter", "runs/publish", "_publish"]
    assert set(granted["ReadTables"]["Resource"]) == table_objects(*reads, *writes)
    assert set(granted["WriteTables"]["Resource"]) == table_objects(*writes)
    assert set(granted["WriteTables"]["Action"]) == {
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    }
    warehouse = f"arn:aws:s3:::{BUCKETS['warehouse']}/warehouse"
    assert set(granted["HeadTableFolders"]["Resource"]) == {
        f"{folder}{suffix}" for folder in (warehouse, f"{warehouse}/runs") for suffix in ("", "/")
    }
    warehouse_grants = {
        resource
        for statement in granted.values()
        for resource in statement["Resource"]
        if resource.startswith(f"arn:aws:s3:::{BUCKETS['warehouse']}/")
    }
    others = (
        warehouse_grants
        - table_objects(*reads, *writes)
        - set(granted["HeadTableFolders"]["Resource"])
    )
    assert not others, f"the publisher reaches more of the warehouse: {sorted(others)}"
    artifacts = f"arn:aws:s3:::{BUCKETS['artifacts']}"
    assert set(granted["ReadCode"]["Resource"]) == {
        f"{artifacts}/{PUBLISH_SCRIPT}",
        f"{artifacts}/{default_of('wheel_file')}",
    }
    assert granted["UseTheKey"]["Resource"] == [KMS_KEY]
    # No request claims, run properties, id files or secrets: only its tables and its sinks.
    assert set(granted) - set(sink_grants(policy)) == PUBLISH_TABLE_STATEMENTS


def test_the_publish_role_may_send_to_exactly_the_configured_sinks(deployment: Deployment) -> None:
    """Bundled: the Kinesis default for both pipelines. Three pipelines: orders to an SQS queue,
    the others to the Kinesis default. Nothing for SNS or EventBridge, no wildcard."""
    _, policy = publisher(deployment.plan)
    used = {deployment.entity_sinks.get(entity, DEFAULT_SINK) for entity in deployment.pipelines}
    expected: dict[str, tuple[list[str], set[str]]] = {}
    for uri in used:
        kind, _, arn = uri.partition(":")
        sid, actions = SINK_STATEMENTS[kind]
        expected.setdefault(sid, (actions, set()))[1].add(arn)
    assert sink_grants(policy) == expected
    if not deployment.bundled:
        assert expected == {
            "PutKinesisRecords": (SINK_STATEMENTS["kinesis"][1], {STREAM}),
            "SendSqsMessages": (SINK_STATEMENTS["sqs"][1], {QUEUE}),
        }


def test_every_sink_kind_gets_exactly_its_grant(plan_runs: PlanRuns) -> None:
    """An SNS topic, an EventBridge bus, a file: sink and the sinks' own KMS key; no Kinesis
    statement for the default no pipeline uses, none for SQS; none for Kafka (longest_names)."""
    if "every_sink_kind" not in plan_runs.plans:
        pytest.fail(
            "terraform test did not plan every_sink_kind:\n" + "\n".join(plan_runs.diagnostics)
        )
    plan = plan_runs.plans["every_sink_kind"]
    job, policy = publisher(plan)
    granted = statements(policy)
    assert sink_grants(policy) == {
        "PublishSnsMessages": (["sns:Publish"], {TOPIC}),
        "PutEventBridgeEvents": (["events:PutEvents"], {BUS}),
    }
    bucket = "arn:aws:s3:::events-archive"
    sink_objects = {f"{bucket}/glue-replay/events{suffix}" for suffix in ("", "/*")}
    assert set(granted["WriteFileSink"]["Resource"]) == sink_objects
    assert set(granted["WriteFileSink"]["Action"]) == {
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    }
    assert set(granted["ReadFileSink"]["Resource"]) == sink_objects | {
        f"{bucket}/glue-replay{suffix}" for suffix in ("", "/")
    }
    listing = granted["ListFileSink0"]
    assert (listing["Action"], listing["Resource"]) == (["s3:ListBucket"], [bucket])
    assert sorted(listing["Condition"]["StringLike"]["s3:prefix"]) == [
        "glue-replay/events",
        "glue-replay/events/*",
    ]
    assert (
        granted["UseTheSinksKeys"]["Resource"],
        sorted(granted["UseTheSinksKeys"]["Action"]),
    ) == (
        [SINK_KEY],
        ["kms:Decrypt", "kms:GenerateDataKey"],
    )
    assert set(granted) == PUBLISH_TABLE_STATEMENTS | {
        "PublishSnsMessages",
        "PutEventBridgeEvents",
        "ReadFileSink",
        "WriteFileSink",
        "ListFileSink0",
        "UseTheSinksKeys",
    }
    defaults = job["default_arguments"]
    assert defaults["--sink"] == DEFAULT_SINK
    assert json.loads(defaults["--entity_sinks"]) == EVERY_SINK_KIND["publish_entity_sinks"]
    assert defaults["--fail_on_dead_letter"] == "true"
    (schedule,) = plan("module.glue.aws_glue_trigger", "publish_schedule").values()
    assert schedule["enabled"] is False

    job, policy = publisher(plan_runs.plans["longest_names"])
    assert job["default_arguments"]["--sink"] == KAFKA_SINK
    assert sink_grants(policy) == {}
    assert not {sid for sid in statements(policy) if "FileSink" in sid or "Sinks" in sid}


# --- what the triggers read: the Lambda's environment and cli_config ---------------------------


def trigger_pipelines(deployment: Deployment) -> dict[str, dict[str, str]]:
    return {
        entity: {
            "ingest_job": f"{PREFIX}-{entity}-ingest",
            "normalize_job": f"{PREFIX}-{entity}-normalize",
            "workflow_name": f"{PREFIX}-{entity}-replay",
            "bau_workflow_name": f"{PREFIX}-{entity}-bau",
            "id_pattern": pipeline["id_rule"]["pattern"],
            "id_help": pipeline["id_rule"]["help"],
        }
        for entity, pipeline in deployment.pipelines.items()
    }


def test_the_lambda_environment_names_every_pipeline(deployment: Deployment) -> None:
    (function,) = deployment.plan("module.trigger.aws_lambda_function", "this").values()
    (environment,) = function["environment"]
    variables = dict(environment["variables"])
    assert json.loads(variables.pop("GLUE_REPLAY_PIPELINES")) == trigger_pipelines(deployment)
    assert variables == {
        "GLUE_REPLAY_UPLOADS_URI": UPLOADS,
        "GLUE_REPLAY_WAREHOUSE": WAREHOUSE,
        "GLUE_REPLAY_UPLOADS_KMS_KEY": KMS_KEY,
    }


def test_cli_config_is_exactly_what_the_cli_reads(deployment: Deployment) -> None:
    from glue_replay.trigger.config import CONFIG_KEYS, PIPELINE_KEYS

    config = deployment.plan.outputs["cli_config"]
    assert config == {
        "region": REGION,
        "warehouse": WAREHOUSE,
        "uploads_uri": UPLOADS,
        "uploads_kms_key": KMS_KEY,
        "pipelines": trigger_pipelines(deployment),
        "publish_job": PUBLISH_JOB,
    }
    assert set(config) == set(CONFIG_KEYS), "cli_config and glue_replay.trigger.config differ"
    assert all(set(entry) == set(PIPELINE_KEYS) for entry in config["pipelines"].values())


def test_failed_runs_of_every_job_are_alerted(deployment: Deployment) -> None:
    (rule,) = deployment.plan(
        "module.monitoring.aws_cloudwatch_event_rule", "glue_job_failed"
    ).values()
    pattern = json.loads(rule["event_pattern"])
    assert sorted(pattern["detail"]["jobName"]) == sorted(
        [f"{PREFIX}-{key}" for key, *_ in deployment.jobs()] + [PUBLISH_JOB]
    )


# --- what `make package` builds for Terraform to upload ------------------------------------------


def test_the_wheel_holds_the_library_and_examples_and_the_lambda_zip_the_library_only(
    tmp_path: Path,
) -> None:
    spec = importlib.util.spec_from_file_location("package_script", ROOT / "scripts" / "package.py")
    assert spec and spec.loader
    package = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package)

    with checkout_lock("package-build"):  # pip builds in the checkout: one build at a time
        wheel = package.build_wheel(tmp_path)
    assert wheel.name == Path(default_of("wheel_file")).name, (
        "var.wheel_file's default is not the wheel"
    )
    with zipfile.ZipFile(wheel) as archive:
        tops = {
            name.split("/")[0]
            for name in archive.namelist()
            if not name.split("/")[0].endswith(".dist-info")
        }
        assert "glue_replay_examples/customers/__init__.py" in archive.namelist()
        assert "glue_replay/py.typed" in archive.namelist()
    assert tops == {"glue_replay", "glue_replay_examples"}, (
        "glue_replay_devtools must stay out of the wheel"
    )

    lambda_zip = package.build_lambda_zip(tmp_path)
    assert lambda_zip.name == Path(default_of("lambda_zip_file")).name
    with zipfile.ZipFile(lambda_zip) as archive:
        names = archive.namelist()
    assert {name.split("/")[0] for name in names} == {"glue_replay"}
    assert "glue_replay/trigger/lambda_handler.py" in names
    assert not [name for name in names if "__pycache__" in name]
