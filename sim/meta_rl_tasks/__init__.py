"""The classic meta-RL benchmarks, with the suite's task API, for the policy-based meta-learners.

Importing ``sim`` imports this package, which registers:
- ``metarl/PointNavigation-v0``: MAML's 2-D point navigation to an unseen goal (pure numpy);
- ``metarl/HalfCheetahVelocity-v0``: the PyBullet half-cheetah holding an unseen signed velocity.
"""

from __future__ import annotations

import gymnasium

from sim.meta_rl_tasks.half_cheetah import HALF_CHEETAH
from sim.meta_rl_tasks.point_navigation import HORIZON_STEPS

CHEETAH_EPISODE_S = 10.0

if "metarl/PointNavigation-v0" not in gymnasium.registry:
    gymnasium.register(
        id="metarl/PointNavigation-v0",
        entry_point="sim.meta_rl_tasks.point_navigation:PointNavigationEnv",
        max_episode_steps=HORIZON_STEPS,
    )

if "metarl/HalfCheetahVelocity-v0" not in gymnasium.registry:
    gymnasium.register(
        id="metarl/HalfCheetahVelocity-v0",
        entry_point="sim.meta_rl_tasks.half_cheetah:HalfCheetahVelocityEnv",
        max_episode_steps=round(CHEETAH_EPISODE_S * HALF_CHEETAH.control_rate_hz),
        kwargs={"episode_duration_s": CHEETAH_EPISODE_S, "control_rate_hz": HALF_CHEETAH.control_rate_hz},
    )
