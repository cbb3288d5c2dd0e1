"""The classic meta-RL benchmarks, with the suite's task API, for the policy-based meta-learners.

Importing ``sim`` registers (by entry-point name, without importing this package):
- ``metarl/PointNavigation-v0``: MAML's 2-D point navigation to an unseen goal (pure numpy);
- ``metarl/HalfCheetahVelocity-v0``: the PyBullet half-cheetah holding an unseen signed velocity.

As the suite's robots, each ends its own episodes (no registered ``max_episode_steps``).
"""
