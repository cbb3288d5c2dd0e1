"""The model-based learner: GrBAL (a meta-learned dynamics model adapted by n gradient steps on
the last M transitions) and its closed-form RLS variant, with the MB, MB+DE and oracle baselines
and the MPPI controller over the adapted model. ``train`` and ``evaluate`` are its entry points,
as in ``metarl_core.policy``; ``adaptation`` holds the inner step."""
