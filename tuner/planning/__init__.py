"""A plan before the launch: each shape of the space probed for a few steps (`probe`), and the
sweep's compute forecast from those measurements (`forecast`)."""
