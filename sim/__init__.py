"""PyBullet robots under task distributions, as gymnasium environments.

Importing ``sim`` registers ``metarl/PandaPayload-v0`` and ``metarl/HuskyTerrain-v0``, and the
classic meta-RL tasks of ``sim.meta_rl_tasks`` (``metarl/PointNavigation-v0``,
``metarl/HalfCheetahVelocity-v0``).
"""

from __future__ import annotations

from typing import Any

import gymnasium

import sim.physics_client

CONTROL_RATE_HZ = 100.0
PANDA_EPISODE_S = 5.0
HUSKY_EPISODE_S = 10.0


def _register(env_id: str, entry_point: str, episode_duration_s: float) -> None:
    """Register once: re-importing (e.g. in vector workers) must not warn about overrides."""
    if env_id in gymnasium.registry:
        return
    gymnasium.register(
        id=env_id,
        entry_point=entry_point,
        max_episode_steps=round(episode_duration_s * CONTROL_RATE_HZ),
        kwargs={"episode_duration_s": episode_duration_s},
    )


def make(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make`` whose time limit follows ``episode_duration_s`` when that is given.

    The registered ``max_episode_steps`` matches the default duration only; without this, a
    longer ``episode_duration_s`` would still be cut at the default by gymnasium's TimeLimit.
    The control rate is the registered ``control_rate_hz`` where an env has its own (the
    half-cheetah's 20 Hz), else the suite's 100 Hz.
    """
    if "episode_duration_s" in kwargs and "max_episode_steps" not in kwargs:
        rate_hz = kwargs.get("control_rate_hz", gymnasium.spec(env_id).kwargs.get("control_rate_hz", CONTROL_RATE_HZ))
        kwargs["max_episode_steps"] = round(kwargs["episode_duration_s"] * rate_hz)
    return gymnasium.make(env_id, **kwargs)


_register("metarl/PandaPayload-v0", "sim.panda_payload:PandaPayloadEnv", PANDA_EPISODE_S)
_register("metarl/HuskyTerrain-v0", "sim.husky_terrain:HuskyTerrainEnv", HUSKY_EPISODE_S)

# Last: the classic tasks' modules import the suite's own (sim.task_env, sim.robot_description).
import sim.meta_rl_tasks  # noqa: E402, F401  (registers their ids)
