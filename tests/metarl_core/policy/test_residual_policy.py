"""The residual action mode of the policy learners: an untrained residual policy is the nominal
controller, and an exported residual RL² bundle commands on the robot what training applied."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium
import numpy as np
import torch

import sim  # noqa: F401  (registers the environment ids)
from export.recurrent_export import export_recurrent_bundle
from metarl_core.model_based.residual_train import panda_nominal
from metarl_core.policy.gaussian_mlp_policy import init_mlp_policy, mlp_action_mean
from metarl_core.policy.policy_checkpoint import load_policy_checkpoint
from metarl_core.policy.recurrent_policy import RecurrentPolicyShape, init_recurrent_policy, recurrent_step
from metarl_core.policy.residual_env import make_policy_env
from metarl_core.policy.train import load_policy_config, train_policy
from metarl_runtime.controllers import RecurrentPolicyController, load_controller
from metarl_runtime.residual_action import ResidualTorque, tracking_error_features
from sim.baseline_controllers import PandaPDGravityController
from sim.panda_payload import PANDA

TINY = Path("configs/panda_rl2_residual_tiny.yaml")
LOW, HIGH = np.array(PANDA.action_low), np.array(PANDA.action_high)


def test_residual_policies_start_with_a_mean_action_of_exactly_zero() -> None:
    shape = RecurrentPolicyShape(42, 7, 16)
    obs = torch.randn(5, 42, generator=torch.Generator().manual_seed(1))
    stats = {"obs_mean": torch.zeros(1, 42), "obs_std": torch.ones(1, 42)}
    mlp = init_mlp_policy(shape, torch.Generator().manual_seed(0), zero_action=True)
    gru = init_recurrent_policy(shape, torch.Generator().manual_seed(0), zero_action=True)
    assert torch.all(mlp_action_mean(mlp, stats, obs) == 0.0)
    zeros = torch.zeros(5, 1)
    mean, _, _ = recurrent_step(gru, stats, obs, torch.zeros(5, 7), zeros, zeros, torch.zeros(5, 16))
    assert torch.all(mean == 0.0)


def test_a_zero_correction_scores_what_the_nominal_controller_scores() -> None:
    """Same task, same reset: the residual environment under a zero action and the plain
    environment under ``PandaPDGravityController`` earn the same return."""
    residual_env = make_policy_env("metarl/PandaPayload-v0", "residual", 0.1, episode_duration_s=1.0)
    plain = gymnasium.make("metarl/PandaPayload-v0", episode_duration_s=1.0)
    task = plain.unwrapped.sample_tasks(1, np.random.default_rng(2), "interp")[0]
    controller = PandaPDGravityController()
    returns = []
    try:
        for env, act in ((residual_env, lambda obs: np.zeros(7, np.float32)), (plain, controller)):
            env.unwrapped.set_task(task)
            obs, _ = env.reset(seed=9)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(act(obs))
                total, done = total + reward, terminated or truncated
            returns.append(total)
    finally:
        controller.close()
        residual_env.close()
        plain.close()
    assert residual_env.observation_space.shape == (42,) and residual_env.action_space.shape == (7,)
    assert abs(returns[0] - returns[1]) < 1e-4, returns


def test_an_exported_residual_rl2_bundle_commands_what_training_applied(tmp_path: Path) -> None:
    """A tiny residual RL² run, exported: the robot's controller (nominal torque in numpy, the
    tracking-error features, the policy graph) commands, tick by tick on the simulated arm, the
    torque the training transform computes from the torch policy, within the correction's bound."""
    config = dataclasses.replace(load_policy_config(TINY), iterations=1)
    run = train_policy(config, tmp_path / "run")
    policy, _ = load_policy_checkpoint(run)
    controller = load_controller(export_recurrent_bundle(run, tmp_path / "bundle"), expected_robot="panda")
    assert isinstance(controller, RecurrentPolicyController) and controller.residual is not None
    arm = panda_nominal().arm(PANDA.joint_names, 1.0 / PANDA.control_rate_hz)
    training, nominal = ResidualTorque(arm, 0.1, LOW, HIGH), ResidualTorque(arm, 0.1, LOW, HIGH)
    env = gymnasium.make("metarl/PandaPayload-v0", episode_duration_s=0.5)
    env.unwrapped.set_task(env.unwrapped.sample_tasks(1, np.random.default_rng(5), "extrap")[0])
    obs, _ = env.reset(seed=4)
    hidden = torch.zeros(1, policy.shape.hidden_size)
    prev_action, prev_reward = torch.zeros(1, 7), torch.zeros(1, 1)
    try:
        for _ in range(50):
            command = controller(obs[:14], obs[14:])
            features = torch.from_numpy(tracking_error_features(obs, 7))
            with torch.no_grad():
                mean, _, hidden = recurrent_step(
                    policy.params, policy.stats, features, prev_action, prev_reward, torch.zeros(1, 1), hidden
                )
            clipped = mean.clamp(-1.0, 1.0)
            expected = training(obs, clipped.numpy().astype(np.float64))[0]
            np.testing.assert_allclose(command, expected, atol=1e-4)
            assert np.all(np.abs(command - np.clip(nominal.nominal(obs)[0], LOW, HIGH)) <= 0.1 * HIGH + 1e-9)
            obs, reward, _, _, _ = env.step(command.astype(np.float32))
            prev_action, prev_reward = clipped, torch.tensor([[reward]], dtype=torch.float32)
    finally:
        env.close()
    assert controller.stats.non_finite == 0
