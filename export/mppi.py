"""MPPI (model-predictive path integral) planning through any batch dynamics function.

Numpy only, so the same planner runs on the robot over the ONNX runtime and at training time
over torch: all it needs is ``predict(params, states[K,S], actions[K,A]) -> next_states[K,S]``.
Samples can carry a fixed PD feedback term inside the rollouts (the "feedback prior"): the
sampled open-loop torques then only have to supply what the learned model knows and PD does not
(gravity, payload), which makes a 7-D torque space tractable with ~100 samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from export.tracking_cost import TrackingCost

PredictFn = Callable[[Sequence[np.ndarray], np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MPPIConfig:
    """Planner settings, shipped in ``bundle.json`` under ``planner``."""

    samples: int = 128
    horizon: int = 8
    noise_fraction: float = 0.1
    """Exploration noise std as a fraction of each action's half range."""
    temperature: float = 1.0
    """Softmax temperature on (cost − min cost), relative to the cost spread."""
    feedback_kp: tuple[float, ...] = ()
    """PD prior, per action: gain on (reference position − predicted position); empty for none."""
    feedback_kd: tuple[float, ...] = ()
    model_inverse: bool = False
    """Start each plan from the action that, through the (adapted) model's local linearisation,
    brings the velocities to where the PD prior wants them: computed torque with the learned model."""
    model_inverse_trust: float = 0.2
    """Bound on the model-inverse correction, as a fraction of each action's half range."""
    model_inverse_position_gain: float = 100.0
    """Desired acceleration per rad of position error (1/s²) for the stiffest joint; the others
    scale with their ``feedback_kp``. 400 with a velocity gain of 40 is critically damped at 20 rad/s."""
    model_inverse_velocity_gain: float = 20.0
    """Desired acceleration per rad/s of velocity error (1/s) for the stiffest joint."""
    model_inverse_integral_gain: float = 0.0
    """Desired acceleration per rad·s of integrated position error (1/s³) for the stiffest joint
    (0: none). What a model that is still slightly wrong leaves as a steady error (a payload the
    adapted model under-predicts) is integrated away; below gain × velocity gain (the PID's
    stability bound on a double integrator) it keeps the loop stable."""
    model_inverse_integral_limit_rad_s: float = 0.1
    """Anti-windup: each joint's integrated position error is clipped to ± this (rad·s)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.model_inverse_integral_gain >= 0.0:
            raise ValueError(
                f"planner.model_inverse_integral_gain={self.model_inverse_integral_gain} must be >= 0 (1/s³)"
            )
        if not self.model_inverse_integral_limit_rad_s > 0.0:
            raise ValueError(
                f"planner.model_inverse_integral_limit_rad_s={self.model_inverse_integral_limit_rad_s} must be > 0"
            )

    @classmethod
    def from_dict(cls, data: dict) -> MPPIConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("feedback_kp", "feedback_kd"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


class MPPIPlanner:
    """Warm-started MPPI: the mean action sequence is shifted by one step after each plan."""

    def __init__(
        self,
        config: MPPIConfig,
        cost: TrackingCost,
        action_low: np.ndarray,
        action_high: np.ndarray,
        period_s: float,
        feedback_state_index: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.config, self.cost, self.period_s = config, cost, period_s
        self.low, self.high = np.asarray(action_low, np.float64), np.asarray(action_high, np.float64)
        self.sigma = config.noise_fraction * (self.high - self.low) / 2.0
        self.feedback_state_index = feedback_state_index
        self.rng = np.random.default_rng(config.seed)
        self.reset()

    def reset(self) -> None:
        """Forget the warm start and the integrated position error (a new episode or task)."""
        self.mean = np.zeros((self.config.horizon, len(self.low)))
        self.position_error_integral_rad_s = np.zeros(len(self.config.feedback_kp))

    def plan(
        self, predict: PredictFn, params: Sequence[np.ndarray], state: np.ndarray, reference: np.ndarray
    ) -> np.ndarray:
        """The first action of the cost-weighted mean of sampled action sequences.

        The mean sequence is the open-loop part only; the PD prior (if any) is recomputed from
        the predicted state inside every rollout and for the returned first action.
        """
        k, h = self.config.samples, self.config.horizon
        noise = self.rng.standard_normal((k, h, len(self.low))) * self.sigma
        noise[0] = 0.0  # the current mean is always one candidate
        if self.config.model_inverse and self.feedback_state_index is not None:
            self.mean[0] = (
                self._model_inverse(predict, params, state, reference) - self._feedback(state[None, :], reference, 0)[0]
            )
        open_loop = self.mean[None, :, :] + noise
        targets = self.cost.reference_over_horizon(reference, h, self.period_s)
        states = np.repeat(state[None, :].astype(np.float32), k, axis=0)
        total = np.zeros(k)
        first_actions = None
        for t in range(h):
            action = open_loop[:, t] + self._feedback(states, reference, t)
            action = np.clip(action, self.low, self.high)
            if t == 0:
                first_actions = action
            states = predict(params, states, action.astype(np.float32))
            total += self.cost(states.astype(np.float64), targets[t], action)
        finite = np.isfinite(total)
        if not finite.any():
            raise FloatingPointError("MPPI: every rollout's cost is NaN or inf")
        total = np.where(finite, total, np.inf)
        spread = max(float(np.ptp(total[finite])), 1e-9)
        weights = np.exp(-(total - total[finite].min()) / (self.config.temperature * spread / 10.0))
        weights /= weights.sum()
        mean = np.einsum("k,kha->ha", weights, open_loop)
        self.mean = np.vstack([mean[1:], mean[-1:]])
        return np.clip(weights @ first_actions, self.low, self.high)

    def _model_inverse(
        self, predict: PredictFn, params: Sequence[np.ndarray], state: np.ndarray, reference: np.ndarray
    ) -> np.ndarray:
        """Least-squares action whose predicted next velocity is ``v + (PD acceleration)·dt``.

        The model is linearised around the current mean action by finite differences (one batched
        predict of A + 1 rows), so the learned gravity and payload terms are compensated directly.
        """
        position_index, velocity_index = self.feedback_state_index
        base = np.clip(self.mean[0] + self._feedback(state[None, :], reference, 0)[0], self.low, self.high)
        step = 0.05 * (self.high - self.low) / 2.0
        actions = np.repeat(base[None, :], len(base) + 1, axis=0)
        actions[1:] += np.diag(step)
        predicted = predict(params, np.repeat(state[None, :], len(base) + 1, axis=0), actions.astype(np.float32))
        velocities = predicted[:, velocity_index].astype(np.float64)
        jacobian = (velocities[1:] - velocities[0]).T / step[None, :]
        n = len(position_index)
        kp, kd = np.asarray(self.config.feedback_kp), np.asarray(self.config.feedback_kd)
        # The PD gains are in torque units; as accelerations use them relative to the stiffest joint's.
        position_gain = kp / kp.max() * self.config.model_inverse_position_gain
        velocity_gain = kd / kd.max() * self.config.model_inverse_velocity_gain
        reference_velocity = reference[n : 2 * n]
        error = reference[:n] - state[position_index] + reference_velocity * self.period_s
        acceleration = position_gain * error + velocity_gain * (reference_velocity - state[velocity_index])
        if self.config.model_inverse_integral_gain > 0.0:
            limit = self.config.model_inverse_integral_limit_rad_s
            integral = self.position_error_integral_rad_s + (reference[:n] - state[position_index]) * self.period_s
            self.position_error_integral_rad_s = np.clip(integral, -limit, limit)
            integral_gain = kp / kp.max() * self.config.model_inverse_integral_gain
            acceleration = acceleration + integral_gain * self.position_error_integral_rad_s
        desired = reference_velocity + acceleration * self.period_s
        delta, *_ = np.linalg.lstsq(jacobian + 1e-6 * np.eye(n), desired - velocities[0], rcond=None)
        # A linearisation is only trusted near where it was taken: bound the correction.
        trust = self.config.model_inverse_trust * (self.high - self.low) / 2.0
        return np.clip(base + np.clip(delta, -trust, trust), self.low, self.high)

    def _feedback(self, states: np.ndarray, reference: np.ndarray, t: int) -> np.ndarray | float:
        """PD prior toward the reference extrapolated ``t`` steps ahead (0 without a prior)."""
        if self.feedback_state_index is None or not self.config.feedback_kp:
            return 0.0
        position_index, velocity_index = self.feedback_state_index
        kp, kd = np.asarray(self.config.feedback_kp), np.asarray(self.config.feedback_kd)
        n = len(position_index)
        q_ref = reference[:n] + reference[n : 2 * n] * self.period_s * t
        return kp * (q_ref - states[:, position_index]) + kd * (reference[n : 2 * n] - states[:, velocity_index])


def build_tracking_planner(
    planner_settings: dict,
    joint_names: Sequence[str],
    state_fields: Sequence[str],
    reference_fields: Sequence[str],
    action_low: Sequence[float],
    action_high: Sequence[float],
    period_s: float,
) -> MPPIPlanner:
    """The tracking MPPI planner of a robot, built from its field names alone.

    Training (torch) and the robot (a bundle) both build their planner here, so the two can
    never disagree on the cost or on where the feedback prior finds joint positions and speeds.
    """
    config = MPPIConfig.from_dict(planner_settings)
    cost = TrackingCost.from_fields(state_fields, reference_fields)
    feedback_index = None
    if config.feedback_kp:
        positions = [list(state_fields).index(f"joint_states.position:{j}") for j in joint_names]
        velocities = [list(state_fields).index(f"joint_states.velocity:{j}") for j in joint_names]
        feedback_index = (np.asarray(positions), np.asarray(velocities))
    return MPPIPlanner(config, cost, np.asarray(action_low), np.asarray(action_high), period_s, feedback_index)
