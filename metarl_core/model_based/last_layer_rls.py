"""Closed-form adaptation of the output layer over meta-learned features (ALPaCA, Neural-Fly).

The hidden layers are a feature map φ(s, a); adaptation solves a ridge regression of the
window's normalised state changes on [φ, 1], shrunk toward the meta-learned output layer:

    W̃ = (Yᵀ Φ̃ + λ W̃₀) (Φ̃ᵀ Φ̃ + λ I)⁻¹,

which is what recursive least squares over the window converges to from the prior (W̃₀, λ⁻¹I).
It needs no gradient graph and one small solve, and it is differentiable, so the feature map is
meta-trained through it with the same GrBAL objective.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from metarl_core.model_based.dynamics_model import Params, normalized_delta, normalized_inputs


def features(params: Params, state_norm: torch.Tensor, action_norm: torch.Tensor) -> torch.Tensor:
    """Last hidden layer ``(B, H)``: every layer but the output one."""
    hidden = torch.cat([state_norm, action_norm], dim=-1)
    for i in range(len(params) // 2 - 1):
        hidden = torch.tanh(hidden @ params[f"layers.{i}.weight"].T + params[f"layers.{i}.bias"])
    return hidden


def rls_adapt_params(
    params: Params,
    states: torch.Tensor,
    actions: torch.Tensor,
    next_states: torch.Tensor,
    stats: Mapping[str, torch.Tensor],
    prior_precision: float,
) -> Params:
    """``params`` with the output layer replaced by its ridge posterior mean on the window."""
    if prior_precision <= 0:
        raise ValueError(f"prior_precision={prior_precision} must be > 0")
    last = len(params) // 2 - 1
    weight, bias = params[f"layers.{last}.weight"], params[f"layers.{last}.bias"]
    state_norm, action_norm = normalized_inputs(states, actions, stats)
    targets = normalized_delta(states, next_states, stats)
    phi = features(params, state_norm, action_norm)
    phi = torch.cat([phi, torch.ones_like(phi[:, :1])], dim=1)
    prior = torch.cat([weight, bias.T], dim=1)  # (S, H + 1)
    gram = phi.T @ phi + prior_precision * torch.eye(phi.shape[1], dtype=phi.dtype, device=phi.device)
    rhs = targets.T @ phi + prior_precision * prior  # (S, H + 1)
    posterior = torch.linalg.solve(gram, rhs.T).T  # gram is symmetric
    adapted = dict(params)
    adapted[f"layers.{last}.weight"] = posterior[:, :-1]
    adapted[f"layers.{last}.bias"] = posterior[:, -1:].T
    return adapted
