"""The core is a library: it never names the bundled pipelines, and they use its public API only.

DESIGN §3: sources and entities are plug-ins; the bundled pipelines are examples written with the
public API, and the core never imports them. Checked on the source text, so a new module cannot
quietly hard-wire an entity again.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib"
CORE = LIB / "glue_replay"
EXAMPLES = LIB / "glue_replay_examples"
#: Glue's own argument names that happen to contain the word (``--customer-driver-env-vars``).
GLUE_OWN = re.compile(r'"customer-(driver|executor)-env-vars"')


def _modules(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.py") if "__pycache__" not in path.parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_core_module_names_the_bundled_entity() -> None:
    mentions = {
        str(path.relative_to(LIB)): number
        for path in _modules(CORE)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"customer", GLUE_OWN.sub("", line), re.IGNORECASE)
    }
    assert mentions == {}


def test_the_core_never_imports_the_examples_or_the_dev_tools() -> None:
    offenders = {
        str(path.relative_to(LIB)): sorted(
            name
            for name in _imports(path)
            if name.startswith(("glue_replay_examples", "glue_replay_devtools"))
        )
        for path in _modules(CORE)
    }
    assert {module: names for module, names in offenders.items() if names} == {}


def test_the_bundled_pipelines_use_the_public_api_only() -> None:
    """Only ``glue_replay`` itself, its public source implementations and its shared transform
    helpers: what a user's package may import too."""
    public = {
        "glue_replay",
        "glue_replay.sources.rest",
        "glue_replay.sources.jdbc",
        "glue_replay.transforms.common",
    }
    used = {
        str(path.relative_to(LIB)): sorted(
            name
            for name in _imports(path)
            if name.startswith("glue_replay") and not name.startswith("glue_replay_examples")
        )
        for path in _modules(EXAMPLES)
    }
    assert {m: [n for n in names if n not in public] for m, names in used.items()} == {
        m: [] for m in used
    }
