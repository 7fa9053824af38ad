"""terraform/: checkov finds nothing to fix, and the Glue jobs it deploys are the ones the code has.

The HCL is read with python-hcl2, not with regular expressions (only the checkov skip comments
are read as text): blocks and attributes come from its parsed document, and the expressions that
build a job's arguments (``merge(local.a, each.value.settings)``,
``"s3://${var.bucket}/${each.value.script}"``) are evaluated on hcl2's own parse tree by the small
evaluator below. It knows literals, strings, objects, tuples, ``local.``, ``var.`` (a module's
inputs, as its caller passes them), ``each.``, ``merge()`` and conditionals (the union of both
branches: every key the job may get). Anything else is a value known only at apply time (a bucket
name, a secret's ARN), which is fine for a value and a failure for a key: the keys of every job's
arguments must be readable without AWS.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2.utils import SerializationOptions
from lark import Token, Tree

from glue_replay.jobs import JOBS, JobSpec
from glue_replay.request import REPLAY_ARGUMENTS
from glue_replay.trigger.config import DeploymentConfig

ROOT = Path(__file__).resolve().parents[1]
TERRAFORM = ROOT / "terraform"
GLUE_MODULE = TERRAFORM / "modules" / "glue"
ARTIFACTS_MODULE = TERRAFORM / "modules" / "artifacts"

#: AWS Glue's own job parameters: the only keys a job may have beyond its JobSpec's arguments.
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
#: Replay arguments default to "absent" (DESIGN §4): empty, and --dry_run false.
NEUTRAL_DEFAULTS = {f"--{name}": "" for name in REPLAY_ARGUMENTS} | {"--dry_run": "false"}
#: What the glue-replay CLI reads from `terraform output -json cli_config`: the configuration's
#: fields (its ``origin`` is where they were read from, not a setting).
CLI_CONFIG_KEYS = {f.name for f in dataclasses.fields(DeploymentConfig)} - {"origin"}
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(?P<check>[A-Z0-9_]+)(?::(?P<reason>.*))?")
HCL = SerializationOptions(with_comments=False, explicit_blocks=False)


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

    @property
    def locals(self) -> dict[str, Any]:
        return {name: raw for entry in self.blocks.get("locals", []) for name, raw in entry.items()}

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            unquote(name): body
            for entry in self.blocks.get("resource", [])
            for resource_type, named in entry.items()
            if unquote(resource_type) == kind
            for name, body in named.items()
        }


def tf_directories() -> list[Path]:
    return [TERRAFORM, *sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())]


@cache
def module(directory: Path) -> Module:
    return Module.load(directory)


# --- evaluating HCL expressions ------------------------------------------------------------------


@dataclass(frozen=True)
class Unknown:
    """A value Terraform knows only at plan or apply time: a resource attribute, an unset input."""

    expression: str

    def __str__(self) -> str:
        return f"<{self.expression}>"


class NotStaticError(AssertionError):
    """An expression whose keys the test must know (a job's arguments) depends on AWS."""


def _trees(node: Tree) -> list[Tree]:
    return [
        child
        for child in node.children
        if isinstance(child, Tree) and child.data != "new_line_or_comment"
    ]


def _unescape(chars: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), chars)


class Evaluator:
    """Evaluates the expressions of one module, given its inputs and (for a resource) ``each``."""

    def __init__(self, tf: Module, inputs: dict[str, Any], each: dict[str, Any] | None = None):
        self.module = tf
        self.inputs = inputs
        self.each = each
        self._locals: dict[str, Any] = {}

    def value(self, raw: Any) -> Any:
        """A value as hcl2 serialises it: strings are expressions, dicts objects, lists tuples."""
        if isinstance(raw, str):
            return self.expression(raw)
        if isinstance(raw, dict):
            return {unquote(key): self.value(item) for key, item in raw.items()}
        if isinstance(raw, list):
            return [self.value(item) for item in raw]
        return raw

    def expression(self, text: str) -> Any:
        source = text[2:-1] if text.startswith("${") and text.endswith("}") else text
        tree = hcl2.parses_to_tree(f"x = {source}\n")
        (attribute,) = tree.find_data("attribute")
        return self.evaluate(_trees(attribute)[-1])

    def evaluate(self, node: Tree) -> Any:
        kind, children = node.data, _trees(node)
        tokens = [child for child in node.children if isinstance(child, Token)]
        if kind == "expr_term" and len(children) == 1:
            return self.evaluate(children[0])
        if kind in ("int_lit", "float_lit"):
            return json.loads(str(tokens[0]))
        if kind == "literal_value":
            return {"true": True, "false": False, "null": None}[str(tokens[0])]
        if kind == "string":
            return self.template(children)
        if kind == "tuple":
            return [self.evaluate(child) for child in children]
        if kind == "object":
            return dict(self.element(child) for child in children)
        if kind == "identifier":
            return self.reference(str(tokens[0]))
        if kind == "get_attr_expr_term":
            base, attribute = children
            return self.lookup(self.evaluate(base), str(_trees(attribute)[0].children[0]))
        if kind == "index_expr_term":
            base, index = children
            return self.lookup(self.evaluate(base), self.evaluate(_trees(index)[0]))
        if kind == "function_call":
            return self.call(node)
        if kind == "conditional":
            _, if_true, if_false = (self.evaluate(child) for child in children)
            if isinstance(if_true, dict) and isinstance(if_false, dict):
                return if_false | if_true
            return Unknown("a conditional")
        return Unknown(kind)

    def template(self, parts: list[Tree]) -> Any:
        pieces: list[Any] = []
        for part in parts:
            (content,) = part.children
            if isinstance(content, Token):
                text = str(content)
                pieces.append(text[1:] if text.startswith("$${") else _unescape(text))
            else:  # an interpolation: ${ expression }
                pieces.append(self.evaluate(_trees(content)[0]))
        if len(pieces) == 1 and not isinstance(pieces[0], str):
            return pieces[0]
        return "".join(str(piece) for piece in pieces)

    def element(self, node: Tree) -> tuple[str, Any]:
        key_node, value_node = _trees(node)
        (key_expression,) = _trees(key_node)
        key_terms = _trees(key_expression)
        if len(key_terms) == 1 and key_terms[0].data == "identifier":  # a bare key: { name = 1 }
            key: Any = str(key_terms[0].children[0])
        else:
            key = self.evaluate(key_expression)
        if not isinstance(key, str):
            raise NotStaticError(f"object key {key} is not known without AWS")
        return key, self.evaluate(value_node)

    def reference(self, name: str) -> Any:
        if name == "local":
            return _Namespace(self.local)
        if name == "var":
            return _Namespace(self.variable)
        if name == "each" and self.each is not None:
            return self.each
        return Unknown(name)

    def local(self, name: str) -> Any:
        if name not in self._locals:
            self._locals[name] = self.value(self.module.locals[name])
        return self._locals[name]

    def variable(self, name: str) -> Any:
        if name in self.inputs:
            return self.inputs[name]
        declared = self.module.variables[name]
        return self.value(declared["default"]) if "default" in declared else Unknown(f"var.{name}")

    def lookup(self, base: Any, key: Any) -> Any:
        if isinstance(base, _Namespace):
            return base.resolve(key)
        if isinstance(base, Unknown) or isinstance(key, Unknown):
            return Unknown(f"{base}[{key}]")
        return base[key]

    def call(self, node: Tree) -> Any:
        name_node, *rest = _trees(node)
        name = str(name_node.children[0])
        arguments = [self.evaluate(child) for tree in rest for child in _trees(tree)]
        if name != "merge":
            return Unknown(f"{name}(...)")
        for argument in arguments:
            if not isinstance(argument, dict):
                raise NotStaticError(f"merge() of {argument}: its keys are not known without AWS")
        merged: dict[str, Any] = {}
        for argument in arguments:
            merged |= argument
        return merged


@dataclass(frozen=True)
class _Namespace:
    """``local`` or ``var``: resolves ``<namespace>.<name>``."""

    resolver: Any

    def resolve(self, name: Any) -> Any:
        return self.resolver(name)


def module_inputs(caller: Module, call: str) -> dict[str, Any]:
    """The inputs ``caller`` passes to its ``module "<call>"``, evaluated in the caller."""
    meta = {"source", "count", "for_each", "depends_on", "providers"}
    body = caller.module_calls[call]
    evaluator = Evaluator(caller, {})
    return {name: evaluator.value(raw) for name, raw in body.items() if name not in meta}


def root() -> Module:
    return module(TERRAFORM)


def glue_jobs() -> dict[str, dict[str, Any]]:
    """The root's job map, as it reaches modules/glue (job key -> entry)."""
    jobs = module_inputs(root(), "glue")["jobs"]
    assert isinstance(jobs, dict), f"module glue's jobs must be statically readable, got {jobs}"
    return jobs


@dataclass(frozen=True)
class DeployedJob:
    key: str
    script_location: str
    default_arguments: dict[str, Any]
    non_overridable_arguments: dict[str, Any]
    glue_version: Any
    max_concurrent_runs: Any


def deployed_jobs() -> dict[str, DeployedJob]:
    """Every aws_glue_job of modules/glue, evaluated for each entry of the job map."""
    glue = module(GLUE_MODULE)
    inputs = module_inputs(root(), "glue")
    (job,) = glue.resources("aws_glue_job").values()
    deployed = {}
    for key, entry in glue_jobs().items():
        evaluator = Evaluator(glue, inputs, {"key": key, "value": entry})
        (command,) = job["command"]
        (execution,) = job["execution_property"]
        deployed[key] = DeployedJob(
            key=key,
            script_location=evaluator.value(command["script_location"]),
            default_arguments=evaluator.value(job["default_arguments"]),
            non_overridable_arguments=evaluator.value(job["non_overridable_arguments"]),
            glue_version=evaluator.value(job["glue_version"]),
            max_concurrent_runs=evaluator.value(execution["max_concurrent_runs"]),
        )
    return deployed


def spec_by_name() -> dict[str, JobSpec]:
    return {spec.name: spec for spec in JOBS}


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


# --- the jobs ------------------------------------------------------------------------------------


def test_every_glue_script_has_exactly_one_job_and_every_job_a_script() -> None:
    scripts = {path.stem for path in (ROOT / "glue_jobs").glob("*.py")}
    jobs = glue_jobs()
    assert scripts, "no glue_jobs/*.py"
    for name in sorted(scripts):
        owners = [key for key, job in jobs.items() if job["script"] == f"glue_jobs/{name}.py"]
        assert owners == [name], (
            f"glue_jobs/{name}.py must be the script of one job {name}: {owners}"
        )
    assert set(jobs) == scripts, f"jobs without a script in glue_jobs/: {set(jobs) - scripts}"


def test_each_job_runs_its_script_from_where_the_artifacts_module_uploads_it() -> None:
    artifacts = module(ARTIFACTS_MODULE)
    inputs = module_inputs(root(), "artifacts")
    (upload,) = [
        body for name, body in artifacts.resources("aws_s3_object").items() if name == "script"
    ]
    assert inputs["jobs"] == glue_jobs(), (
        "modules/artifacts must upload the scripts of the same jobs"
    )
    for key, job in deployed_jobs().items():
        entry = glue_jobs()[key]
        uploaded = Evaluator(artifacts, inputs, {"key": key, "value": entry}).value(upload["key"])
        assert uploaded == f"glue_jobs/{key}.py"
        assert isinstance(job.script_location, str)
        assert job.script_location.startswith("s3://")
        assert job.script_location.endswith(f"/{uploaded}"), job.script_location


def test_the_jobs_are_the_library_job_specs() -> None:
    jobs = glue_jobs()
    assert set(jobs) == set(spec_by_name()), "terraform jobs and glue_replay.jobs.JOBS differ"
    for name, spec in spec_by_name().items():
        assert jobs[name]["script"] == spec.script


@pytest.mark.parametrize("spec", JOBS, ids=lambda spec: spec.name)
def test_replay_arguments_are_overridable_and_settings_are_not(spec: JobSpec) -> None:
    job = deployed_jobs()[spec.name]
    overridable, fixed = job.default_arguments, job.non_overridable_arguments
    replay = {f"--{name}" for name in REPLAY_ARGUMENTS}
    settings = {f"--{name}" for name in spec.settings}
    assert replay <= overridable.keys(), f"missing replay arguments: {replay - overridable.keys()}"
    assert settings <= fixed.keys(), f"settings not non-overridable: {settings - fixed.keys()}"
    assert not overridable.keys() & fixed.keys(), "an argument is both overridable and not"
    assert not replay & fixed.keys(), "a replay argument must stay overridable per run"
    assert {f"--{name}" for name in spec.arguments} <= overridable.keys() | fixed.keys()
    assert {key: overridable[key] for key in replay} == NEUTRAL_DEFAULTS


@pytest.mark.parametrize("spec", JOBS, ids=lambda spec: spec.name)
def test_every_job_argument_is_one_the_script_reads_or_glues_own(spec: JobSpec) -> None:
    job = deployed_jobs()[spec.name]
    readable = {f"--{name}" for name in spec.arguments} | GLUE_PARAMETERS
    unknown = (job.default_arguments.keys() | job.non_overridable_arguments.keys()) - readable
    assert not unknown, f"{spec.name} gets arguments its script does not read: {sorted(unknown)}"


@pytest.mark.parametrize("spec", JOBS, ids=lambda spec: spec.name)
def test_jobs_run_on_glue_5_1_one_run_at_a_time_with_delta(spec: JobSpec) -> None:
    job = deployed_jobs()[spec.name]
    assert job.glue_version == "5.1"
    assert job.max_concurrent_runs == 1
    assert job.non_overridable_arguments["--datalake-formats"] == "delta"
    assert job.default_arguments["--job-bookmark-option"] == "job-bookmark-disable"


def test_every_glue_job_resource_is_glue_5_1_with_one_concurrent_run() -> None:
    found = 0
    for directory in tf_directories():
        tf = module(directory)
        for name, body in tf.resources("aws_glue_job").items():
            found += 1
            evaluator = Evaluator(tf, {})
            (execution,) = body.get("execution_property", [{}])
            assert evaluator.value(body["glue_version"]) == "5.1", f"{directory.name}/{name}"
            assert evaluator.value(execution.get("max_concurrent_runs")) == 1, f"{name}"
    assert found


# --- variables, examples, outputs ----------------------------------------------------------------


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
    for call, body in root().module_calls.items():
        child = module((TERRAFORM / unquote(body["source"])).resolve())
        inputs = module_inputs(root(), call).keys()
        declared = child.variables
        required = {name for name, variable in declared.items() if "default" not in variable}
        assert not inputs - declared.keys(), f"module {call}: undeclared {inputs - declared.keys()}"
        assert not required - inputs, f"module {call}: missing {required - inputs}"


def test_cli_config_output_has_exactly_what_the_cli_reads() -> None:
    value = Evaluator(root(), {}).value(root().outputs["cli_config"]["value"])
    assert isinstance(value, dict)
    assert set(value) == CLI_CONFIG_KEYS
