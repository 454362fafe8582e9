"""Fixtures of the hostile-input corpus, and its summary line at the end of a run:
``hostile corpus: clean N/M`` (cases answered as they should, of the cases run)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import tiny_sweep

HERE = "tests/hostile/"
_OUTCOMES: Counter[str] = Counter()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The folder a case's command runs in; relative paths of the input start here."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture(scope="session")
def shared_inputs(tiny_model: Path, sentiment_files: dict[str, Path]) -> list[Path]:
    """The model and data every sweep file names: no command may change them."""
    return [tiny_model, sentiment_files["train"].parent]


@pytest.fixture
def base_sweep(tiny_model: Path, sentiment_files: dict[str, Path], workdir: Path) -> dict[str, Any]:
    """A valid sweep over the tiny model and the sentiment files, its results in workdir."""
    return tiny_sweep(tiny_model, sentiment_files, workdir / "results")


@pytest.fixture(scope="session")
def base_for_generation(tiny_model: Path, sentiment_files: dict[str, Path]) -> dict[str, Any]:
    """The valid sweep that generated examples mutate (session-wide, as Hypothesis wants its
    fixtures); its results folder is relative, so each example's own working folder."""
    return tiny_sweep(tiny_model, sentiment_files, Path("results"))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.nodeid.startswith(HERE):
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if hasattr(report, "wasxfail"):
            _OUTCOMES["xfailed" if report.skipped else "xpassed"] += 1
        else:
            _OUTCOMES[report.outcome] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    total = sum(_OUTCOMES.values())
    if not total:
        return
    ran = total - _OUTCOMES["skipped"]
    parts = ", ".join(f"{count} {name}" for name, count in sorted(_OUTCOMES.items()))
    terminalreporter.write_sep(
        "-",
        f"hostile corpus: clean {_OUTCOMES['passed']}/{ran} ({parts}; xfailed = known "
        "product defects, see tests/hostile/README.md)",
    )
