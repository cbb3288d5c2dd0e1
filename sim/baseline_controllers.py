"""The fixed, non-learned controllers every learned one is measured against.

They know the *nominal* robot only (no payload, nominal friction and ground), which is what a
hand-tuned controller on a real robot knows; how much they degrade across tasks is what shows
that the tasks matter.
"""

from __future__ import annotations

import numpy as np
import pybullet
import pybullet_data

from sim.husky_terrain import HUSKY
from sim.panda_payload import FINGER_OPENING_M, NOMINAL_DAMPING_NMS, NOMINAL_FRICTION_NM, PANDA, PANDA_URDF
from sim.physics_client import direct_client

PANDA_KP_PER_S2 = 100.0
"""Position gain of the computed-torque law (1/s²): a 10 rad/s closed-loop bandwidth."""
PANDA_KD_PER_S = 20.0
"""Velocity gain (1/s): critically damped with ``PANDA_KP_PER_S2``."""
FRICTION_SMOOTHING_RAD_S = 0.02
"""Reference speed over which the friction feed-forward changes sign."""


class PandaPDGravityController:
    """Computed-torque PD of the *nominal* arm: gravity, Coriolis and inertia compensated,
    reference acceleration fed forward.

    Dynamics come from inverse dynamics of a private, payload-free Panda model in its own
    PyBullet client: the controller never sees the simulated task, so a payload shows up as a
    tracking error it has no way to remove.
    """

    def __init__(self, kp_per_s2: float = PANDA_KP_PER_S2, kd_per_s: float = PANDA_KD_PER_S) -> None:
        self.kp, self.kd = kp_per_s2, kd_per_s
        self.period_s = 1.0 / PANDA.control_rate_hz
        self.model = direct_client()
        self.model.setAdditionalSearchPath(pybullet_data.getDataPath())
        self.model.setGravity(0.0, 0.0, -9.81)
        self.body = self.model.loadURDF(PANDA_URDF, useFixedBase=True, flags=pybullet.URDF_USE_INERTIA_FROM_FILE)
        self.low, self.high = np.array(PANDA.action_low), np.array(PANDA.action_high)
        self.observed = tuple(
            PANDA.observation_slice(kind)
            for kind in ("joint_states.position", "joint_states.velocity", "reference.position", "reference.velocity")
        )
        self.reset()

    def reset(self) -> None:
        """Forget the previous reference velocity (used to feed the reference acceleration forward)."""
        self.previous_reference_velocity: np.ndarray | None = None

    def inverse_dynamics(self, position: np.ndarray, velocity: np.ndarray, acceleration: np.ndarray) -> np.ndarray:
        """Joint torques (N·m) of the nominal arm for the given motion (fingers held still)."""
        q = [*position.tolist(), FINGER_OPENING_M, FINGER_OPENING_M]
        qd = [*velocity.tolist(), 0.0, 0.0]
        qdd = [*acceleration.tolist(), 0.0, 0.0]
        return np.asarray(self.model.calculateInverseDynamics(self.body, q, qd, qdd))[: PANDA.joint_count]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = obs.astype(np.float64)
        q, qd, q_ref, qd_ref = (obs[part] for part in self.observed)
        previous = self.previous_reference_velocity
        qdd_ref = np.zeros(PANDA.joint_count) if previous is None else (qd_ref - previous) / self.period_s
        self.previous_reference_velocity = qd_ref
        qdd_desired = qdd_ref + self.kp * (q_ref - q) + self.kd * (qd_ref - qd)
        # Nominal damping and Coulomb friction are known to a hand-tuned controller, so they are
        # compensated too (friction smoothly signed by the reference velocity, to avoid chatter).
        friction = NOMINAL_FRICTION_NM * np.tanh(qd_ref / FRICTION_SMOOTHING_RAD_S)
        torque = self.inverse_dynamics(q, qd, qdd_desired) + NOMINAL_DAMPING_NMS * qd + friction
        return np.clip(torque, self.low, self.high).astype(np.float32)

    def close(self) -> None:
        self.model.disconnect()


HUSKY_PI_KP = 1.0
"""The Husky PI baseline's proportional gain: twist correction per unit of twist error."""
HUSKY_PI_KI = 2.0
"""Its integral gain (1/s)."""


class HuskyPIController:
    """PI on the body twist, mapped to wheel speeds through the nominal diff-drive kinematics."""

    def __init__(self, kp: float = HUSKY_PI_KP, ki: float = HUSKY_PI_KI, integral_limit: float = 1.0) -> None:
        self.kp, self.ki, self.integral_limit = kp, ki, integral_limit
        self.period_s = 1.0 / HUSKY.control_rate_hz
        self.low, self.high = np.array(HUSKY.action_low), np.array(HUSKY.action_high)
        fields = HUSKY.state_fields + HUSKY.reference_fields
        self.twist_index = [fields.index(f"odom.twist.{q}") for q in ("linear.x", "angular.z")]
        self.reference_part = HUSKY.observation_slice("reference.twist")
        self.reset()

    def reset(self) -> None:
        self.integral = np.zeros(2)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        twist = obs[self.twist_index]  # vx (m/s), wz (rad/s)
        reference = obs[self.reference_part].astype(np.float64)
        error = reference - twist
        self.integral = np.clip(self.integral + error * self.period_s, -self.integral_limit, self.integral_limit)
        v, w = reference + self.kp * error + self.ki * self.integral
        radius, track = HUSKY.wheel_radius_m, HUSKY.track_width_m
        left, right = (v - w * track / 2.0) / radius, (v + w * track / 2.0) / radius
        return np.clip([left, right], self.low, self.high).astype(np.float32)
