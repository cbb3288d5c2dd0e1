"""What every PyBullet task environment shares: its own physics client, sub-stepping,
input checks and headless rendering (the task API comes from ``sim.task_env.TaskEnv``).

Each environment owns one ``BulletClient`` in ``p.DIRECT`` mode (never the global default
client), so many environments can live in one process or in vector workers.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import pybullet
import pybullet_data

from sim.physics_client import direct_client
from sim.robot_description import RobotDescription
from sim.task_env import TaskEnv, TaskT


class PyBulletTaskEnv(TaskEnv[TaskT]):
    """A robot under a task distribution; subclasses build the scene and read the sensors."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 25}
    robot: RobotDescription

    def __init__(
        self,
        physics_dt_s: float,
        control_rate_hz: float,
        episode_duration_s: float,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (320, 240),
    ) -> None:
        super().__init__()
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}: only 'rgb_array' (headless) is supported")
        substeps = round(1.0 / (control_rate_hz * physics_dt_s))
        if substeps < 1 or abs(substeps * physics_dt_s * control_rate_hz - 1.0) > 1e-9:
            raise ValueError(
                f"control_rate_hz={control_rate_hz} must divide the physics rate {1.0 / physics_dt_s:g} Hz"
            )
        self.physics_dt_s = physics_dt_s
        self.substeps = substeps
        self.control_rate_hz = control_rate_hz
        self.episode_duration_s = episode_duration_s
        self.max_episode_steps = round(episode_duration_s * control_rate_hz)
        self.render_mode = render_mode
        self.render_size = render_size
        self.client = direct_client()
        self.client.setAdditionalSearchPath(pybullet_data.getDataPath())
        self.client.setTimeStep(physics_dt_s)
        self.elapsed_steps = 0

    # -- gymnasium API ---------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._action_shape = (self.robot.action_dim,)
        self._action_low = np.asarray(self.robot.action_low, dtype=np.float64)
        self._action_high = np.asarray(self.robot.action_high, dtype=np.float64)
        self.elapsed_steps = 0
        self._reset_scene(self.np_random)
        self._live = True
        return self._observation(), {}

    def step(self, action: np.ndarray):
        """Apply ``action`` for one control period.

        A non-finite action raises ``ValueError`` before it reaches the physics (PyBullet would
        propagate NaN into the state); finite actions outside the box are clipped to it, as a
        motor driver saturates.
        """
        if not self._live:
            raise RuntimeError("step() before reset(): call reset() first")
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self._action_shape:
            raise ValueError(f"action shape {action.shape} != {self._action_shape}")
        if not np.isfinite(action).all():
            raise ValueError(f"action contains NaN or inf: {action.tolist()}")
        action = np.minimum(np.maximum(action, self._action_low), self._action_high)
        self._apply_action_and_simulate(action)
        self.elapsed_steps += 1
        obs = self._observation()
        error = self.tracking_error(obs)
        reward = self._reward(error, action)
        truncated = self.elapsed_steps >= self.max_episode_steps
        return obs, reward, False, truncated, {"tracking_error": error}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        width, height = self.render_size
        target, distance, yaw, pitch = self._camera()
        view = self.client.computeViewMatrixFromYawPitchRoll(target, distance, yaw, pitch, 0.0, 2)
        projection = self.client.computeProjectionMatrixFOV(60.0, width / height, 0.05, 20.0)
        _, _, rgba, _, _ = self.client.getCameraImage(
            width, height, view, projection, renderer=pybullet.ER_TINY_RENDERER
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client = None

    # -- what each robot provides -------------------------------------------------------
    @abstractmethod
    def _reset_scene(self, rng: np.random.Generator) -> None: ...

    @abstractmethod
    def _apply_action_and_simulate(self, action: np.ndarray) -> None: ...

    @abstractmethod
    def _observation(self) -> np.ndarray: ...

    @abstractmethod
    def _reward(self, tracking_error: float, action: np.ndarray) -> float:
        """Reward of a step given its tracking error (already computed) and the clipped action."""

    @abstractmethod
    def tracking_error(self, obs: np.ndarray) -> float:
        """How far the robot is from its reference, in the robot's own units."""

    @abstractmethod
    def _camera(self) -> tuple[list[float], float, float, float]:
        """Camera target (m), distance (m), yaw and pitch (deg) for ``render``."""
