"""The task API every environment of the suite shares (the learn2learn/garage convention).

PyBullet robots (``sim.pybullet_task_env``) and the pure-numpy meta-RL classics
(``sim.meta_rl_tasks``) both inherit it, so a meta-learner sees one surface whatever it trains
on: ``sample_tasks(n, rng, split)``, ``set_task(task)``, ``get_task()`` and the ``task``
property that vector environments set one value per worker through.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, Generic, TypeVar

import gymnasium as gym
import numpy as np

from sim.reward_spec import RewardSpec
from sim.tasks import SPLITS, Split, Task

TaskT = TypeVar("TaskT", bound=Task)


class TaskEnv(gym.Env, Generic[TaskT]):
    """An environment under a task distribution; subclasses say how a task changes a live episode."""

    task_type: type[TaskT]
    reward_spec: ClassVar[RewardSpec | None] = None
    """The reward's name and constants, which the env's own reward reads and a bundle ships for
    the robot to recompute it (``metarl_runtime.tracking_reward``); None where no bundle needs it."""

    def __init__(self) -> None:
        self._task: TaskT = self.task_type()
        self._live = False
        """True once ``reset`` has run: ``set_task`` then applies the task to the running episode."""

    def sample_tasks(self, n: int, rng: np.random.Generator, split: Split = "train") -> list[TaskT]:
        """``n`` tasks of ``split`` drawn with ``rng`` (a ``numpy.random.Generator``)."""
        if split not in SPLITS:
            raise ValueError(f"split={split!r} is not one of {SPLITS}")
        return [self.task_type.sample(rng, split) for _ in range(n)]

    def set_task(self, task: TaskT) -> None:
        """Validate and apply ``task``; what can change mid-episode changes at once."""
        if not isinstance(task, self.task_type):
            raise ValueError(f"set_task expects a {self.task_type.__name__}, got {type(task).__name__}")
        task.validate()
        self._task = task
        if self._live:
            self._apply_task_live(task)

    def get_task(self) -> TaskT:
        """The task truth, for oracles and plots (never part of the observation)."""
        return self._task

    @property
    def task(self) -> TaskT:
        """The current task; assigning it is ``set_task`` (how vector envs set one task per worker)."""
        return self._task

    @task.setter
    def task(self, task: TaskT) -> None:
        self.set_task(task)

    @abstractmethod
    def _apply_task_live(self, task: TaskT) -> None:
        """Make ``task`` take effect on the running episode (called only after a reset)."""
