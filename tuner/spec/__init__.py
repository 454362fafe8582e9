"""The sweep file's schema: every section as a typed, frozen object (`sweep`), and the search
space's entries (`space`). Below every other part of `tuner`; the sections the training step
reads live in `trainables.sections`."""
