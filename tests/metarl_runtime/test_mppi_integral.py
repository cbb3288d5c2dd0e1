"""The model-inverse integral term: a load the model does not know leaves no steady error."""

from __future__ import annotations

import numpy as np
import pytest

from metarl_runtime.mppi import MPPIConfig, MPPIPlanner, build_tracking_planner

PERIOD_S = 0.01
JOINTS = ("a", "b")
STATE_FIELDS = [f"joint_states.position:{j}" for j in JOINTS] + [f"joint_states.velocity:{j}" for j in JOINTS]
REFERENCE_FIELDS = [f"reference.position:{j}" for j in JOINTS] + [f"reference.velocity:{j}" for j in JOINTS]
LOAD_NM = np.array([-3.0, 2.0])
"""Torque on the true joints that the model leaves out (a payload it has not adapted to)."""


def double_integrator(states: np.ndarray, actions: np.ndarray, load_nm: np.ndarray) -> np.ndarray:
    """Unit-inertia joints: one explicit Euler step of q̈ = τ + load."""
    velocities = states[:, 2:] + (actions + load_nm) * PERIOD_S
    return np.concatenate([states[:, :2] + velocities * PERIOD_S, velocities], axis=1).astype(np.float32)


def steady_error_rad(integral_gain: float, ticks: int = 1200) -> float:
    """Mean |position error| over the last 100 ticks of holding a fixed reference."""
    planner = _planner(integral_gain)
    model = lambda _params, states, actions: double_integrator(states, actions, np.zeros(2))  # noqa: E731
    reference = np.array([0.3, -0.2, 0.0, 0.0])
    state = np.zeros((1, 4), dtype=np.float32)
    errors = []
    for _ in range(ticks):
        action = planner.plan(model, [], state[0], reference)
        state = double_integrator(state, action[None, :], LOAD_NM)
        errors.append(np.abs(reference[:2] - state[0, :2]))
    return float(np.mean(errors[-100:]))


def _planner(integral_gain: float) -> MPPIPlanner:
    """A noise-free model-inverse planner over the two joints."""
    return build_tracking_planner(
        {
            "samples": 16,
            "horizon": 3,
            "noise_fraction": 0.0,
            "model_inverse": True,
            "model_inverse_position_gain": 100.0,
            "model_inverse_velocity_gain": 20.0,
            "model_inverse_integral_gain": integral_gain,
            "feedback_kp": [10.0, 10.0],
            "feedback_kd": [1.0, 1.0],
        },
        JOINTS,
        STATE_FIELDS,
        REFERENCE_FIELDS,
        [-50.0, -50.0],
        [50.0, 50.0],
        PERIOD_S,
    )


def test_the_integral_removes_the_steady_error_a_wrong_model_leaves() -> None:
    without, with_integral = steady_error_rad(0.0), steady_error_rad(200.0)
    # Without it the PD acceleration balances the load: |load| / 100 ≈ 0.02–0.03 rad.
    assert without > 0.015
    assert with_integral < 0.2 * without


def test_the_integral_is_bounded_and_reset_forgets_it() -> None:
    planner = _planner(400.0)
    model = lambda _params, states, actions: double_integrator(states, actions, np.zeros(2))  # noqa: E731
    for _ in range(300):  # the arm never moves: the error integrates up to the anti-windup bound
        planner.plan(model, [], np.zeros(4, dtype=np.float32), np.array([1.0, -1.0, 0.0, 0.0]))
    limit = planner.config.model_inverse_integral_limit_rad_s
    np.testing.assert_allclose(planner.position_error_integral_rad_s, [limit, -limit])
    planner.reset()
    np.testing.assert_array_equal(planner.position_error_integral_rad_s, [0.0, 0.0])


@pytest.mark.parametrize(
    ("key", "value"), [("model_inverse_integral_gain", -1.0), ("model_inverse_integral_limit_rad_s", 0.0)]
)
def test_a_negative_integral_gain_or_an_empty_limit_is_refused(key: str, value: float) -> None:
    with pytest.raises(ValueError, match=key):
        MPPIConfig.from_dict({key: value})
