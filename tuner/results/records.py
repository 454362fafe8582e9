"""The retrain's records, as ``retrain.json`` holds them: each seed's run, each candidate's
intervals, the winner and the candidates tied with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from trainables.errors import UsageError
from tuner.results.folder import first_problem, write_atomically
from tuner.spec.sweep import Mode

RETRAIN_FILE = "retrain.json"
CONFIDENCE = 0.95


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class SeedRun(Record):
    """One retrained model: a configuration trained with one seed."""

    seed: int
    validation: float
    test: float
    seconds: float


class Interval(Record):
    """Mean, sample standard deviation and a t confidence interval of a few scores."""

    mean: float
    std: float | None  # None with one score
    low: float | None
    high: float | None
    n: int


class Candidate(Record):
    """A configuration of the search, retrained with every seed."""

    trial: str
    hyperparameters: dict[str, Any]
    runs: list[SeedRun]
    failed_seeds: list[int]
    validation: Interval
    test: Interval


class Tie(Record):
    """A candidate whose validation scores cannot be told apart from the winner's."""

    trial: str
    p_value: float


class RetrainSummary(Record):
    """The outcome of retraining: candidates best first by mean validation score."""

    metric: str
    test_metric: str
    mode: Mode
    confidence: float
    seeds: list[int]
    candidates: list[Candidate]
    ties: list[Tie]
    seconds: float
    experiment: str

    @property
    def winner(self) -> Candidate:
        return self.candidates[0]

    def verdicts(self) -> list[tuple[int, Candidate, str]]:
        """Each candidate with its place and what the seeds say of it against the winner."""
        tied = {tie.trial: tie.p_value for tie in self.ties}
        verdicts = []
        for position, candidate in enumerate(self.candidates, start=1):
            if position == 1:
                verdict = "winner"
            elif candidate.trial in tied:
                verdict = (
                    f"statistically tied with the winner (Welch p={tied[candidate.trial]:.2f})"
                )
            else:
                verdict = "worse than the winner"
            if candidate.failed_seeds:
                verdict += f"; seeds {candidate.failed_seeds} failed"
            verdicts.append((position, candidate, verdict))
        return verdicts


def save_summary(run_dir: Path, summary: RetrainSummary) -> Path:
    path = run_dir / RETRAIN_FILE
    write_atomically(path, summary.model_dump_json(indent=2))
    return path


def load_summary(run_dir: Path) -> RetrainSummary | None:
    """The latest retrain of a run; None when the run was never retrained.

    Raises:
        UsageError: ``retrain.json`` is there but cannot be read, or is corrupt.
    """
    path = run_dir / RETRAIN_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UsageError(
            f"{path}: cannot be read ({error.strerror}); make it readable, or delete it to "
            "retrain again"
        ) from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is corrupt (not UTF-8 text); {_FIX}") from None
    try:
        return RetrainSummary.model_validate_json(text)
    except ValidationError as error:
        try:
            raw = json.loads(text)  # for the path to the field at fault
        except ValueError:
            raw = None
        raise UsageError(f"{path} is corrupt ({first_problem(error, raw)}); {_FIX}") from None


_FIX = "delete it to retrain again, or restore it"
