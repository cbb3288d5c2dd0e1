"""``metarl/PointNavigation-v0``: MAML's 2-D navigation benchmark (Finn et al., ICML 2017, §5.3).

A point starts at the origin and moves by its (clipped) velocity command each step; the reward
is minus its distance to a goal it cannot see, so the goal must be found from rewards alone.
Matches the authors' code (``maml_examples/point_env_randgoal.py``): observation = position,
actions clipped to ±0.1 per axis, reward = −distance after the move, the episode ends when the
point is within 0.01 of the goal on both axes, or after 100 steps. Pure numpy: a step costs
microseconds, so meta-RL runs are limited by learning, not by simulation.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from sim.meta_rl_tasks.tasks import PointGoalTask
from sim.task_env import TaskEnv

MAX_STEP_M = 0.1
"""Largest move per axis and step (the action box)."""
GOAL_TOLERANCE_M = 0.01
"""The episode terminates when the point is this close to the goal on both axes."""
HORIZON_STEPS = 100


class PointNavigationEnv(TaskEnv[PointGoalTask]):
    """A 2-D point under velocity control; the task is its goal position."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    task_type = PointGoalTask

    def __init__(self, horizon_steps: int = HORIZON_STEPS) -> None:
        super().__init__()
        if horizon_steps < 1:
            raise ValueError(f"horizon_steps={horizon_steps} must be >= 1")
        self.max_episode_steps = horizon_steps
        self.action_space = gym.spaces.Box(-MAX_STEP_M, MAX_STEP_M, shape=(2,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self._position_m = np.zeros(2)
        self.elapsed_steps = 0

    def _apply_task_live(self, task: PointGoalTask) -> None:
        """Nothing to rebuild: the next reward already measures distance to the new goal."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._position_m = np.zeros(2)
        self.elapsed_steps = 0
        self._live = True
        return self._position_m.astype(np.float32), {}

    def step(self, action: np.ndarray):
        """Move by the clipped action; a non-finite or misshapen action is a ``ValueError``."""
        if not self._live:
            raise RuntimeError("step() before reset(): call reset() first")
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,):
            raise ValueError(f"action shape {action.shape} != (2,)")
        if not np.isfinite(action).all():
            raise ValueError(f"action contains NaN or inf: {action.tolist()}")
        self._position_m = self._position_m + np.clip(action, -MAX_STEP_M, MAX_STEP_M)
        self.elapsed_steps += 1
        dx = self._position_m[0] - self._task.goal_x_m
        dy = self._position_m[1] - self._task.goal_y_m
        distance_m = math.hypot(dx, dy)
        terminated = abs(dx) < GOAL_TOLERANCE_M and abs(dy) < GOAL_TOLERANCE_M
        truncated = not terminated and self.elapsed_steps >= self.max_episode_steps
        return self._position_m.astype(np.float32), -distance_m, terminated, truncated, {"distance_m": distance_m}
