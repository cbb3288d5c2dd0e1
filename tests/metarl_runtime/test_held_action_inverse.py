"""The planner's prior for a velocity-tracking robot (no PD prior): the action that, held over the
horizon, brings the model's predicted twist to the reference (damped, so reached over a few
plans). Checked on a linear first-order diff-drive model, where the answer is known in closed form."""

from __future__ import annotations

import itertools

import numpy as np

from metarl_runtime.mppi import build_tracking_planner
from sim.husky_terrain import HUSKY

HORIZON = 8
LAG = 0.5
"""Fraction of the twist kept per step: next = LAG · twist + (1 − LAG) · gain · kinematic twist."""


def linear_husky(gain: float):
    """A predict function: body twist lags toward ``gain`` × the wheels' kinematic twist."""

    def predict(params, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        left, right = actions[:, 0].astype(np.float64), actions[:, 1].astype(np.float64)
        linear = HUSKY.wheel_radius_m * (left + right) / 2.0
        angular = HUSKY.wheel_radius_m * (right - left) / HUSKY.track_width_m
        out = states.astype(np.float64).copy()
        out[:, 0] = LAG * states[:, 0] + (1 - LAG) * gain * linear
        out[:, 2] = LAG * states[:, 2] + (1 - LAG) * gain * angular
        return out.astype(np.float32)

    return predict


def planner():
    settings = {
        "samples": 16,
        "horizon": HORIZON,
        "noise_fraction": 1e-9,
        "model_inverse": True,
        "model_inverse_trust": 1.0,
    }
    return build_tracking_planner(
        settings,
        HUSKY.joint_names,
        HUSKY.state_fields,
        HUSKY.reference_fields,
        HUSKY.action_low,
        HUSKY.action_high,
        HUSKY.control_period_s,
    )


def converged_action(predict, reference: np.ndarray, ticks: int = 40) -> np.ndarray:
    """The planner's action after ``ticks`` plans from one state: the damped prior's fixed point."""
    planner_ = planner()
    state = np.zeros(HUSKY.state_dim, dtype=np.float32)
    for _ in range(ticks):
        action = planner_.plan(predict, [], state, reference)
    return action


def held_twist(predict, action: np.ndarray) -> np.ndarray:
    state = np.zeros((1, HUSKY.state_dim), dtype=np.float32)
    for _ in range(HORIZON):
        state = predict([], state, action[None, :].astype(np.float32))
    return state[0, [0, 2]]


def test_prior_action_reaches_the_reference_at_the_horizon() -> None:
    reference = np.array([0.4, 0.3])
    predict = linear_husky(gain=1.0)
    action = converged_action(predict, reference)
    np.testing.assert_allclose(held_twist(predict, action), reference, rtol=1e-3, atol=1e-4)


def test_each_plan_moves_toward_the_reference_never_away() -> None:
    reference, predict = np.array([0.4, 0.3]), linear_husky(gain=1.0)
    planner_, state = planner(), np.zeros(HUSKY.state_dim, dtype=np.float32)
    misses = []
    for _ in range(5):
        misses.append(np.linalg.norm(held_twist(predict, planner_.plan(predict, [], state, reference)) - reference))
    assert all(later < earlier for earlier, later in itertools.pairwise(misses))


def test_a_weaker_model_asks_for_proportionally_faster_wheels() -> None:
    """What adaptation buys: a model that has learned the wheels slip by half commands twice the speed."""
    reference = np.array([0.3, -0.2])
    nominal = converged_action(linear_husky(1.0), reference)
    slipping = converged_action(linear_husky(0.5), reference)
    np.testing.assert_allclose(slipping, 2.0 * nominal, rtol=1e-3)


def test_prior_stays_inside_the_action_limits() -> None:
    action = converged_action(linear_husky(0.05), np.array([0.8, 0.0]))
    assert np.all(action <= np.asarray(HUSKY.action_high)) and np.all(action >= np.asarray(HUSKY.action_low))
    np.testing.assert_allclose(action, HUSKY.action_high, rtol=1e-6)
