"""Exploration for the first data: the task suite's fixed controller plus Gaussian noise.

Why not uniform random torques: on a torque-controlled arm they throw the joints against their
limits within a second, and the data then covers states the robot never visits while tracking.
The nominal controller keeps the arm near its reference, the noise excites the dynamics around
it, and the payload's effect shows in exactly the states the adaptive controller will see.
"""

from __future__ import annotations

import numpy as np

from sim.baseline_controllers import HuskyPIController, PandaPDGravityController
from sim.husky_terrain import HUSKY
from sim.panda_payload import PANDA

ROBOTS = {"panda": (PANDA, PandaPDGravityController), "husky": (HUSKY, HuskyPIController)}


class NoisyController:
    """``controller(obs) + N(0, (fraction · half range)²)``, clipped to the action limits."""

    def __init__(self, robot_name: str, noise_fraction: float, seed: int) -> None:
        if robot_name not in ROBOTS:
            raise ValueError(f"robot {robot_name!r} has no exploration controller; known: {sorted(ROBOTS)}")
        robot, controller_type = ROBOTS[robot_name]
        self.controller = controller_type()
        self.low, self.high = np.array(robot.action_low), np.array(robot.action_high)
        self.sigma = noise_fraction * (self.high - self.low) / 2.0
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        self.controller.reset()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        action = self.controller(obs) + self.rng.normal(size=len(self.low)) * self.sigma
        return np.clip(action, self.low, self.high).astype(np.float32)


def exploration_controller(robot_name: str, noise_fraction: float, seed: int) -> NoisyController:
    return NoisyController(robot_name, noise_fraction, seed)
