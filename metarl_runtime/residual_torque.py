"""Adaptive computed torque, the numpy half: the arm's nominal model and the residual's data.

The controller is ``τ = ID_nom(q, q̇, q̈_des) + D q̇ + F tanh(q̇_ref / ε) + r_θ'(q, q̇, q̈_des)``
with ``q̈_des = q̈_ref + Kp (q_ref − q) + Kd (q̇_ref − q̇)``: the nominal rigid-body model
(:mod:`metarl_runtime.rigid_body`) with the nominal joint damping D and Coulomb friction F does
what a hand-tuned computed-torque controller does, and the learned residual r_θ, adapted online,
supplies only what the nominal model does not know (a payload, friction and damping that are not
nominal). The residual is learned from sensors only: for each transition, the torque that was
applied minus what the nominal model says the measured motion needed,

    r = τ − ID_nom(q_t, q̇_t, q̈_t) − D q̇_t − F tanh(q̇_t / ε),   q̈_t = (q̇_{t+1} − q̇_t) / Δt.

Training (``metarl_core.model_based.residual_model``) and the robot
(``metarl_runtime.residual_controller``) build these pairs with the same functions, here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metarl_runtime.rigid_body import RigidBodyModel

RESIDUAL_INPUT_NAMES = ("sin_q", "cos_q", "velocity", "acceleration")
"""The residual model's raw inputs, per joint: ``[sin q, cos q, q̇, q̈]`` (4 · joints wide)."""


def residual_inputs(position: np.ndarray, velocity: np.ndarray, acceleration: np.ndarray) -> np.ndarray:
    """The residual model's raw input rows ``(B, 4 n)`` (float32) from ``(B, n)`` joint motion.

    Why sin and cos of the angles: gravity and inertia depend on the joints through them only, so
    the model needs no extrapolation in angle, and the features stay bounded."""
    q, qd, qdd = (np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in (position, velocity, acceleration))
    return np.concatenate([np.sin(q), np.cos(q), qd, qdd], axis=1).astype(np.float32)


@dataclass(frozen=True)
class NominalArm:
    """What an arm knows of itself without learning: its rigid-body model, nominal joint damping
    and friction, and the computed-torque gains (one home: the exporter copies the task suite's
    ``sim.baseline_controllers`` numbers into ``bundle.json``)."""

    model: RigidBodyModel
    damping_nms: np.ndarray
    """Viscous joint damping, N·m·s/rad, per joint."""
    friction_nm: np.ndarray
    """Coulomb joint friction, N·m, per joint."""
    friction_smoothing_rad_s: float
    """Speed over which the friction term changes sign (tanh), rad/s."""
    kp_per_s2: float
    """Position gain of the desired acceleration, 1/s²."""
    kd_per_s: float
    """Velocity gain of the desired acceleration, 1/s."""
    period_s: float
    """Control period: the step over which accelerations are differenced."""

    @property
    def dof(self) -> int:
        return self.model.dof

    def friction(self, velocity: np.ndarray) -> np.ndarray:
        """Nominal Coulomb friction (N·m), smoothly signed by ``velocity``."""
        return self.friction_nm * np.tanh(np.asarray(velocity, dtype=np.float64) / self.friction_smoothing_rad_s)

    def feedforward(
        self, position: np.ndarray, velocity: np.ndarray, acceleration: np.ndarray, friction_velocity: np.ndarray
    ) -> np.ndarray:
        """The nominal torque for a motion: rigid-body inverse dynamics, damping at ``velocity``,
        friction signed by ``friction_velocity`` (the reference's, on the robot: no chatter)."""
        return (
            self.model.inverse_dynamics(position, velocity, acceleration)
            + self.damping_nms * np.asarray(velocity, dtype=np.float64)
            + self.friction(friction_velocity)
        )

    def desired_acceleration(
        self,
        position: np.ndarray,
        velocity: np.ndarray,
        reference_position: np.ndarray,
        reference_velocity: np.ndarray,
        reference_acceleration: np.ndarray,
    ) -> np.ndarray:
        """``q̈_des = q̈_ref + Kp (q_ref − q) + Kd (q̇_ref − q̇)`` (rad/s²)."""
        return (
            reference_acceleration
            + self.kp_per_s2 * (reference_position - position)
            + self.kd_per_s * (reference_velocity - velocity)
        )

    def regression_pairs(
        self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Residual inputs ``(M, 4 n)`` and targets ``(M, n)`` (N·m) of consecutive transitions
        whose states are ``[q, q̇]``: the torque applied minus the nominal model's torque for the
        measured motion (acceleration by differencing velocities: sensors only)."""
        n = self.dof
        states, actions, next_states = (np.asarray(x, dtype=np.float64) for x in (states, actions, next_states))
        q, qd, qd_next = states[:, :n], states[:, n : 2 * n], next_states[:, n : 2 * n]
        qdd = (qd_next - qd) / self.period_s
        targets = actions - self.feedforward(q, qd, qdd, qd)
        return residual_inputs(q, qd, qdd), targets.astype(np.float32)
