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
