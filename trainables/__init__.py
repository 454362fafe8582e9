"""The training step and what it needs: labelled splits, tokenized features, a model, metrics.

Nothing here knows about Ray: `train_and_evaluate` trains one configuration and calls a
`report` callable at each evaluation. The sweep's Tune adapter, a retrain and a production run
all call the same function.
"""
