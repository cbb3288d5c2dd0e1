"""The classic meta-RL benchmarks, with the suite's task API, for the policy-based meta-learners.

Importing ``sim`` imports this package, which registers:
- ``metarl/PointNavigation-v0``: MAML's 2-D point navigation to an unseen goal (pure numpy);
- ``metarl/HalfCheetahVelocity-v0``: the PyBullet half-cheetah holding an unseen signed velocity.

As the suite's robots, each ends its own episodes (no registered ``max_episode_steps``).
"""

from __future__ import annotations

import gymnasium

if "metarl/PointNavigation-v0" not in gymnasium.registry:
    gymnasium.register(
        id="metarl/PointNavigation-v0", entry_point="sim.meta_rl_tasks.point_navigation:PointNavigationEnv"
    )

if "metarl/HalfCheetahVelocity-v0" not in gymnasium.registry:
    gymnasium.register(
        id="metarl/HalfCheetahVelocity-v0", entry_point="sim.meta_rl_tasks.half_cheetah:HalfCheetahVelocityEnv"
    )
