"""The layout rules of the brief, checked: the core never imports Prefect; deps point one way."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import judgeflow

ROOT = Path(__file__).resolve().parents[1]


def test_importing_every_core_module_does_not_import_prefect() -> None:
    modules = sorted(m.name for m in pkgutil.walk_packages(judgeflow.__path__, "judgeflow."))
    assert len(modules) > 20
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'prefect' or m.startswith(('prefect.', 'flows', 'tasks')))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _imports(folder: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / folder).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
    return found


def test_tasks_never_import_flows_or_deployments() -> None:
    assert not {"flows", "deployments"} & _imports("tasks")


def test_core_never_imports_prefect_tasks_at_module_level() -> None:
    # judgeflow/cli/run.py imports flows inside its commands (the CLI is the outer edge);
    # nothing else in the core may name them at all.
    offenders = []
    for path in (ROOT / "judgeflow").rglob("*.py"):
        if path.parts[-2:] == ("cli", "run.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n.split(".")[0] in ("prefect", "prefect_aws", "flows", "tasks") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
