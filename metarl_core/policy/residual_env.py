"""The environment a residual policy is trained in: the arm under its nominal controller.

A gymnasium wrapper (a cross-cutting concern, as the style guide has it) around a robot-suite
arm: its action space is the normalised correction ``[-1, 1]^n`` and its observation is the
arm's followed by the tracking error, both through ``metarl_runtime.residual_action``, the
module the robot runs. The wrapped environment still computes the reward from the torque applied.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from metarl_core.model_based.residual_train import panda_nominal
from metarl_runtime.residual_action import ResidualTorque, tracking_error_features


class ResidualTorqueEnv(gymnasium.Wrapper):
    """``step(a)`` applies ``ResidualTorque(obs, a)``; observations gain the tracking error."""

    def __init__(self, env: gymnasium.Env, fraction: float) -> None:
        super().__init__(env)
        robot = env.unwrapped.robot
        if robot.name != "panda":
            raise ValueError(f"action: residual needs the Panda's nominal model; env robot is '{robot.name}'")
        arm = panda_nominal().arm(robot.joint_names, 1.0 / robot.control_rate_hz)
        self.joints = robot.joint_count
        self.residual = ResidualTorque(arm, fraction, np.array(robot.action_low), np.array(robot.action_high))
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (self.joints,), dtype=np.float32)
        low, high = env.observation_space.low, env.observation_space.high
        unbounded = np.full(2 * self.joints, np.inf, dtype=np.float32)
        self.observation_space = gymnasium.spaces.Box(
            np.concatenate([low, -unbounded]), np.concatenate([high, unbounded]), dtype=np.float32
        )
        self._obs = np.zeros(4 * self.joints, dtype=np.float32)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.residual.reset()
        self._obs = obs
        return tracking_error_features(obs, self.joints)[0], info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        torque = self.residual(self._obs, action)[0].astype(np.float32)
        obs, reward, terminated, truncated, info = self.env.step(torque)
        self._obs = obs
        return tracking_error_features(obs, self.joints)[0], reward, terminated, truncated, info


def make_policy_env(env_id: str, action: str, residual_torque_fraction: float, **env_kwargs: Any) -> gymnasium.Env:
    """``env_id`` as a policy of ``action`` mode drives it (a module-level factory: picklable)."""
    env = gymnasium.make(env_id, **env_kwargs)
    return ResidualTorqueEnv(env, residual_torque_fraction) if action == "residual" else env
