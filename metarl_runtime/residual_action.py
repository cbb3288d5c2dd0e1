"""A policy's bounded correction over the nominal computed-torque controller, numpy only.

Why residual: a policy that outputs raw torques from scratch must first learn what the arm's
rigid-body model already knows (gravity, inertia, the tracking law), and within a short training
budget it does not (RL² −104, MAML-PPO −81 against the nominal controller's −6 on the Panda's
held-out payloads). Over the nominal controller the policy only has to learn what a payload,
damping and friction that are not nominal change, and a zero action *is* the nominal controller.

The applied torque is ``clip(τ_nom(obs) + b ⊙ clip(a, −1, 1), low, high)`` with ``b`` =
``residual_torque_fraction`` × each joint's effort limit, and the policy observes the tracking
error ``(q_ref − q, q̇_ref − q̇)`` after the observation. Training (the policy learners' residual
environment wrapper) and the robot (``metarl_runtime.recurrent_runtime``) both call this module,
so the transform the policy was trained through is the one the robot runs.
"""

from __future__ import annotations

import numpy as np

from metarl_runtime.residual_torque import NominalArm

ACTION_MODES = ("torque", "residual")
"""How a policy's normalised action becomes torques: scaled to the effort limits, or a bounded
correction over the nominal controller."""


def tracking_error_features(obs: np.ndarray, joints: int) -> np.ndarray:
    """``(B, 6 n)``: observations ``[q, q̇, q_ref, q̇_ref]`` followed by ``q_ref − q`` and
    ``q̇_ref − q̇``, what a residual policy sees (the error is what it corrects)."""
    obs = np.atleast_2d(np.asarray(obs, dtype=np.float32))
    if obs.shape[1] != 4 * joints:
        raise ValueError(f"observation width {obs.shape[1]} is not 4 × {joints} joints ([q, q̇, q_ref, q̇_ref])")
    error = obs[:, 2 * joints :] - obs[:, : 2 * joints]
    return np.concatenate([obs, error], axis=1)


class ResidualTorque:
    """Nominal computed torque plus the policy's bounded correction, for a batch of arms.

    Stateful as the nominal controller is (``sim.baseline_controllers.PandaPDGravityController``):
    the reference acceleration is the difference of consecutive reference velocities, zero at
    the first step after ``reset``.
    """

    def __init__(self, arm: NominalArm, fraction: float, low: np.ndarray, high: np.ndarray) -> None:
        """``fraction`` of each joint's effort limit (the larger of ``|low|``, ``high``, N·m)
        bounds the correction; ``low``/``high`` bound the applied torque."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"residual_torque_fraction={fraction!r} must be in (0, 1]")
        self.arm = arm
        self.low, self.high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        if self.low.shape != (arm.dof,) or self.high.shape != (arm.dof,):
            raise ValueError(f"torque limits of shape {self.low.shape}, {self.high.shape}, expected ({arm.dof},)")
        self.bound_nm = fraction * np.maximum(np.abs(self.low), np.abs(self.high))
        """The largest correction per joint, N·m."""
        self.reset()

    def reset(self) -> None:
        """A new episode: no previous reference velocity to difference."""
        self._previous_reference_velocity: np.ndarray | None = None

    def nominal(self, obs: np.ndarray) -> np.ndarray:
        """``(B, n)`` unclipped nominal computed torque (N·m) for observations ``[q, q̇, q_ref,
        q̇_ref]``; advances the reference-velocity memory, so call it once per control step."""
        n = self.arm.dof
        obs = np.atleast_2d(np.asarray(obs, dtype=np.float64))
        q, qd, q_ref, qd_ref = (obs[:, k * n : (k + 1) * n] for k in range(4))
        previous = self._previous_reference_velocity
        qdd_ref = np.zeros_like(qd_ref) if previous is None else (qd_ref - previous) / self.arm.period_s
        self._previous_reference_velocity = qd_ref
        qdd_desired = self.arm.desired_acceleration(q, qd, q_ref, qd_ref, qdd_ref)
        return self.arm.feedforward(q, qd, qdd_desired, qd_ref)

    def correction(self, action: np.ndarray) -> np.ndarray:
        """``(B, n)`` correction (N·m) of a normalised action, clipped to [-1, 1] first."""
        return self.bound_nm * np.clip(np.atleast_2d(np.asarray(action, dtype=np.float64)), -1.0, 1.0)

    def __call__(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        """``(B, n)`` torques to apply (N·m): nominal plus correction, within the limits."""
        return np.clip(self.nominal(obs) + self.correction(action), self.low, self.high)
