"""RL²: the hidden state carries across the episodes of a trial, is reset between trials, and
training recomputes exactly what the sampler's policy computed."""

from __future__ import annotations

import numpy as np
import torch

from metarl_core.policy.ppo import PPOConfig, gaussian_log_prob
from metarl_core.policy.recurrent_policy import RecurrentPolicyShape, init_recurrent_policy, recurrent_step
from metarl_core.policy.rl2 import RecurrentRunner, RL2Config, trial_advantages, trial_forward
from metarl_core.policy.sampling import Rollouts, identity_stats, sample_rollouts
from sim.meta_rl_tasks.tasks import PointGoalTask
from sim.vector_collection import make_sync_backend

HORIZON = 5
LOW, HIGH = np.full(2, -0.1), np.full(2, 0.1)


def policy():
    params = init_recurrent_policy(RecurrentPolicyShape(2, 2, 8), torch.Generator().manual_seed(0))
    # A policy head large enough that the hidden state visibly moves the actions.
    params["policy_weight"] = torch.rand(8, 2, generator=torch.Generator().manual_seed(1)) - 0.5
    return params, identity_stats(2)


def sample_trial(params, stats, episodes: int = 2, carry_hidden: bool = True, seed: int = 0) -> Rollouts:
    backend = make_sync_backend("metarl/PointNavigation-v0", 2, horizon_steps=HORIZON, max_episode_steps=HORIZON)
    backend.set_tasks([PointGoalTask(0.3, 0.2), PointGoalTask(-0.4, 0.1)])
    try:
        return sample_rollouts(
            backend,
            RecurrentRunner(params, stats, carry_hidden),
            episodes,
            episodes * HORIZON,
            seed,
            torch.Generator().manual_seed(seed),
            LOW,
            HIGH,
        )
    finally:
        backend.close()


def test_training_recomputes_the_sampled_log_probs_over_the_whole_trial() -> None:
    params, stats = policy()
    rollouts = sample_trial(params, stats)
    assert rollouts.episode_index[:, 0].tolist() == [0] * HORIZON + [1] * HORIZON
    means, values = trial_forward(params, stats, rollouts)
    torch.testing.assert_close(gaussian_log_prob(means, params["log_std"][0], rollouts.actions), rollouts.log_probs)
    torch.testing.assert_close(values, rollouts.values)


def test_hidden_state_is_carried_across_the_episodes_of_a_trial() -> None:
    params, stats = policy()
    carried = sample_trial(params, stats)
    # The same trial with the hidden state zeroed at the episode boundary gives other actions
    # from the second episode on: what the sampler fed at that step was the carried state.
    reset = sample_trial(params, stats, carry_hidden=False)
    boundary = HORIZON
    torch.testing.assert_close(carried.actions[:boundary], reset.actions[:boundary])
    assert not torch.allclose(carried.actions[boundary], reset.actions[boundary], atol=1e-4)

    # By hand: the first step of episode 2 is recurrent_step from the hidden state episode 1 left.
    prev_action, prev_reward, prev_done = carried.previous_inputs()
    hidden = torch.zeros(2, 8)
    for t in range(boundary):
        _, _, hidden = recurrent_step(
            params, stats, carried.observations[t], prev_action[t], prev_reward[t], prev_done[t], hidden
        )
    assert hidden.abs().max() > 1e-2
    mean, _, _ = recurrent_step(
        params,
        stats,
        carried.observations[boundary],
        prev_action[boundary],
        prev_reward[boundary],
        prev_done[boundary],
        hidden,
    )
    assert prev_done[boundary].eq(1.0).all(), "the policy is told that a new episode began"
    expected = gaussian_log_prob(mean, params["log_std"][0], carried.actions[boundary])
    torch.testing.assert_close(expected, carried.log_probs[boundary])


def test_hidden_state_is_reset_between_trials() -> None:
    params, stats = policy()
    runner = RecurrentRunner(params, stats)
    runner.reset(2)
    obs = torch.ones(2, 2)
    runner.step(obs, torch.zeros(2, 2), torch.zeros(2, 1), torch.zeros(2, 1))
    assert runner.hidden.abs().max() > 0
    runner.reset(2)
    assert runner.hidden.abs().max() == 0

    # Two trials in a row through the sampler start from the same (zero) state.
    first, second = sample_trial(params, stats, seed=3), sample_trial(params, stats, seed=3)
    torch.testing.assert_close(first.actions, second.actions)
    zero_state_mean, _, _ = recurrent_step(
        params, stats, first.observations[0], torch.zeros(2, 2), torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2, 8)
    )
    torch.testing.assert_close(
        gaussian_log_prob(zero_state_mean, params["log_std"][0], first.actions[0]), first.log_probs[0]
    )


def test_trial_advantages_flow_across_episodes_and_stop_at_the_trial_end() -> None:
    # One env, a trial of two one-step episodes then a new trial's step (filler, masked).
    rollouts = Rollouts(
        observations=torch.zeros(3, 1, 2),
        actions=torch.zeros(3, 1, 2),
        rewards=torch.tensor([[1.0], [2.0], [100.0]]),
        dones=torch.tensor([[True], [True], [True]]),
        mask=torch.tensor([[1.0], [1.0], [0.0]]),
        log_probs=torch.zeros(3, 1),
        values=torch.tensor([[0.5], [0.25], [7.0]]),
        episode_index=torch.tensor([[0], [1], [2]]),
        episode_step=torch.zeros(3, 1, dtype=torch.long),
    )
    config = RL2Config(episodes_per_trial=2, reward_scale=0.5, ppo=PPOConfig(gamma=0.9, gae_lambda=1.0))
    advantages, returns = trial_advantages(rollouts, 2, config)
    # Scaled rewards 0.5, 1.0; the episode boundary at step 0 is not a 'done' for the trial.
    #   A1 = 1.0 − 0.25 = 0.75;  A0 = 0.5 + 0.9·0.25 − 0.5 + 0.9·0.75 = 0.9
    torch.testing.assert_close(advantages[:2, 0], torch.tensor([0.9, 0.75]))
    torch.testing.assert_close(returns[:2, 0], torch.tensor([1.4, 1.0]))


def test_ablation_starts_every_episode_as_a_trial_starts() -> None:
    """Without the carried state, an episode's first step sees what a trial's first step sees:
    zero hidden state and zero previous action, reward and done, whatever came before."""
    params, stats = policy()
    obs = torch.tensor([[0.1, -0.2]])
    fresh = RecurrentRunner(params, stats)
    fresh.reset(1)
    expected = fresh.step(obs, torch.zeros(1, 2), torch.zeros(1, 1), torch.zeros(1, 1))[0]
    ablated = RecurrentRunner(params, stats, carry_hidden=False)
    ablated.reset(1)
    ablated.step(torch.tensor([[0.3, 0.3]]), torch.zeros(1, 2), torch.zeros(1, 1), torch.zeros(1, 1))
    after_episode = ablated.step(obs, torch.tensor([[0.9, -0.9]]), torch.tensor([[-1.5]]), torch.ones(1, 1))[0]
    torch.testing.assert_close(after_episode, expected, rtol=0, atol=0)
