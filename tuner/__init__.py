"""Hyperparameter search for fine-tuning transformer models: one YAML file in, a ranked sweep out.

The data flows: sweep file -> `tuner.spec` (typed, validated) -> `trainables` (data, model,
training step) -> `tuner.sweep` (Ray Tune + Optuna + ASHA) -> `tuner.ranking` (the result).
"""

__version__ = "0.1.0"
