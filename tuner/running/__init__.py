"""Running on Ray: joining or starting the cluster (`cluster`), the data and model every trial
shares (`job`), Tune's run and resume (`tune_run`), the trial adapter around the training step
(`trial`), borrowing idle cores (`borrowing`) and the live progress lines (`progress`)."""
