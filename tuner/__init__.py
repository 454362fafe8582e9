"""Hyperparameter search for fine-tuning transformer models: one YAML file in, a ranked sweep out.

The stages, each a subpackage, in the order a sweep runs them: `validation` reads and checks
the sweep file (whose schema is `spec`), `search` builds the Optuna searcher and the ASHA
scheduler, `running` runs the trials on Ray Tune (`replay` answers them from recorded curves
instead), `results` reads and ranks them, `retrain` retrains the best over seeds, `reports`
writes what people read and `handoff` writes ``best.yaml`` for production training.
`pipeline` runs them in order; `cli` is the ``tuner`` command on top of it. The training step
itself, free of Ray, is the `trainables` package.
"""

__version__ = "0.1.0"
