"""Reading and validating a sweep file: YAML and overrides to a `SweepSpec`
(`sweep_file`), the checks that need a library, the data or the model (`checks`), and the one
entry that runs them all before Ray starts (`validate`)."""
