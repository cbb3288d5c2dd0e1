"""MAML-PPO's policy: a Gaussian MLP as a pure function of an explicit parameter dict.

Why functional: MAML's inner step is then ``adapt(params, support) -> params'``, a pure function
that ``torch.func.grad`` differentiates and ``torch.func.vmap`` maps over tasks, exactly as the
dynamics model's inner step (``metarl_core.model_based.adaptation.sgd_steps``) is. Two tanh
hidden layers of ``shape.hidden_size`` units (MAML used two of 100), a state-independent
``log_std`` that is adapted with the rest, and, as for RL², actions in normalised units
(``scale_action`` maps [-1, 1] to the action limits).
"""

from __future__ import annotations

import math

import torch

from metarl_core.policy.ppo import gaussian_log_prob
from metarl_core.policy.recurrent_policy import Params, RecurrentPolicyShape, normalized_observations

HIDDEN_LAYERS = 2


def init_mlp_policy(
    shape: RecurrentPolicyShape, generator: torch.Generator, initial_log_std: float = 0.0, zero_action: bool = False
) -> Params:
    """Xavier-uniform hidden layers, a near-zero output layer (first actions centred on zero),
    zero biases; weights ``(in, out)`` and biases ``(1, out)`` like the recurrent policy's.
    ``zero_action`` makes the output layer exactly zero (a residual policy starts as the nominal
    controller)."""
    sizes = [shape.obs_dim] + [shape.hidden_size] * HIDDEN_LAYERS + [shape.action_dim]
    params: Params = {}
    for i in range(len(sizes) - 1):
        fan_in, fan_out = sizes[i], sizes[i + 1]
        output_scale = 0.0 if zero_action else 0.01
        bound = math.sqrt(6.0 / (fan_in + fan_out)) * (output_scale if i == len(sizes) - 2 else 1.0)
        params[f"layers.{i}.weight"] = (torch.rand(fan_in, fan_out, generator=generator) * 2.0 - 1.0) * bound
        params[f"layers.{i}.bias"] = torch.zeros(1, fan_out)
    params["log_std"] = torch.full((1, shape.action_dim), initial_log_std)
    return params


def mlp_action_mean(params: Params, stats: Params, obs: torch.Tensor) -> torch.Tensor:
    """Mean normalised action ``(..., A)`` for observations ``(..., O)``."""
    hidden = normalized_observations(obs, stats)
    for i in range(HIDDEN_LAYERS + 1):
        hidden = hidden @ params[f"layers.{i}.weight"] + params[f"layers.{i}.bias"]
        if i < HIDDEN_LAYERS:
            hidden = torch.tanh(hidden)
    return hidden


def mlp_log_prob(params: Params, stats: Params, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Log-probability of normalised ``actions`` (as sampled, before clipping) under the policy."""
    return gaussian_log_prob(mlp_action_mean(params, stats, obs), params["log_std"][0], actions)
