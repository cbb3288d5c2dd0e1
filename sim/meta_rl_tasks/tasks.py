"""Task distributions of the classic meta-RL benchmarks, as frozen dataclasses like ``sim.tasks``.

Here the task is the *goal*, not the physics: where the point must go, how fast and in which
direction the cheetah must run. Splits are disjoint by construction, as in the robot suite:
``interp`` owns a region carved out of the training range, ``extrap`` lies beyond it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from sim.tasks import SPLITS, Split, Task, uniform_excluding


@dataclass(frozen=True)
class PointGoalTask(Task):
    """Where the point must go (MAML §5.3: goals uniform in the square [-0.5, 0.5]²)."""

    goal_x_m: float = 0.0
    goal_y_m: float = 0.0

    FIELD_RANGES: ClassVar[dict[str, tuple[float, float]]] = {"goal_x_m": (-1.0, 1.0), "goal_y_m": (-1.0, 1.0)}
    TRAIN_HALF_WIDTH_M: ClassVar[float] = 0.5
    """Train and interp goals lie in the square of this half width (the MAML paper's)."""
    EXTRAP_HALF_WIDTH_M: ClassVar[float] = 1.0
    """Extrap goals lie in the square of this half width, outside the training square."""
    HELD_OUT_SECTOR_HALF_WIDTH_RAD: ClassVar[float] = math.radians(10.0)
    """Interp owns the four 20° sectors around the diagonals: held-out directions, training distances."""

    @classmethod
    def in_held_out_sector(cls, x: float, y: float) -> bool:
        """Whether the direction of (x, y) from the start lies within a diagonal sector of interp."""
        angle = math.atan2(y, x) % (math.pi / 2.0)
        return abs(angle - math.pi / 4.0) <= cls.HELD_OUT_SECTOR_HALF_WIDTH_RAD

    @classmethod
    def split_of(cls, x: float, y: float) -> Split:
        """The split a goal belongs to (each goal of the valid range belongs to exactly one)."""
        if max(abs(x), abs(y)) > cls.TRAIN_HALF_WIDTH_M:
            return "extrap"
        return "interp" if cls.in_held_out_sector(x, y) else "train"

    @classmethod
    def sample(cls, rng: np.random.Generator, split: Split) -> PointGoalTask:
        """Rejection sampling: uniform over the split's region (its area is ≥ 22 % of the box drawn from)."""
        if split not in SPLITS:
            raise ValueError(f"split={split!r} is not one of {SPLITS}")
        half = cls.EXTRAP_HALF_WIDTH_M if split == "extrap" else cls.TRAIN_HALF_WIDTH_M
        while True:
            x, y = rng.uniform(-half, half, size=2)
            if cls.split_of(float(x), float(y)) == split:
                return cls(goal_x_m=float(x), goal_y_m=float(y))


@dataclass(frozen=True)
class CheetahVelocityTask(Task):
    """The forward velocity the half-cheetah must hold: its sign is the direction (MAML's
    forward/backward task), its magnitude the speed (MAML's goal-velocity task)."""

    target_velocity_m_s: float = 1.0

    FIELD_RANGES: ClassVar[dict[str, tuple[float, float]]] = {"target_velocity_m_s": (-3.0, 3.0)}
    SPEED_TRAIN_M_S: ClassVar[tuple[float, float]] = (0.25, 1.5)
    SPEED_INTERP_M_S: ClassVar[tuple[float, float]] = (0.75, 1.0)
    SPEED_EXTRAP_M_S: ClassVar[tuple[float, float]] = (1.5, 2.5)

    @classmethod
    def sample(cls, rng: np.random.Generator, split: Split) -> CheetahVelocityTask:
        """Both directions in every split; speeds of train, interp and extrap never overlap."""
        if split == "train":
            speed = uniform_excluding(rng, *cls.SPEED_TRAIN_M_S, cls.SPEED_INTERP_M_S)
        elif split == "interp":
            speed = rng.uniform(*cls.SPEED_INTERP_M_S)
        elif split == "extrap":
            speed = float(np.nextafter(cls.SPEED_EXTRAP_M_S[0], np.inf)) + rng.uniform(0.0, 1.0 - 1e-9)
        else:
            raise ValueError(f"split={split!r} is not one of {SPLITS}")
        direction = 1.0 if rng.uniform() < 0.5 else -1.0
        return cls(target_velocity_m_s=float(direction * speed))
