"""The Optuna study in a database: kept next to the results, continued, warm-started."""

from __future__ import annotations

import optuna
import pytest

from tests.conftest import sweep_in_process
from tuner.search.study import STUDY_FILE

pytestmark = pytest.mark.ray  # every test here runs on a real Ray instance or cluster


@pytest.fixture
def small(valid_sweep) -> dict:
    valid_sweep["training"]["num_train_epochs"] = 1
    valid_sweep["search"].update(num_trials=2, n_startup_trials=1)
    valid_sweep["scheduler"] = {"type": "none"}
    return valid_sweep


def test_a_study_is_kept_continued_and_warm_started(small, tmp_path):
    first = sweep_in_process(small)
    study = optuna.load_study(
        study_name=first.run_dir.name, storage=f"sqlite:///{first.run_dir / STUDY_FILE}"
    )
    assert len(study.trials) == 2
    assert sorted(t.value for t in study.trials) == sorted(t.objective for t in first.trials)

    # A named study in a shared database: a second sweep continues it.
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    small["search"].update(storage=shared, study_name="team")
    sweep_in_process(small)
    sweep_in_process(small)
    assert len(optuna.load_study(study_name="team", storage=shared).trials) == 4

    # Warm start: the best trial of the first sweep is in the new study before any proposal.
    del small["search"]["storage"], small["search"]["study_name"]
    small["search"].update(warm_start_from=str(first.run_dir), warm_start_top=1)
    warm = sweep_in_process(small)
    trials = optuna.load_study(
        study_name=warm.run_dir.name, storage=f"sqlite:///{warm.run_dir / STUDY_FILE}"
    ).trials
    best = first.trials[0]
    assert trials[0].params == {k: best.hyperparameters[k] for k in small["search_space"]}
    assert trials[0].value == pytest.approx(best.objective)
    assert len(trials) == 3  # the warm-start point, then this sweep's own two trials
