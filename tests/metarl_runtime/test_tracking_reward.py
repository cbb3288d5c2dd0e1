"""The robot's reward (numpy, from the bundle's copy of the env's ``reward_spec``) is the
environment's reward on real steps."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import sim  # noqa: F401  (registers the environment ids)
from metarl_runtime.tracking_reward import TrackingReward
from sim.husky_terrain import HUSKY
from sim.panda_payload import PANDA


@pytest.mark.parametrize(
    ("env_id", "robot", "tolerance"),
    [
        ("metarl/PandaPayload-v0", PANDA, 1e-12),
        # The Husky env subtracts in float32 before its float64 hypot.
        ("metarl/HuskyTerrain-v0", HUSKY, 1e-6),
    ],
    ids=["panda", "husky"],
)
def test_reward_spec_reproduces_the_environment_reward(env_id: str, robot, tolerance: float) -> None:
    env = gymnasium.make(env_id, episode_duration_s=1.0)
    spec = env.unwrapped.reward_spec.to_json()
    reward = TrackingReward(spec, robot.state_fields, robot.reference_fields, robot.action_dim)
    rng = np.random.default_rng(0)
    low, high = np.array(robot.action_low), np.array(robot.action_high)
    try:
        obs, _ = env.reset(seed=1)
        rewards = []
        for _ in range(25):
            # Beyond the limits too: the environment rewards the clipped command, as the robot sends it.
            action = (rng.uniform(-1.2, 1.2, size=len(low)) * high).astype(np.float32)
            obs, env_reward, _, _, _ = env.step(action)
            command = np.clip(action.astype(np.float64), low, high)
            state, reference = obs[: robot.state_dim], obs[robot.state_dim :]
            assert abs(reward(state, reference, command) - env_reward) <= tolerance, (env_reward, command)
            rewards.append(env_reward)
    finally:
        env.close()
    assert np.std(rewards) > 1e-3, "a constant reward would not test the formula"


def test_reward_spec_errors_name_what_is_missing() -> None:
    fields = (PANDA.state_fields, PANDA.reference_fields, PANDA.action_dim)
    with pytest.raises(ValueError, match=r"reward\.name='speed' is not one of"):
        TrackingReward({"name": "speed"}, *fields)
    with pytest.raises(ValueError, match=r"needs 'reward\.effort_limits'"):
        TrackingReward({"name": "joint_position_rms_effort_penalty", "effort_penalty": 1e-3}, *fields)
    with pytest.raises(ValueError, match=r"effort_limits must be 7 positive values"):
        TrackingReward(
            {"name": "joint_position_rms_effort_penalty", "effort_penalty": 1e-3, "effort_limits": [87.0]}, *fields
        )
    with pytest.raises(ValueError, match=r"needs state field 'odom\.twist\.linear\.x'"):
        TrackingReward({"name": "twist_tracking", "track_width_m": 0.5}, *fields)
