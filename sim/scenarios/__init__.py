"""Changes mid-run and how to score them: the Panda's payload switch and the Husky's terrain change.

Each scenario owns its schedule and constants and computes its figures (error before, in the first
second after, at steady state, recovery time back to the error before) from an error trace, so the
evaluation, the demo, the benchmarks and the ROS session all measure the same thing.
"""
