"""The linear feature baseline of MAML's policy-gradient experiments (rllab's ``LinearFeatureBaseline``).

Why not a value network: MAML adapts the policy on a handful of trajectories of a new task, and
the baseline must be fitted on those same trajectories in closed form. A ridge regression of the
returns on ``[o, o², t, t², t³, 1]`` (``t`` the step within the episode / 100) is what Finn et al.
used; it needs no training and cannot leak information across tasks.
"""

from __future__ import annotations

import torch

RIDGE = 1e-5
OBS_CLIP = 10.0


def baseline_features(observations: torch.Tensor, episode_step: torch.Tensor) -> torch.Tensor:
    """Features ``(..., 2 O + 4)`` of each step (observations clipped to ±10 as rllab does)."""
    obs = observations.clamp(-OBS_CLIP, OBS_CLIP)
    t = (episode_step.to(obs.dtype) / 100.0).unsqueeze(-1)
    return torch.cat([obs, obs**2, t, t**2, t**3, torch.ones_like(t)], dim=-1)


def fit_linear_baseline(
    observations: torch.Tensor, episode_step: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Values ``(...)`` predicted by the ridge fit of ``returns`` on the masked steps' features.

    Solved in float64: the normal equations of squared features are badly conditioned in float32.
    """
    features = baseline_features(observations, episode_step).double()
    weights = mask.double().unsqueeze(-1)
    flat_features = (features * weights).reshape(-1, features.shape[-1])
    flat_returns = (returns.double() * mask.double()).reshape(-1)
    gram = flat_features.T @ flat_features
    gram = gram + RIDGE * torch.eye(gram.shape[0], dtype=gram.dtype)
    coefficients = torch.linalg.solve(gram, flat_features.T @ flat_returns)
    return (features @ coefficients).to(returns.dtype)
