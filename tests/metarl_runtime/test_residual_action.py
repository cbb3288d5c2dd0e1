"""The residual action's numpy half: its nominal torque is the nominal controller's, and the
policy's correction never exceeds its bound."""

from __future__ import annotations

import gymnasium
import numpy as np

import sim  # noqa: F401  (registers the environment ids)
from metarl_core.model_based.residual_train import panda_nominal
from metarl_runtime.residual_action import ResidualTorque, tracking_error_features
from sim.baseline_controllers import PandaPDGravityController
from sim.panda_payload import HOME_RAD, PANDA

LOW, HIGH = np.array(PANDA.action_low), np.array(PANDA.action_high)


def residual_torque(fraction: float = 0.1) -> ResidualTorque:
    arm = panda_nominal().arm(PANDA.joint_names, 1.0 / PANDA.control_rate_hz)
    return ResidualTorque(arm, fraction, LOW, HIGH)


def test_zero_correction_is_the_pybullet_nominal_controller_to_a_micro_newton_metre() -> None:
    """Along a real episode (payload on, so the arm leaves the reference), the numpy computed
    torque with a zero action equals ``PandaPDGravityController``'s, reference acceleration included."""
    env = gymnasium.make("metarl/PandaPayload-v0", episode_duration_s=1.0)
    env.unwrapped.set_task(env.unwrapped.sample_tasks(1, np.random.default_rng(4), "extrap")[0])
    controller, residual = PandaPDGravityController(), residual_torque()
    obs, _ = env.reset(seed=11)
    worst = 0.0
    try:
        for _ in range(100):
            expected = controller(obs)
            command = residual(obs, np.zeros((1, 7)))[0]
            worst = max(worst, float(np.max(np.abs(command - expected))))
            obs, *_ = env.step(expected)
    finally:
        controller.close()
        env.close()
    assert worst < 1e-5, worst  # the PyBullet controller's float32 output: ~1e-6 N·m at 30 N·m


def test_the_correction_is_bounded_by_its_fraction_of_the_effort_limits() -> None:
    residual = residual_torque(0.1)
    obs = np.concatenate([HOME_RAD, np.zeros(7), HOME_RAD + 0.05, np.zeros(7)])[None]
    nominal = residual.nominal(obs)
    for action, sign in ((np.full((1, 7), 50.0), 1.0), (np.full((1, 7), -50.0), -1.0)):
        residual.reset()
        np.testing.assert_allclose(residual(obs, action) - nominal, sign * 0.1 * HIGH[None], atol=1e-9)


def test_the_policy_sees_the_tracking_error_after_the_observation() -> None:
    obs = np.arange(28, dtype=np.float32)
    features = tracking_error_features(obs, 7)
    np.testing.assert_array_equal(features[0, :28], obs)
    np.testing.assert_array_equal(features[0, 28:], np.full(14, 14.0))
