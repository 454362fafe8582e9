"""Which configurations to retrain, and what their seeds say.

A search ranks configurations on one noisy run each. The top ``k`` are trained again at their
full budget with ``n`` seeds (`tuner.retrain.runs`). The winner is the best *mean validation*
score; `select_winner` never sees a test score. Every retrained model is then scored once on the
held-out test split, which no search trial had (see `tuner.running.job.training_job`).
"""

from __future__ import annotations

import math
import warnings

from trainables.errors import UsageError
from tuner.results.folder import SweepRun
from tuner.results.ranking import TrialRow
from tuner.results.records import CONFIDENCE, Candidate, Interval, RetrainSummary, SeedRun, Tie
from tuner.spec.sweep import Mode


def select_candidates(run: SweepRun, top_k: int) -> list[TrialRow]:
    """The best ``top_k`` configurations: those that trained their full budget first.

    Raises:
        UsageError: no trial of the sweep completed.
    """
    if top_k < 1:
        raise UsageError(f"--top-k {top_k}: retrain at least one configuration (1 or more)")
    completed = [t for t in run.trials if t.outcome == "completed" and t.objective is not None]
    if not completed:
        raise UsageError(
            f"{run.run_dir}: no trial completed, so there is no configuration to retrain; "
            "run `tuner report` to see why, then sweep again"
        )
    stopped = [t for t in run.trials if t.outcome == "stopped" and t.objective is not None]
    return (completed + stopped)[:top_k]


def seed_values(base: int, count: int) -> list[int]:
    """``count`` seeds, starting at the sweep's training seed.

    Raises:
        UsageError: fewer than one seed asked for, or more than seeds go (below 2**32).
    """
    if count < 1:
        raise UsageError(f"--seeds {count}: retrain with at least one seed (1 or more)")
    if base + count > SEED_LIMIT:
        raise UsageError(
            f"--seeds {count}: seeds from training.seed {base} on would pass 2**32, the "
            f"largest seed numpy and torch take; ask for at most {max(SEED_LIMIT - base, 0)}"
        )
    return [base + offset for offset in range(count)]


SEED_LIMIT = 2**32


def held_out_metric(metric: str) -> str:
    """The test split's name for the objective: accuracy -> test_accuracy, eval_loss ->
    test_loss."""
    return "test_loss" if metric == "eval_loss" else f"test_{metric}"


def summarise(
    rows: list[TrialRow],
    candidates: list[TrialRow],
    seeds: list[int],
    metric: str,
    mode: Mode,
    seconds: float,
    experiment: str,
) -> RetrainSummary:
    """Per candidate: the seed runs and their intervals; then the winner and its ties."""
    test_metric = held_out_metric(metric)
    runs: dict[str, list[SeedRun]] = {row.trial_id: [] for row in candidates}
    for row in rows:
        last = row.history[-1] if row.history else {}
        planned = row.hyperparameters.get("run") or {}
        if row.outcome == "completed" and test_metric in last and planned.get("trial") in runs:
            runs[planned["trial"]].append(
                SeedRun(
                    seed=int(planned["seed"]),
                    validation=float(last[metric]),
                    test=float(last[test_metric]),
                    seconds=row.seconds,
                )
            )
    finished = {
        row.trial_id: _candidate(row, runs[row.trial_id], seeds)
        for row in candidates
        if runs[row.trial_id]
    }
    if not finished:
        raise UsageError(
            f"no retrained model finished (see the trials' error.txt under {experiment}/)"
        )
    order = select_winner({t: [r.validation for r in c.runs] for t, c in finished.items()}, mode)
    ranked = [finished[trial] for trial in order]
    return RetrainSummary(
        metric=metric,
        test_metric=test_metric,
        mode=mode,
        confidence=CONFIDENCE,
        seeds=seeds,
        candidates=ranked,
        ties=ties_with_winner(ranked),
        seconds=round(seconds, 1),
        experiment=experiment,
    )


def select_winner(validation: dict[str, list[float]], mode: Mode) -> list[str]:
    """Candidates best first by mean validation score; the test split plays no part.

    Ties on the mean are broken by the smaller spread, then by the order given (the
    search's).
    """
    sign = -1.0 if mode == "max" else 1.0

    def key(item: tuple[int, str]) -> tuple[float, float, int]:
        position, trial = item
        scores = validation[trial]
        return (sign * _mean(scores), _std(scores) or 0.0, position)

    return [trial for _, trial in sorted(enumerate(validation), key=key)]


def interval(scores: list[float], confidence: float = CONFIDENCE) -> Interval:
    """Student-t confidence interval of the mean of a few scores."""
    from scipy import stats

    mean, std, n = _mean(scores), _std(scores), len(scores)
    if std is None:
        return Interval(mean=mean, std=None, low=None, high=None, n=n)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Interval(mean=mean, std=std, low=mean - half, high=mean + half, n=n)


def ties_with_winner(ranked: list[Candidate], alpha: float = 1 - CONFIDENCE) -> list[Tie]:
    """Candidates whose validation scores a Welch t-test cannot separate from the winner's.

    With one seed there is no test: every runner-up counts as tied, since nothing shows
    otherwise.
    """
    from scipy import stats

    winner = [run.validation for run in ranked[0].runs]
    ties = []
    for candidate in ranked[1:]:
        other = [run.validation for run in candidate.runs]
        if len(winner) < 2 or len(other) < 2:
            p_value = 1.0
        elif _std(winner) == 0 and _std(other) == 0:
            p_value = 1.0 if _mean(winner) == _mean(other) else 0.0
        else:
            with warnings.catch_warnings():  # scipy's note on near-equal scores; p stands
                warnings.simplefilter("ignore", RuntimeWarning)
                p_value = float(stats.ttest_ind(winner, other, equal_var=False).pvalue)
        if p_value >= alpha:
            ties.append(Tie(trial=candidate.trial, p_value=round(p_value, 4)))
    return ties


def _candidate(row: TrialRow, runs: list[SeedRun], seeds: list[int]) -> Candidate:
    done = {run.seed for run in runs}
    return Candidate(
        trial=row.trial_id,
        hyperparameters=row.hyperparameters,
        runs=sorted(runs, key=lambda run: run.seed),
        failed_seeds=[seed for seed in seeds if seed not in done],
        validation=interval([run.validation for run in runs]),
        test=interval([run.test for run in runs]),
    )


def _mean(scores: list[float]) -> float:
    return sum(scores) / len(scores)


def _std(scores: list[float]) -> float | None:
    if len(scores) < 2:
        return None
    mean = _mean(scores)
    return math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1))
