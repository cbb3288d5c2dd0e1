"""MAML-PPO's inner step is one policy-gradient step, and its meta-gradient goes through it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metarl_core.policy.gaussian_mlp_policy import init_mlp_policy
from metarl_core.policy.linear_baseline import fit_linear_baseline
from metarl_core.policy.maml_ppo import MamlPPOConfig, TaskBatch, adapt_policy, adaptation_returns, meta_objective
from metarl_core.policy.ppo import PPOConfig
from metarl_core.policy.recurrent_policy import RecurrentPolicyShape
from metarl_core.policy.sampling import PolicyEnv

OBS, ACT, HIDDEN = 2, 2, 5
LOG_ALPHA = torch.tensor(0.3, dtype=torch.float64).log()


def setup(tasks: int = 2, steps: int = 4, envs: int = 3):
    """Float64 policy, stats and random task-major trajectories ``(K, T, N, ...)``."""
    generator = torch.Generator().manual_seed(0)
    params = init_mlp_policy(RecurrentPolicyShape(OBS, ACT, HIDDEN), generator, initial_log_std=-0.3)
    # A full-size output layer, so the policy's mean depends visibly on every parameter.
    params["layers.2.weight"] = torch.rand(HIDDEN, ACT, generator=generator) - 0.5
    params = {k: v.double() for k, v in params.items()}
    stats = {
        "obs_mean": torch.full((1, OBS), 0.1, dtype=torch.float64),
        "obs_std": torch.full((1, OBS), 2.0, dtype=torch.float64),
    }

    def batch() -> TaskBatch:
        mask = torch.ones(tasks, steps, envs, dtype=torch.float64)
        mask[0, -1, 0] = 0.0  # one episode ended early
        return TaskBatch(
            observations=torch.randn(tasks, steps, envs, OBS, generator=generator, dtype=torch.float64),
            actions=torch.randn(tasks, steps, envs, ACT, generator=generator, dtype=torch.float64),
            advantages=torch.randn(tasks, steps, envs, generator=generator, dtype=torch.float64),
            mask=mask,
            log_probs=torch.zeros(tasks, steps, envs, dtype=torch.float64),
        )

    return params, stats, batch(), batch()


def explicit_pg_loss(params, stats, observations, actions, advantages, mask) -> torch.Tensor:
    """The REINFORCE loss written out independently: MLP forward and torch's Normal density."""
    hidden = (observations - stats["obs_mean"]) / stats["obs_std"]
    hidden = torch.tanh(hidden @ params["layers.0.weight"] + params["layers.0.bias"])
    hidden = torch.tanh(hidden @ params["layers.1.weight"] + params["layers.1.bias"])
    mean = hidden @ params["layers.2.weight"] + params["layers.2.bias"]
    log_prob = torch.distributions.Normal(mean, params["log_std"][0].exp()).log_prob(actions).sum(-1)
    return -(log_prob * advantages * mask).sum() / mask.sum()


def test_inner_step_is_theta_minus_alpha_times_the_autograd_policy_gradient() -> None:
    params, stats, support, _ = setup()
    task = (support.observations[0], support.actions[0], support.advantages[0], support.mask[0])
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    grads = torch.autograd.grad(explicit_pg_loss(leaves, stats, *task), list(leaves.values()))
    expected = {k: params[k] - 0.3 * g for k, g in zip(leaves, grads, strict=True)}

    adapted = adapt_policy(params, stats, [task], step_size=0.3, first_order=False)

    for key in params:
        torch.testing.assert_close(adapted[key], expected[key], rtol=0, atol=1e-12)
    assert any((adapted[k] - params[k]).abs().max() > 1e-3 for k in params), "the step must move the policy"


def test_inner_step_vmapped_over_tasks_equals_one_task_at_a_time() -> None:
    params, stats, support, _ = setup()
    tensors = (support.observations, support.actions, support.advantages, support.mask)
    batched = torch.func.vmap(lambda o, a, adv, m: adapt_policy(params, stats, [(o, a, adv, m)], 0.3, False))(*tensors)
    for k in range(2):
        single = adapt_policy(params, stats, [tuple(x[k] for x in tensors)], 0.3, False)
        for key in params:
            torch.testing.assert_close(batched[key][k], single[key], rtol=0, atol=1e-12)


def objective_config(first_order: bool) -> MamlPPOConfig:
    return MamlPPOConfig(inner_lr=0.3, first_order=first_order, ppo=PPOConfig(clip_coef=0.2, entropy_coef=0.0))


def meta_loss(params, stats, support, query, first_order: bool) -> torch.Tensor:
    return meta_objective(
        params, stats, [support], query, LOG_ALPHA, objective_config(first_order), torch.arange(2)
    ).total


def with_current_log_probs(params, stats, support: TaskBatch, query: TaskBatch) -> TaskBatch:
    """Old log-probs = the adapted policy's own: the PPO ratio is 1, inside the clip range, so the
    objective is smooth there and finite differences are exact to O(ε²)."""
    from metarl_core.policy.gaussian_mlp_policy import mlp_log_prob

    old = torch.stack(
        [
            mlp_log_prob(
                adapt_policy(
                    params,
                    stats,
                    [tuple(getattr(support, f)[k] for f in ("observations", "actions", "advantages", "mask"))],
                    0.3,
                    False,
                ),
                stats,
                query.observations[k],
                query.actions[k],
            )
            for k in range(2)
        ]
    ).detach()
    return TaskBatch(query.observations, query.actions, query.advantages, query.mask, old)


def test_second_order_meta_gradient_matches_finite_differences_and_first_order_does_not() -> None:
    params, stats, support, query = setup()
    query = with_current_log_probs(params, stats, support, query)
    direction = {
        k: torch.randn(v.shape, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
        for i, (k, v) in enumerate(params.items())
    }
    eps = 1e-6
    plus = meta_loss({k: v + eps * direction[k] for k, v in params.items()}, stats, support, query, False)
    minus = meta_loss({k: v - eps * direction[k] for k, v in params.items()}, stats, support, query, False)
    numeric = ((plus - minus) / (2 * eps)).item()

    def directional(first_order: bool) -> float:
        leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
        grads = torch.autograd.grad(meta_loss(leaves, stats, support, query, first_order), list(leaves.values()))
        return sum((g * direction[k]).sum() for k, g in zip(leaves, grads, strict=True)).item()

    assert directional(first_order=False) == pytest.approx(numeric, rel=1e-6, abs=1e-9)
    assert directional(first_order=True) != pytest.approx(numeric, rel=1e-3)


def test_linear_baseline_fits_returns_in_its_feature_span_and_ignores_masked_steps() -> None:
    generator = torch.Generator().manual_seed(0)
    observations = torch.randn(20, 3, 2, generator=generator, dtype=torch.float64)
    step = torch.arange(20).unsqueeze(1).expand(20, 3)
    returns = 2.0 * observations[..., 0] - observations[..., 1] ** 2 + 3.0 * (step / 100.0) ** 2 + 1.0
    mask = torch.ones(20, 3, dtype=torch.float64)
    mask[15:, 0] = 0.0
    corrupted = returns.clone()
    corrupted[15:, 0] = 1e6  # lock-step filler: must not move the fit

    fitted = fit_linear_baseline(observations, step, corrupted, mask)

    # Exact up to the ridge term's small bias (returns span several units).
    assert (fitted - returns).abs().max() < 5e-3


def test_meta_gradient_reaches_a_learned_step_size() -> None:
    params, stats, support, query = setup()
    query = with_current_log_probs(params, stats, support, query)
    config = objective_config(first_order=False)

    def loss_at(log_alpha: torch.Tensor) -> torch.Tensor:
        return meta_objective(params, stats, [support], query, log_alpha, config, torch.arange(2)).total

    log_alpha = LOG_ALPHA.clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss_at(log_alpha), [log_alpha])
    eps = 1e-6
    numeric = (loss_at(LOG_ALPHA + eps) - loss_at(LOG_ALPHA - eps)) / (2 * eps)
    assert grad.item() == pytest.approx(numeric.item(), rel=1e-6)
    assert abs(grad.item()) > 1e-6


def test_deterministic_scores_report_the_mean_action_and_still_adapt_on_samples() -> None:
    """Scores of the mean action do not depend on the noise; the adapted step still does (it
    learns from sampled episodes), and sampled scores differ from the mean action's."""
    env = PolicyEnv("metarl/PointNavigation-v0", 0.0)
    tasks = env.sample_tasks(2, np.random.default_rng(0), "interp")
    backend = env.backend(2 * 3)
    params = init_mlp_policy(RecurrentPolicyShape(env.obs_dim, env.action_dim, 8), torch.Generator().manual_seed(0))
    stats = {"obs_mean": torch.zeros(1, env.obs_dim), "obs_std": torch.ones(1, env.obs_dim)}

    def scores(noise_seed: int, deterministic: bool) -> np.ndarray:
        generator = torch.Generator().manual_seed(noise_seed)
        return adaptation_returns(
            params, stats, backend, env, tasks, 3, 1, 0.5, PPOConfig(), 7, generator, deterministic
        )

    try:
        first, second = scores(1, True), scores(2, True)
        np.testing.assert_array_equal(first[0], second[0])  # before adapting: the mean action only
        assert not np.array_equal(first[1], second[1])  # after a step learned from sampled episodes
        assert not np.array_equal(scores(1, False)[0], first[0])
    finally:
        backend.close()
        env.close()
