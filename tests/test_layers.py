"""Layers point one way: the training step (`trainables`) never imports the driver (`tuner`)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

TRAINABLES = Path(__file__).resolve().parents[1] / "trainables"


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_trainables_import_nothing_from_tuner():
    upward = {
        f"{path.name}: {name}"
        for path in sorted(TRAINABLES.glob("*.py"))
        for name in _imported(path)
        if name == "tuner" or name.startswith("tuner.")
    }
    assert not upward, f"the training step imports the driver: {sorted(upward)}"


def test_the_training_step_loads_without_the_driver():
    """Importing the training step, with all it imports, loads no module of `tuner`."""
    code = (
        "import sys, trainables.train, trainables.data, trainables.modeling, trainables.methods;"
        "print(sorted(m for m in sys.modules if m == 'tuner' or m.startswith('tuner.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]", loaded


ROOT = TRAINABLES.parent


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's contracts (pyproject.toml) over the packages under ``root``."""
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), "--config", str(root / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


def test_the_layer_contracts_hold():
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_upward_import_breaks_the_contracts(tmp_path):
    """The contracts can fail: a copy of the code in which the training step imports the
    driver, and the results folder imports Ray, is refused on both counts."""
    import shutil

    for package in ("tuner", "trainables"):
        shutil.copytree(ROOT / package, tmp_path / package)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "trainables" / "sections.py").open("a") as file:
        file.write("\nimport tuner.pipeline  # upward\n")
    with (tmp_path / "tuner" / "results" / "folder.py").open("a") as file:
        file.write("\nimport ray.tune  # results read without Ray\n")
    done = _lint_imports(tmp_path)
    assert done.returncode != 0
    assert "trainables is not allowed to import tuner.pipeline" in done.stdout, done.stdout
    assert "tuner.results is not allowed to import ray" in done.stdout, done.stdout


def test_a_unit_test_cannot_start_ray():
    """Tests that start Ray carry the `ray` marker (`-m 'not ray'` runs the unit tests alone);
    an unmarked one is stopped at `ray.init` (see conftest.py)."""
    import pytest
    import ray

    with pytest.raises(
        RuntimeError, match=r"starts Ray but is not marked: mark it @pytest.mark.ray"
    ):
        ray.init(address="local", num_cpus=1, include_dashboard=False)
    assert not ray.is_initialized()
