"""The robot's per-tick RL² controller: it feeds the policy exactly what training's sampler fed it,
and never commands NaN, inf or beyond the limits."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch

import sim  # noqa: F401  (registers the environment ids)
from metarl_core.model_based.checkpoint import TrainedDynamics
from metarl_core.policy.policy_checkpoint import TrainedPolicy
from metarl_core.policy.recurrent_policy import recurrent_step, scale_action
from metarl_runtime.controllers import (
    OnlineAdaptiveController,
    RecurrentPolicyController,
    load_controller,
)
from metarl_runtime.recurrent_runtime import RecurrentRuntime
from sim.panda_payload import HOME_RAD, PANDA

LOW, HIGH = np.array(PANDA.action_low), np.array(PANDA.action_high)


@pytest.fixture()
def controller(recurrent_bundle: tuple[TrainedPolicy, Path]) -> RecurrentPolicyController:
    return RecurrentPolicyController(RecurrentRuntime.load(recurrent_bundle[1]))


def home_state() -> tuple[np.ndarray, np.ndarray]:
    state = np.concatenate([HOME_RAD, np.zeros(7)])
    return state, np.concatenate([HOME_RAD + 0.1, np.zeros(7)])


def test_controller_on_the_simulated_panda_matches_the_training_sampler(
    recurrent_bundle: tuple[TrainedPolicy, Path], controller: RecurrentPolicyController
) -> None:
    """The same policy run as ``metarl_core.policy.sampling`` runs it (previous clipped action,
    the environment's own reward, done = 0, carried hidden state) commands what the robot-side
    controller commands, tick by tick, on the real simulated arm."""
    policy = recurrent_bundle[0]
    env = gymnasium.make("metarl/PandaPayload-v0")
    obs, _ = env.reset(seed=3)
    hidden = torch.zeros(1, policy.shape.hidden_size)
    prev_action, prev_reward = torch.zeros(1, 7), torch.zeros(1, 1)
    try:
        for _ in range(40):
            command = controller(obs[:14], obs[14:])
            with torch.no_grad():
                mean, _, hidden = recurrent_step(
                    policy.params, policy.stats, torch.from_numpy(obs)[None], prev_action, prev_reward,
                    torch.zeros(1, 1), hidden,
                )  # fmt: skip
            clipped = mean.clamp(-1.0, 1.0)
            expected = scale_action(clipped.numpy()[0].astype(np.float64), LOW, HIGH)
            assert np.all(np.abs(command - expected) <= 1e-5 * (HIGH - LOW)), (command, expected)
            assert np.all(command >= LOW) and np.all(command <= HIGH)
            obs, reward, _, _, _ = env.step(command.astype(np.float32))
            prev_action, prev_reward = clipped, torch.tensor([[reward]], dtype=torch.float32)
    finally:
        env.close()
    assert controller.stats.non_finite == 0 and controller.stats.ticks == 40


def test_reset_starts_a_new_trial(controller: RecurrentPolicyController) -> None:
    state, reference = home_state()
    first = controller(state, reference)
    for _ in range(5):
        controller(state, reference)
    assert float(controller.diagnostic_values()["hidden_norm"]) > 0.0
    controller.reset()
    assert controller.diagnostic_values()["hidden_norm"] == "0"
    assert controller.stats.trials == 2
    np.testing.assert_array_equal(controller(state, reference), first)


def test_absurd_sensor_values_give_a_counted_safe_hold_and_a_fresh_hidden_state(
    controller: RecurrentPolicyController,
) -> None:
    """±3e38 is finite in float32 but overflows to ±inf once normalised (obs_std < 1), and
    inf - inf in the GRU's input product is NaN."""
    state, reference = home_state()
    for _ in range(3):
        controller(state, reference)
    broken = np.concatenate([np.full(7, 3e38), np.full(7, -3e38)])
    held = controller(broken, reference)
    assert np.array_equal(held, np.zeros(7))
    assert controller.stats.non_finite == 1
    assert controller.diagnostic_values()["hidden_norm"] == "0"
    recovered = controller(state, reference)
    assert np.all(np.isfinite(recovered)) and np.all(recovered >= LOW) and np.all(recovered <= HIGH)
    assert np.all(np.isfinite(controller.runtime.hidden))
    assert np.array_equal(controller(np.full(14, np.inf), reference), np.zeros(7))
    assert controller.stats.non_finite == 2


def test_disabled_adaptation_freezes_the_hidden_state_at_zero(
    recurrent_bundle: tuple[TrainedPolicy, Path], controller: RecurrentPolicyController
) -> None:
    policy = recurrent_bundle[0]
    state, reference = home_state()
    for _ in range(3):
        controller(state, reference)
    controller.set_adaptation_enabled(False)
    assert controller.diagnostic_values()["hidden_norm"] == "0"
    for _ in range(3):
        normalised, previous_command = controller.previous
        reward = controller.runtime.reward(state, reference, previous_command)
        command = controller(state, reference)
        assert controller.diagnostic_values()["hidden_norm"] == "0"
        # What the policy answers from a zero hidden state: nothing learnt is carried.
        with torch.no_grad():
            mean, _, _ = recurrent_step(
                policy.params,
                policy.stats,
                torch.from_numpy(np.concatenate([state, reference]).astype(np.float32))[None],
                torch.from_numpy(normalised.astype(np.float32))[None],
                torch.tensor([[reward]], dtype=torch.float32),
                torch.zeros(1, 1),
                torch.zeros(1, policy.shape.hidden_size),
            )
        expected = scale_action(mean.clamp(-1.0, 1.0).numpy()[0].astype(np.float64), LOW, HIGH)
        assert np.all(np.abs(command - expected) <= 1e-5 * (HIGH - LOW))
    controller.set_adaptation_enabled(True)
    controller(state, reference)
    assert float(controller.diagnostic_values()["hidden_norm"]) > 0.0


def test_hold_is_fed_back_as_the_previous_action(controller: RecurrentPolicyController) -> None:
    state, reference = home_state()
    controller(state, reference)
    assert np.array_equal(controller.hold(), np.zeros(7))
    normalised, command = controller.previous
    assert np.array_equal(normalised, np.zeros(7)) and np.array_equal(command, np.zeros(7))


def test_load_controller_picks_the_controller_by_bundle_mode(
    recurrent_bundle: tuple[TrainedPolicy, Path], bundles: dict[int, tuple[TrainedDynamics, Path]]
) -> None:
    recurrent = load_controller(recurrent_bundle[1], expected_robot="panda", adaptation_enabled=False)
    assert isinstance(recurrent, RecurrentPolicyController) and not recurrent.adaptation_enabled
    model_based = load_controller(bundles[1][1], adapt_every_n_ticks=3)
    assert isinstance(model_based, OnlineAdaptiveController) and model_based.adapt_every_n_ticks == 3
    assert set(model_based.diagnostic_values()) == {"adaptations", "adaptations_accepted", "loss_before", "loss_after"}
