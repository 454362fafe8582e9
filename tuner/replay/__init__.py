"""Replaying a search on recorded learning curves instead of training.

`curves` reads a file of finished runs and answers a proposed configuration with the curve of
the nearest recorded run; `clock` drives the sweep's own searcher and scheduler with those
answers on a simulated clock, many trials at once, so that hundreds of seeded searches take
minutes on a CPU. `tuner sweep` of a file with a ``replay`` section runs the same answers
through Ray Tune's own loop (`tuner.running.trial.replay_trial`).
"""
