"""The training step and what it needs: the sections of the sweep file it reads (`sections`),
the data read (`readers`), labelled and split (`data`), tokenized features (`features`), the
model (`modeling`), the fine-tuning method (`methods`), the tasks (`tasks`, one file each), the
scores (`metrics`), and the Trainer's callbacks (`callbacks`).

Nothing here knows about Ray or imports `tuner`: `train_and_evaluate` (`train`) trains one
configuration and calls a `report` callable at each evaluation. The sweep's Tune adapter, a
retrain and a production run all call the same function.
"""
