"""GAE, discounted returns and PPO's clipped objective, each against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from metarl_core.policy.ppo import (
    PPOConfig,
    PPOLoss,
    clipped_surrogate,
    discounted_returns,
    gaussian_entropy,
    gaussian_log_prob,
    generalized_advantages,
    ppo_loss,
    ppo_update,
)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_gae_matches_a_hand_computation_and_stops_at_episode_ends() -> None:
    # γ = 0.9, λ = 0.8; step 1 ends an episode, step 2 is cut and bootstraps from V = 2.
    #   δ2 = 3 + 0.9·2 − 1.5 = 3.3               A2 = 3.3
    #   δ1 = 2 − 1.0 = 1.0 (done: no bootstrap)    A1 = 1.0
    #   δ0 = 1 + 0.9·1.0 − 0.5 = 1.4              A0 = 1.4 + 0.9·0.8·1.0 = 2.12
    advantages = generalized_advantages(
        rewards=t(1.0, 2.0, 3.0),
        values=t(0.5, 1.0, 1.5),
        last_values=t(2.0)[0],
        dones=torch.tensor([False, True, False]),
        gamma=0.9,
        gae_lambda=0.8,
    )
    torch.testing.assert_close(advantages, t(2.12, 1.0, 3.3), rtol=0, atol=1e-12)


def test_gae_is_batched_over_trailing_axes() -> None:
    rewards = torch.tensor([[1.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    dones = torch.tensor([[False, True], [True, True]])
    advantages = generalized_advantages(rewards, torch.zeros_like(rewards), torch.zeros(2), dones, 0.5, 1.0)
    # env 0: 1 + 0.5·1 = 1.5 then 1; env 1: both steps end an episode.
    torch.testing.assert_close(advantages, torch.tensor([[1.5, 0.0], [1.0, 2.0]], dtype=torch.float64))


def test_discounted_returns_restart_after_each_episode() -> None:
    returns = discounted_returns(t(1.0, 1.0, 1.0, 4.0), torch.tensor([False, False, True, True]), 0.5)
    torch.testing.assert_close(returns, t(1.75, 1.5, 1.0, 4.0))


def test_clipped_surrogate_matches_a_hand_computation() -> None:
    # Ratios 1.5, 0.5, 0.5, 1.5 with advantages +1, +2, −2, −1 and ε = 0.2:
    #   min(1.5·1, 1.2·1) = 1.2;  min(0.5·2, 0.8·2) = 1.0;  min(0.5·(−2), 0.8·(−2)) = −1.6;
    #   min(1.5·(−1), 1.2·(−1)) = −1.5.  The fifth step is masked out.
    ratio = t(1.5, 0.5, 0.5, 1.5, 100.0)
    log_prob = torch.log(ratio).requires_grad_()
    surrogate = clipped_surrogate(
        log_prob, torch.zeros(5, dtype=torch.float64), t(1.0, 2.0, -2.0, -1.0, 50.0), 0.2, t(1, 1, 1, 1, 0)
    )
    expected = -(1.2 + 1.0 - 1.6 - 1.5) / 4
    assert surrogate.loss.item() == pytest.approx(expected, abs=1e-12)
    assert surrogate.clip_fraction.item() == pytest.approx(1.0)
    surrogate.loss.backward()
    # Clipped terms carry no gradient; unclipped ones carry −ρA/4 (d ρ / d log π = ρ).
    torch.testing.assert_close(log_prob.grad, t(0.0, -0.5 * 2 / 4, 0.0, 1.5 / 4, 0.0))


def test_gaussian_log_prob_and_entropy_match_torch_distributions() -> None:
    generator = torch.Generator().manual_seed(0)
    mean, actions = torch.randn(6, 3, generator=generator), torch.randn(6, 3, generator=generator)
    log_std = torch.tensor([-0.5, 0.0, 0.7])
    normal = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(gaussian_log_prob(mean, log_std, actions), normal.log_prob(actions).sum(-1))
    torch.testing.assert_close(gaussian_entropy(log_std), normal.entropy()[0].sum())


def test_ppo_loss_adds_value_and_entropy_terms_with_their_weights() -> None:
    config = PPOConfig(value_coef=0.5, entropy_coef=0.01)
    mask = t(1, 1)
    loss = ppo_loss(
        log_prob=t(0.0, 0.0),
        old_log_prob=t(0.0, 0.0),
        advantages=t(1.0, 3.0),
        entropy=t(2.0, 2.0),
        mask=mask,
        config=config,
        values=t(1.0, 0.0),
        returns=t(3.0, 0.0),
    )
    # policy −2; value 0.5·mean((−2)², 0) = 1; entropy 2.
    assert loss.total.item() == pytest.approx(-2.0 + 0.5 * 1.0 - 0.01 * 2.0)
    assert (loss.policy, loss.value, loss.entropy) == (pytest.approx(-2.0), pytest.approx(1.0), pytest.approx(2.0))
    assert math.isclose(loss.approx_kl, 0.0, abs_tol=1e-12)


def test_every_epoch_makes_the_asked_number_of_minibatches_even_when_items_do_not_divide() -> None:
    weight = torch.zeros(1, requires_grad=True)
    sizes: list[int] = []

    def loss_of(indices: torch.Tensor) -> PPOLoss:
        sizes.append(len(indices))
        return PPOLoss((weight * len(indices)).sum(), 0.0, 0.0, 0.0, 0.0, 0.0)

    config = PPOConfig(epochs=2, minibatches=4)
    ppo_update([weight], torch.optim.Adam([weight]), 10, loss_of, config, torch.Generator().manual_seed(0))
    assert sizes == [3, 3, 2, 2] * 2  # every item once per epoch, in 4 minibatches of near-equal size
