"""How configurations are proposed and weak trials stopped: the Optuna searcher and the ASHA
scheduler built from the sweep file (`strategy`), where the scheduler's rungs sit (`rungs`), and
the Optuna study in its database (`study`)."""
