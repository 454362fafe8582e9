"""The product's ASHA ranks a trial at a rung against trials of its own planned length."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ray.tune.schedulers import TrialScheduler

from tuner.search.asha import SAME_LENGTH_SCORES, ProductASHA


@dataclass
class _Trial:
    """What the scheduler reads of a Tune trial: its id and its configuration."""

    trial_id: str
    config: dict[str, Any] = field(default_factory=dict)


def _asha(same_length: bool = True) -> ProductASHA:
    return ProductASHA(
        seed=0,
        same_length=same_length,
        time_attr="epoch",
        metric="accuracy",
        mode="max",
        grace_period=0.25,
        max_t=4.0,
        reduction_factor=2,
    )


def _report(asha: ProductASHA, trial: _Trial, score: float, epoch: float = 0.25) -> str:
    return asha.on_trial_result(None, trial, {"epoch": epoch, "accuracy": score})


def _add(asha: ProductASHA, name: str, epochs: int) -> _Trial:
    trial = _Trial(name, {"num_train_epochs": epochs, "learning_rate": 1e-5})
    asha.on_trial_add(None, trial)
    return trial


def test_a_long_run_is_ranked_against_long_runs_once_there_are_enough():
    """One-epoch runs, further down their schedule, score higher at a quarter epoch; a 4-epoch
    run at the top of the 4-epoch runs goes on, where ranking all lengths together stops it."""
    outcomes = {}
    for same_length in (True, False):
        asha = _asha(same_length)
        for index in range(8):
            assert _report(asha, _add(asha, f"short{index}", 1), 0.80 + index / 1000) == "CONTINUE"
        longs = [_add(asha, f"long{index}", 4) for index in range(SAME_LENGTH_SCORES)]
        # Until 8 four-epoch scores are in, a long run is ranked against every length.
        first = [_report(asha, trial, 0.50 + index / 100) for index, trial in enumerate(longs)]
        assert first[0] == TrialScheduler.STOP
        outcomes[same_length] = _report(asha, _add(asha, "long_best", 4), 0.56)
    assert outcomes == {True: TrialScheduler.CONTINUE, False: TrialScheduler.STOP}


def test_a_weak_run_is_still_stopped_among_its_own_length():
    asha = _asha()
    longs = [_add(asha, f"long{index}", 4) for index in range(SAME_LENGTH_SCORES)]
    for index, trial in enumerate(longs):
        _report(asha, trial, 0.60 + index / 100)
    assert _report(asha, _add(asha, "long_weak", 4), 0.55) == TrialScheduler.STOP


def test_with_one_planned_length_it_decides_as_tunes_asha():
    """A sweep that does not search the length: the same decisions either way, rung by rung."""
    decisions = {}
    for same_length in (True, False):
        rng = np.random.default_rng(3)
        asha = _asha(same_length)
        made = []
        for index in range(40):
            trial = _Trial(f"t{index}", {"learning_rate": 1e-5})
            asha.on_trial_add(None, trial)
            for epoch in (0.25, 0.5, 1.0, 2.0):
                made.append(_report(asha, trial, float(rng.random()), epoch))
                if made[-1] == TrialScheduler.STOP:
                    break
        decisions[same_length] = made
    assert decisions[True] == decisions[False]
    assert TrialScheduler.STOP in decisions[True] and TrialScheduler.CONTINUE in decisions[True]
