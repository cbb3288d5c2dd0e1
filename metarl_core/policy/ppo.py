"""PPO (Schulman et al., 2017): generalised advantage estimation and the clipped objective.

One implementation, used by both policy-based meta-learners: MAML-PPO's outer loop (the
clipped objective on the adapted policy's query trajectories) and RL² (the clipped objective
plus a value loss over whole trials). Everything works on time-major tensors ``(T, ...)`` with
a ``mask`` of the steps that exist, so batches of unequal episodes need no special casing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class PPOConfig:
    """The PPO settings shared by MAML-PPO's outer loop and RL²."""

    learning_rate: float = 3e-4
    """Adam step size."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE λ: 0 is the one-step TD error, 1 the Monte-Carlo return minus the baseline."""
    clip_coef: float = 0.2
    """ε of the clipped probability ratio."""
    epochs: int = 4
    """Passes over each batch of experience."""
    minibatches: int = 4
    """Minibatches per pass (over tasks for MAML-PPO, over trials for RL²)."""
    value_coef: float = 0.5
    """Weight of the value loss (RL²'s value head; MAML-PPO uses a fitted baseline instead)."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip of each update."""
    normalize_advantages: bool = True
    """Standardise advantages: per task for MAML-PPO, per minibatch of trials for RL²."""


def validate_ppo_config(config: PPOConfig, source: str) -> None:
    """Raise ``ValueError`` naming the ``ppo.*`` field that is out of range."""
    checks = {
        "learning_rate": config.learning_rate > 0,
        "gamma": 0.0 < config.gamma <= 1.0,
        "gae_lambda": 0.0 <= config.gae_lambda <= 1.0,
        "clip_coef": config.clip_coef > 0,
        "epochs": config.epochs >= 1,
        "minibatches": config.minibatches >= 1,
        "value_coef": config.value_coef >= 0,
        "entropy_coef": config.entropy_coef >= 0,
        "max_grad_norm": config.max_grad_norm > 0,
    }
    for name, ok in checks.items():
        if not ok:
            raise ValueError(f"{source}: field 'ppo.{name}'={getattr(config, name)} is out of range")


def generalized_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    last_values: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> torch.Tensor:
    """GAE advantages ``(T, ...)``.

    ``values[t]`` is V(s_t); ``dones[t]`` is true where step t ends an episode, so nothing is
    bootstrapped past it; ``last_values`` is V of the state after the last step (used only where
    the last step is not done). ``A_t = δ_t + γλ(1 − d_t) A_{t+1}`` with
    ``δ_t = r_t + γ(1 − d_t) V(s_{t+1}) − V(s_t)``.
    """
    not_done = 1.0 - dones.to(rewards.dtype)
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(last_values)
    next_value = last_values
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * not_done[t] * next_value - values[t]
        next_advantage = delta + gamma * gae_lambda * not_done[t] * next_advantage
        advantages[t] = next_advantage
        next_value = values[t]
    return advantages


def discounted_returns(rewards: torch.Tensor, dones: torch.Tensor, gamma: float) -> torch.Tensor:
    """Reward-to-go ``(T, ...)`` within each episode (GAE with λ = 1 and a zero baseline)."""
    zeros = torch.zeros_like(rewards)
    return generalized_advantages(rewards, zeros, zeros[0], dones, gamma, 1.0)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the entries where ``mask`` is 1."""
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def standardize(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit std over the masked entries (masked-out entries become 0)."""
    mean = masked_mean(x, mask)
    std = masked_mean((x - mean) ** 2, mask).sqrt()
    return (x - mean) / (std + 1e-8) * mask


def gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Log-density of ``actions`` under a diagonal Gaussian, summed over the last axis."""
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z**2 - log_std - LOG_SQRT_2PI).sum(-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """Entropy of a diagonal Gaussian (independent of the mean), summed over the last axis."""
    return (log_std + 0.5 + LOG_SQRT_2PI).sum(-1)


@dataclass
class ClippedSurrogate:
    """The clipped policy loss and what to watch while it is minimised."""

    loss: torch.Tensor
    """``−E[min(ρ A, clip(ρ, 1 − ε, 1 + ε) A)]`` over the masked steps (to be minimised)."""
    clip_fraction: torch.Tensor
    """Share of steps whose ratio left ``[1 − ε, 1 + ε]``."""
    approx_kl: torch.Tensor
    """``E[(ρ − 1) − log ρ]``, a low-variance estimate of KL(old ‖ new)."""


def clipped_surrogate(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    clip_coef: float,
    mask: torch.Tensor,
) -> ClippedSurrogate:
    """PPO's clipped objective: the policy may not gain by moving the ratio past ``1 ± ε``."""
    log_ratio = log_prob - old_log_prob
    ratio = torch.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef) * advantages
    loss = -masked_mean(torch.minimum(unclipped, clipped), mask)
    with torch.no_grad():
        clip_fraction = masked_mean(((ratio - 1.0).abs() > clip_coef).to(ratio.dtype), mask)
        approx_kl = masked_mean((ratio - 1.0) - log_ratio, mask)
    return ClippedSurrogate(loss, clip_fraction, approx_kl)


@dataclass
class PPOLoss:
    """One minibatch's loss and its parts (floats for logging except ``total``)."""

    total: torch.Tensor
    policy: float
    value: float
    entropy: float
    approx_kl: float
    clip_fraction: float


def ppo_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    entropy: torch.Tensor,
    mask: torch.Tensor,
    config: PPOConfig,
    values: torch.Tensor | None = None,
    returns: torch.Tensor | None = None,
) -> PPOLoss:
    """Clipped surrogate − entropy bonus (+ value MSE when a value head is trained)."""
    surrogate = clipped_surrogate(log_prob, old_log_prob, advantages, config.clip_coef, mask)
    entropy_mean = masked_mean(entropy, mask)
    total = surrogate.loss - config.entropy_coef * entropy_mean
    value_loss = torch.zeros(())
    if values is not None and returns is not None:
        value_loss = 0.5 * masked_mean((values - returns) ** 2, mask)
        total = total + config.value_coef * value_loss
    return PPOLoss(
        total=total,
        policy=float(surrogate.loss.detach()),
        value=float(value_loss.detach()),
        entropy=float(entropy_mean.detach()),
        approx_kl=float(surrogate.approx_kl),
        clip_fraction=float(surrogate.clip_fraction),
    )


def ppo_update(
    parameters: list[torch.Tensor],
    optimizer: torch.optim.Optimizer,
    num_items: int,
    loss_of: Callable[[torch.Tensor], PPOLoss],
    config: PPOConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """``epochs`` passes over ``num_items`` (tasks or trials) in shuffled minibatches.

    ``loss_of(indices)`` returns the loss of those items; each minibatch is one Adam step after
    clipping the global gradient norm. Returns the mean of each logged quantity, under the
    stable metric names ``losses/...``.
    """
    minibatches = min(config.minibatches, num_items)
    totals = {"losses/policy": 0.0, "losses/value": 0.0, "losses/entropy": 0.0, "losses/approx_kl": 0.0}
    totals["losses/clip_fraction"] = 0.0
    updates = 0
    for _ in range(config.epochs):
        order = torch.randperm(num_items, generator=generator)
        for indices in torch.tensor_split(order, minibatches):  # sizes differ by at most one
            loss = loss_of(indices)
            optimizer.zero_grad()
            loss.total.backward()
            torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            optimizer.step()
            updates += 1
            for key, value in (
                ("losses/policy", loss.policy),
                ("losses/value", loss.value),
                ("losses/entropy", loss.entropy),
                ("losses/approx_kl", loss.approx_kl),
                ("losses/clip_fraction", loss.clip_fraction),
            ):
                totals[key] += value
    return {key: value / updates for key, value in totals.items()}
