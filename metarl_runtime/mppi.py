"""MPPI (model-predictive path integral) planning through any batch dynamics function.

Numpy only, so the same planner runs on the robot over the ONNX runtime and at training time
over torch: all it needs is ``predict(params, states[K,S], actions[K,A]) -> next_states[K,S]``.
Samples can carry a fixed PD feedback term inside the rollouts (the "feedback prior"): the
sampled open-loop torques then only have to supply what the learned model knows and PD does not
(gravity, payload), which makes a 7-D torque space tractable with ~100 samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from metarl_runtime.tracking_cost import TrackingCost

PredictFn = Callable[[Sequence[np.ndarray], np.ndarray, np.ndarray], np.ndarray]


class PlannerConfigError(ValueError):
    """A planner setting of the wrong type or out of range; the message names it (``planner.samples``)."""


PLANNER_SAMPLES_MAX = 65536
"""Most MPPI samples a bundle may ask for: one batch of the prediction graph per horizon step."""
PLANNER_HORIZON_MAX = 256
"""Most steps a bundle's MPPI rollouts may look ahead."""
PLANNER_GAIN_MAX = 1e6
"""Largest feedback or model-inverse gain accepted (far beyond any robot's)."""


@dataclass(frozen=True)
class MPPIConfig:
    """Planner settings, shipped in ``bundle.json`` under ``planner`` and read strictly from a
    training config's ``planner`` mapping: an unknown key, a wrong type or an out-of-range value
    is a :class:`PlannerConfigError` naming the field, never a silent default."""

    samples: int = 128
    """K: sampled action sequences per plan (1 to ``PLANNER_SAMPLES_MAX``)."""
    horizon: int = 8
    """H: steps each rollout looks ahead (1 to ``PLANNER_HORIZON_MAX``)."""
    noise_fraction: float = 0.1
    """Exploration noise std as a fraction of each action's half range (0 to 10)."""
    temperature: float = 1.0
    """Softmax temperature on (cost − min cost), relative to the cost spread (> 0)."""
    feedback_kp: tuple[float, ...] = ()
    """PD prior, per action: gain on (reference position − predicted position); empty for none."""
    feedback_kd: tuple[float, ...] = ()
    model_inverse: bool = False
    """Start each plan from the action that, through the (adapted) model's local linearisation,
    brings the velocities to where the PD prior wants them: computed torque with the learned model.
    Without a PD prior (a velocity-tracking robot such as the Husky): the action that, held over
    the horizon, brings the tracked states to the reference (``_held_action_inverse``)."""
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
    """Seeds the sampling noise (>= 0)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], prefix: str = "planner.") -> MPPIConfig:
        """Read settings strictly: every key known, every value of its type and in range.

        ``prefix`` is how a message names a field (``planner.samples``); lists become tuples.
        """
        if not isinstance(data, Mapping):
            raise PlannerConfigError(f"field '{prefix.rstrip('.')}' must be a mapping, got {type(data).__name__}")
        known = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise PlannerConfigError(f"unknown field '{prefix}{key}'; valid fields are {sorted(known)}")
            values[key] = _planner_value(f"{prefix}{key}", known[key], value)
        config = cls(**values)
        config.check_ranges(prefix)
        return config

    def check_ranges(self, prefix: str = "planner.", action_dim: int | None = None) -> None:
        """Raise :class:`PlannerConfigError` naming the first setting out of range; with
        ``action_dim``, the feedback gains must have one entry per action (or none)."""
        checks = {
            "samples": 1 <= self.samples <= PLANNER_SAMPLES_MAX,
            "horizon": 1 <= self.horizon <= PLANNER_HORIZON_MAX,
            "noise_fraction": 0.0 <= self.noise_fraction <= 10.0,
            "temperature": 0.0 < self.temperature <= 1e6,
            "model_inverse_trust": 0.0 <= self.model_inverse_trust <= 10.0,
            "model_inverse_position_gain": 0.0 <= self.model_inverse_position_gain <= PLANNER_GAIN_MAX,
            "model_inverse_velocity_gain": 0.0 <= self.model_inverse_velocity_gain <= PLANNER_GAIN_MAX,
            "model_inverse_integral_gain": 0.0 <= self.model_inverse_integral_gain <= PLANNER_GAIN_MAX,
            "model_inverse_integral_limit_rad_s": 0.0 < self.model_inverse_integral_limit_rad_s <= 1e3,
            "seed": self.seed >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise PlannerConfigError(f"field '{prefix}{name}'={getattr(self, name)!r} is out of range")
        for name in ("feedback_kp", "feedback_kd"):
            gains = getattr(self, name)
            if any(not 0.0 <= g <= PLANNER_GAIN_MAX for g in gains):
                raise PlannerConfigError(
                    f"field '{prefix}{name}'={list(gains)} must be gains in [0, {PLANNER_GAIN_MAX:g}]"
                )
        if len(self.feedback_kp) != len(self.feedback_kd):
            raise PlannerConfigError(
                f"fields '{prefix}feedback_kp' and '{prefix}feedback_kd' must have one length "
                f"({len(self.feedback_kp)} != {len(self.feedback_kd)})"
            )
        if action_dim is not None and self.feedback_kp and len(self.feedback_kp) != action_dim:
            raise PlannerConfigError(
                f"field '{prefix}feedback_kp' has {len(self.feedback_kp)} gains, expected one per action ({action_dim})"
            )
        # With a PD prior the model inverse scales its gains by the stiffest joint's; without one
        # it is the held-action inverse of a velocity-tracking robot, which needs no gains.
        if self.model_inverse and self.feedback_kp and (max(self.feedback_kp) <= 0 or max(self.feedback_kd) <= 0):
            raise PlannerConfigError(
                f"field '{prefix}model_inverse'=True needs positive '{prefix}feedback_kp' and '{prefix}feedback_kd' "
                "(or none at all)"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON/YAML values (tuples as lists), as ``bundle.json`` holds them."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}


def _planner_value(name: str, kind: str, value: Any) -> Any:
    """``value`` checked against the field's annotation (``int``, ``float``, ``bool`` or a
    tuple of floats); a finite number where a float is expected."""
    if kind == "bool":
        if not isinstance(value, bool):
            raise PlannerConfigError(f"field '{name}'={value!r} must be true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise PlannerConfigError(f"field '{name}'={value!r} must be an integer")
        return value
    if kind == "float":
        if not _is_finite_number(value):
            raise PlannerConfigError(f"field '{name}'={value!r} must be a finite number")
        return float(value)
    if not isinstance(value, (list, tuple)) or not all(_is_finite_number(v) for v in value):
        raise PlannerConfigError(f"field '{name}'={value!r} must be a list of finite numbers")
    return tuple(float(v) for v in value)


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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
        # As arrays once, not on each of the horizon's rollout steps; joint positions and
        # velocities as slices where they are contiguous (the Panda's), so the rollout's PD prior
        # reads views instead of gathering copies (the same values, so the same commands).
        self._feedback_kp, self._feedback_kd = np.asarray(config.feedback_kp), np.asarray(config.feedback_kd)
        self._feedback_columns = None
        if feedback_state_index is not None:
            self._feedback_columns = tuple(_as_slice(index) for index in feedback_state_index)
        self.rng = np.random.default_rng(config.seed)
        self._next_noise: np.ndarray | None = None
        """The next plan's sampling noise when :meth:`draw_noise` drew it ahead of the plan."""
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
        noise = self._next_noise if self._next_noise is not None else self._sample_noise()
        self._next_noise = None
        if self.config.model_inverse and self.feedback_state_index is not None:
            self.mean[0] = (
                self._model_inverse(predict, params, state, reference) - self._feedback(state[None, :], reference, 0)[0]
            )
        elif self.config.model_inverse:
            self.mean[:] = self._held_action_inverse(predict, params, state, reference)
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

    def draw_noise(self) -> None:
        """Draw the next plan's sampling noise now, so that plan does not (the robot calls this
        once a command is out, off the next tick's critical path). The same draws in the same
        order as :meth:`plan` makes itself, so the same plans; a second call before the plan
        draws nothing more."""
        if self._next_noise is None:
            self._next_noise = self._sample_noise()

    def _sample_noise(self) -> np.ndarray:
        noise = self.rng.standard_normal((self.config.samples, self.config.horizon, len(self.low))) * self.sigma
        noise[0] = 0.0  # the current mean is always one candidate
        return noise

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

    def _held_action_inverse(
        self, predict: PredictFn, params: Sequence[np.ndarray], state: np.ndarray, reference: np.ndarray
    ) -> np.ndarray:
        """Damped least-squares action that, held over the horizon, brings the tracked states to
        the reference at its end, through the (adapted) model: the prior of a velocity-tracking robot.

        Why over the horizon and not one step (as ``_model_inverse``): a commanded wheel speed
        moves the body twist only through the motors' and ground's lag, so the one-step
        sensitivity is tiny and its inverse all noise; after ``horizon`` steps it is the
        steady-state gain that slip, payload and weak motors change. Finite differences of a
        quarter of each action's half range around the current mean's first action (one batched
        rollout of A + 1 rows), damped by a tenth of the mean squared sensitivity. An adapted model
        fitted on a short window can be wrong away from it, so the step is kept only if the model
        itself predicts that holding it lands nearer the reference than holding the mean does
        (one more rollout); otherwise the mean is kept.
        """
        base = np.clip(self.mean[0], self.low, self.high)
        step = 0.25 * (self.high - self.low) / 2.0
        actions = np.repeat(base[None, :], len(base) + 1, axis=0)
        actions[1:] += np.diag(step)
        target = self.cost.reference_over_horizon(reference, self.config.horizon, self.period_s)[-1]
        tracked = self._held_rollout(predict, params, state, actions)
        jacobian = (tracked[1:] - tracked[0]).T / step[None, :]
        normal = jacobian.T @ jacobian
        damping = 0.1 * np.trace(normal) / len(base) + 1e-12
        delta = np.linalg.solve(normal + damping * np.eye(len(base)), jacobian.T @ (target - tracked[0]))
        trust = self.config.model_inverse_trust * (self.high - self.low) / 2.0
        candidate = np.clip(base + np.clip(delta, -trust, trust), self.low, self.high)
        landed = self._held_rollout(predict, params, state, candidate[None, :])[0]
        if np.sum((landed - target) ** 2) >= np.sum((tracked[0] - target) ** 2):
            return base
        return candidate

    def _held_rollout(
        self, predict: PredictFn, params: Sequence[np.ndarray], state: np.ndarray, actions: np.ndarray
    ) -> np.ndarray:
        """Tracked states after holding each row of ``actions`` for the horizon from ``state``."""
        held = actions.astype(np.float32)
        states = np.repeat(state[None, :].astype(np.float32), len(held), axis=0)
        for _ in range(self.config.horizon):
            states = predict(params, states, held)
        return states[:, self.cost.state_index].astype(np.float64)

    def _feedback(self, states: np.ndarray, reference: np.ndarray, t: int) -> np.ndarray | float:
        """PD prior toward the reference extrapolated ``t`` steps ahead (0 without a prior)."""
        if self.feedback_state_index is None or not self.config.feedback_kp:
            return 0.0
        position_index, velocity_index = self._feedback_columns
        kp, kd = self._feedback_kp, self._feedback_kd
        n = len(self.feedback_state_index[0])
        q_ref = reference[:n] + reference[n : 2 * n] * self.period_s * t
        return kp * (q_ref - states[:, position_index]) + kd * (reference[n : 2 * n] - states[:, velocity_index])


def _as_slice(index: np.ndarray) -> slice | np.ndarray:
    """``index`` as the slice it spans when it is a run of consecutive columns, else as it is."""
    index = np.asarray(index)
    if len(index) and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
        return slice(int(index[0]), int(index[0]) + len(index))
    return index


def build_tracking_planner(
    planner_settings: Mapping[str, Any],
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
