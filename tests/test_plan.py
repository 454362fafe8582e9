"""`tuner plan`: each shape of the space probed on a trial's resources, the shapes that do not
fit in memory marked, and the sweep's compute forecast from the probes."""

from __future__ import annotations

import pytest
from rich.console import Console

from tests import test_out_of_memory
from tests.test_out_of_memory import BIG, SMALL, capped_sweep
from tuner.cli import EXIT_BAD_INPUT, main
from tuner.planning.forecast import Shape, expected_epochs
from tuner.planning.plan import plan_sweep_file
from tuner.planning.probe import shapes
from tuner.spec.sweep import SweepSpec

prompt_files = test_out_of_memory.prompt_files  # the fixture: 600 training prompts


def test_a_trial_trains_the_share_of_the_budget_that_halving_leaves_it(valid_sweep):
    valid_sweep["training"]["num_train_epochs"] = 4
    valid_sweep["scheduler"] = {"type": "asha", "grace_period": 1, "reduction_factor": 2}
    spec = SweepSpec.model_validate(valid_sweep)
    # Every trial to the rung at 1 epoch, half of them on to 2, a quarter to the end at 4.
    assert expected_epochs(spec, 240) == pytest.approx(1 + (2 - 1) / 2 + (4 - 2) / 4)
    valid_sweep["scheduler"] = {"type": "none"}
    assert expected_epochs(SweepSpec.model_validate(valid_sweep), 240) == 4


def test_the_shapes_are_every_batch_size_with_every_method(valid_sweep):
    valid_sweep["search_space"]["method"] = {
        "type": "method",
        "choices": {"full": None, "lora": {"lora_r": {"type": "categorical", "choices": [4, 8]}}},
    }
    found = shapes(SweepSpec.model_validate(valid_sweep))
    assert found == [Shape(16, "full"), Shape(16, "lora"), Shape(32, "full"), Shape(32, "lora")]


@pytest.mark.ray
@pytest.mark.usefixtures("ray_shutdown")
def test_a_plan_marks_the_shapes_that_do_not_fit_and_forecasts_the_rest(
    tiny_gpt,
    prompt_files,
    tmp_path,
    write_sweep,
    capsys,
):
    content = capped_sweep("plan", tiny_gpt, prompt_files, tmp_path / "results")
    content["data"]["split"] = {"test": 0.0}  # all 600 rows train
    content["training"]["num_train_epochs"] = 2
    content["search"] = {"num_trials": 6}
    content["scheduler"] = {"type": "asha", "grace_period": 1, "reduction_factor": 2}
    plan = plan_sweep_file(write_sweep(content), steps=3, console=Console(quiet=True))
    by_size = {m.shape.batch_size: m for m in plan.measured}
    assert by_size[SMALL].fits and by_size[SMALL].train_s_per_example > 0
    assert by_size[SMALL].peak_memory_mb > 0
    assert not by_size[BIG].fits and "out of memory (batch 512" in str(by_size[BIG].failed)
    forecast = plan.forecast
    assert forecast.epochs_per_trial == pytest.approx(1 + (2 - 1) / 2)
    assert forecast.unit == "core-hours" and forecast.retrain == (0.0, 0.0, 0.0)
    low, expected, high = forecast.search
    assert 0 < low <= expected <= high  # one shape fits: all three the same
    # 6 trials x 1.5 epochs x 600 rows at the small shape's pace, with its evaluations.
    small = by_size[SMALL]
    training = 6 * 1.5 * 600 * small.train_s_per_example / 3600
    assert expected >= training and expected < 2 * training + 1e-3

    content["search_space"]["per_device_train_batch_size"]["choices"] = [BIG]
    assert main(["plan", str(write_sweep(content)), "--steps", "3"]) == EXIT_BAD_INPUT
    assert "no shape of the space fits: out of memory (batch 512" in capsys.readouterr().err
