"""The product's ASHA: Tune's asynchronous successive halving, seeded, and ranking each trial
at a rung against trials that train as long as it does.

Where a sweep searches ``num_train_epochs``, a trial planned for 1 epoch has, at any point,
gone further down its learning-rate schedule than one planned for 4, so at the same examples
trained it scores higher for that reason alone. Tune's ASHA ranks all trials at a rung
together, so it stops the longer runs first, the searcher learns from the short runs that
finish, and a search can settle on them. On the recorded DeBERTa curves, with the first rung at
1/32 of the budget, 9% of 300 searches never came within 0.2 points of the best in 100 full
runs with every length ranked together, and 3% with each ranked against its own
(docs/search.md). Here a trial is ranked against the trials of its own planned length once
``SAME_LENGTH_SCORES`` of them have reached the rung, and against every trial there until
then, so that a length tried rarely is not left unranked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.tune.schedulers import ASHAScheduler
from ray.tune.schedulers.async_hyperband import _Bracket

PLANNED_LENGTH = ("num_train_epochs", "max_steps")
"""The settings that fix how long a trial trains, where a sweep searches them."""
SAME_LENGTH_SCORES = 8
"""A rung ranks a trial against its own length's scores once it holds this many."""


class _LengthBracket(_Bracket):
    """One planned length's share of an ASHA bracket: its own scores at each rung, and the
    bracket's scores of every length (``pooled``), which it ranks against while its own are
    few."""

    def __init__(self, pooled: _Bracket, **options: Any) -> None:
        super().__init__(**options)
        self.pooled = pooled

    def cutoff(self, recorded: dict[str, float]) -> Any:
        if len(recorded) < SAME_LENGTH_SCORES:
            rung = next(i for i, (_, own) in enumerate(self._rungs) if own is recorded)
            recorded = self.pooled._rungs[rung][1]
        return super().cutoff(recorded)

    def on_result(self, trial: Any, cur_iter: int, cur_rew: float | None) -> str:
        # Tune's type says int; ASHA gives it fractional epochs and examples alike.
        action: str = super().on_result(trial, cur_iter, cur_rew)
        for (_, own), (_, pooled) in zip(self._rungs, self.pooled._rungs, strict=True):
            if trial.trial_id in own:
                pooled.setdefault(trial.trial_id, own[trial.trial_id])
        return action


class ProductASHA(ASHAScheduler):
    """Tune's ASHA, drawing each trial's bracket from a generator seeded by ``search.seed``
    rather than from NumPy's global one, so that a sweep's stopping decisions repeat; with
    ``same_length``, each rung ranks a trial against the trials of its own planned length."""

    def __init__(self, seed: int, same_length: bool, grace_period: float, **options: Any) -> None:
        # Tune's type says int; ASHA takes fractional epochs, as _asha passes them.
        super().__init__(grace_period=grace_period, **options)  # type: ignore[arg-type]
        self._bracket_rng = np.random.default_rng(seed)
        self._same_length = same_length
        self._grace_period = grace_period  # Tune's brackets keep only their rungs
        self._by_length: dict[tuple[Any, ...], list[_LengthBracket]] = {}

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        sizes = np.array([len(bracket._rungs) for bracket in self._brackets])
        weights = np.exp(sizes - sizes.max())  # ASHA's own odds: brackets with more rungs
        chosen = int(self._bracket_rng.choice(len(self._brackets), p=weights / weights.sum()))
        super().on_trial_add(tune_controller, trial)
        bracket: _Bracket = self._brackets[chosen]
        if self._same_length:
            bracket = self._length_brackets(trial.config)[chosen]
        self._trial_info[trial.trial_id] = bracket

    def _length_brackets(self, config: dict[str, Any]) -> list[_LengthBracket]:
        length = tuple(config.get(name) for name in PLANNED_LENGTH)
        if length not in self._by_length:
            self._by_length[length] = [
                _LengthBracket(
                    pooled,
                    min_t=self._grace_period,
                    max_t=self._max_t,
                    reduction_factor=self._reduction_factor,
                    s=s,
                    stop_last_trials=self._stop_last_trials,
                )
                for s, pooled in enumerate(self._brackets)
            ]
        return self._by_length[length]
