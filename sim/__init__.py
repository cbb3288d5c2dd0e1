"""PyBullet robots under task distributions, as gymnasium environments.

Importing ``sim`` registers ``metarl/PandaPayload-v0`` and ``metarl/HuskyTerrain-v0``, and the
classic meta-RL tasks of ``sim.meta_rl_tasks`` (``metarl/PointNavigation-v0``,
``metarl/HalfCheetahVelocity-v0``); build them with ``gymnasium.make``.

Each environment ends its own episodes (``truncated`` once ``episode_duration_s`` of control
periods have run) and none is registered with ``max_episode_steps``: the duration is part of the
task, since an env tabulates its reference over it, so a gymnasium ``TimeLimit`` would be a
second copy of that number to keep in step with every ``episode_duration_s`` a caller passes.
"""

from __future__ import annotations

import gymnasium
from gymnasium.envs.registration import load_env_creator

import sim.physics_client  # noqa: F401  (first: PyBullet imported with its C-level prints silenced)


def _register(env_id: str, entry_point: str) -> None:
    """Register once: re-importing (e.g. in vector workers) must not warn about overrides."""
    if env_id not in gymnasium.registry:
        gymnasium.register(id=env_id, entry_point=entry_point)


def registered_env_class(env_id: str) -> type[gymnasium.Env]:
    """The class registered as ``env_id``, imported but not instantiated (no simulator starts):
    where the facts an env declares on its class (``robot``, ``reward_spec``) are read from."""
    return load_env_creator(gymnasium.spec(env_id).entry_point)


_register("metarl/PandaPayload-v0", "sim.panda_payload:PandaPayloadEnv")
_register("metarl/HuskyTerrain-v0", "sim.husky_terrain:HuskyTerrainEnv")
# The classic meta-RL tasks (sim.meta_rl_tasks) are registered by name only: importing them here
# would make sim and sim.meta_rl_tasks import each other (their modules build on sim's own).
_register("metarl/PointNavigation-v0", "sim.meta_rl_tasks.point_navigation:PointNavigationEnv")
_register("metarl/HalfCheetahVelocity-v0", "sim.meta_rl_tasks.half_cheetah:HalfCheetahVelocityEnv")
