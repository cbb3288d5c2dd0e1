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

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from metarl_runtime.rigid_body import RigidBodyModel

RESIDUAL_INPUT_NAMES = ("sin_q", "cos_q", "velocity", "acceleration")
"""The residual model's raw inputs, per joint: ``[sin q, cos q, q̇, q̈]`` (4 · joints wide)."""
PAYLOAD_PARAMETER_NAMES = ("m", "mcx", "mcy", "mcz", "Ixx", "Ixy", "Ixz", "Iyy", "Iyz", "Izz")
"""A rigid payload on the last body: mass (kg), first moment m·c (kg·m) and rotational inertia
about the body's origin (kg·m²), in the last body's frame: the torques are linear in these."""
_PAYLOAD_BASIS = np.array(
    [
        # mass (kg), COM (m), inertia about the COM (xx, yy, zz, xy, xz, yz; in 0.01 kg·m²): ten
        # payloads whose (m, m c, I_origin) are linearly independent, so any payload is a
        # combination of them.
        (1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0, 0.0, 0.0, 0.0)),
        (1.0, (0.1, 0.0, 0.0), (1.0, 1.0, 1.0, 0.0, 0.0, 0.0)),
        (1.0, (0.0, 0.1, 0.0), (1.0, 1.0, 1.0, 0.0, 0.0, 0.0)),
        (1.0, (0.0, 0.0, 0.1), (1.0, 1.0, 1.0, 0.0, 0.0, 0.0)),
        (1.0, (0.0, 0.0, 0.0), (2.0, 1.0, 1.0, 0.0, 0.0, 0.0)),
        (1.0, (0.0, 0.0, 0.0), (1.0, 2.0, 1.0, 0.0, 0.0, 0.0)),
        (1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 2.0, 0.0, 0.0, 0.0)),
        (1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0, 0.3, 0.0, 0.0)),
        (1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0, 0.0, 0.3, 0.0)),
        (1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0, 0.0, 0.0, 0.3)),
    ],
    dtype=object,
)


def _inertia(diagonal_and_off: tuple[float, ...]) -> np.ndarray:
    xx, yy, zz, xy, xz, yz = diagonal_and_off
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def _payload_parameters(mass: float, com: np.ndarray, inertia_com: np.ndarray) -> np.ndarray:
    """The ten linear parameters (``PAYLOAD_PARAMETER_NAMES``) of a body given by mass, COM and
    inertia about its COM."""
    origin = inertia_com + mass * (np.dot(com, com) * np.eye(3) - np.outer(com, com))
    return np.array(
        [mass, *(mass * com), origin[0, 0], origin[0, 1], origin[0, 2], origin[1, 1], origin[1, 2], origin[2, 2]]
    )


class ResidualPairs(NamedTuple):
    """A window of residual data: model inputs ``(M, 4n)``, targets ``(M, n)`` (N·m) and the
    adaptation design ``(M, n, P)``: per transition, the torque each adapted parameter adds."""

    inputs: np.ndarray
    targets: np.ndarray
    design: np.ndarray


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
        self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray, with_design: bool = True
    ) -> ResidualPairs:
        """Residual inputs, targets (N·m) and adaptation design of consecutive transitions whose
        states are ``[q, q̇]``: the torque applied minus the nominal model's torque for the
        measured motion (``measured_motion``: sensors only).

        ``with_design=False`` leaves the design empty, ``(M, n, 0)``: only the physical rule
        solves over it, and its ten basis-payload inverse dynamics were four fifths of an RLS
        tick's time on the robot (``BENCHMARKS.md``, issue 17: the residual tick)."""
        q, qd, qdd = self.measured_motion(states, next_states)
        return self.pairs_from_motion(q, qd, qdd, actions, self.feedforward(q, qd, qdd, qd), with_design)

    def measured_motion(self, states: np.ndarray, next_states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(q, q̇, q̈)`` ``(M, n)`` float64 of transitions whose states are ``[q, q̇]``, the
        acceleration by differencing velocities over the control period."""
        n = self.dof
        states, next_states = (np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in (states, next_states))
        q, qd = states[:, :n], states[:, n : 2 * n]
        return q, qd, (next_states[:, n : 2 * n] - qd) / self.period_s

    def pairs_from_motion(
        self,
        q: np.ndarray,
        qd: np.ndarray,
        qdd: np.ndarray,
        actions: np.ndarray,
        nominal_torque: np.ndarray,
        with_design: bool = True,
    ) -> ResidualPairs:
        """``regression_pairs`` of measured motion whose nominal torque (``feedforward`` at
        ``(q, q̇, q̈, q̇)``) the caller has: the robot's controller computes it in one batch with
        its command's."""
        targets = np.asarray(actions, dtype=np.float64) - nominal_torque
        design = self.adaptation_design(q, qd, qdd, qd) if with_design else np.zeros((len(q), self.dof, 0))
        return ResidualPairs(residual_inputs(q, qd, qdd), targets.astype(np.float32), design.astype(np.float32))

    @property
    def design_width(self) -> int:
        """P: parameters of the physical adaptation (payload, damping and friction scale, bias)."""
        return len(PAYLOAD_PARAMETER_NAMES) + 3 * self.dof

    def payload_regressor(self, position: np.ndarray, velocity: np.ndarray, acceleration: np.ndarray) -> np.ndarray:
        """``Y (B, n, 10)``: the joint torques of a rigid payload on the last body are
        ``Y @ PAYLOAD_PARAMETER_NAMES`` (inverse dynamics is linear in a body's inertial
        parameters), by inverse dynamics of ten basis payloads alone (the arm massless)."""
        q, qd, qdd = (np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in (position, velocity, acceleration))
        model = self.model
        last = next(i for i in range(model.dof) if i not in model.parent)
        columns, basis = [], []
        for mass, com, inertia in _PAYLOAD_BASIS:
            com, inertia = np.asarray(com), _inertia(inertia) * 0.01
            masses, coms, inertias = np.zeros(model.dof), np.zeros((model.dof, 3)), np.zeros((model.dof, 3, 3))
            masses[last], coms[last], inertias[last] = mass, com, inertia
            alone = dataclasses.replace(model, mass_kg=masses, com_m=coms, inertia_com=inertias)
            columns.append(alone.inverse_dynamics(q, qd, qdd))
            basis.append(_payload_parameters(mass, com, inertia))
        torques = np.stack(columns, axis=2)  # (B, n, 10): the basis payloads' torques
        return torques @ np.linalg.inv(np.array(basis).T)

    def adaptation_design(
        self, position: np.ndarray, velocity: np.ndarray, acceleration: np.ndarray, friction_velocity: np.ndarray
    ) -> np.ndarray:
        """``(B, n, P)``: the torque per unit of each adapted parameter: the payload's ten, a change
        of each joint's damping (N·m·s/rad) and friction (N·m, signed by ``friction_velocity``) and
        a per-joint bias (N·m). Every one of them enters the torques linearly, so a window's least
        squares over them is exact for a payload of any mass, inside the training range or not."""
        qd = np.atleast_2d(np.asarray(velocity, dtype=np.float64))
        sign = np.tanh(np.atleast_2d(np.asarray(friction_velocity, dtype=np.float64)) / self.friction_smoothing_rad_s)
        eye = np.eye(self.dof)
        joint_terms = [
            eye * qd[:, :, None],
            eye * sign[:, :, None],
            np.broadcast_to(eye, (len(qd), self.dof, self.dof)),
        ]
        return np.concatenate([self.payload_regressor(position, velocity, acceleration), *joint_terms], axis=2)
