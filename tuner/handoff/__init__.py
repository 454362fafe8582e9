"""The hand-off to production: `best.yaml` and `best.json` (`best_file`), and `tuner train`
(`production`), which trains from them without Ray."""
