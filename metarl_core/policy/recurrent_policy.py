"""The RL² policy: a GRU whose hidden state does the adapting, as a pure function of its params.

Why a hand-written GRU and not ``torch.nn.GRU``: the same step function is traced to ONNX
(``mode: recurrent`` bundles) and must stay plain 2-D matmuls, sigmoids and tanhs so that the
exported graph has no RNN op whose semantics differ between torch and onnxruntime, and so that
the robot carries the hidden state itself, one control tick at a time.

Contract (shared by training, ``export.recurrent_export`` and the runtime):
- the policy sees ``(obs, previous action, previous reward, previous done)`` each step;
- observations are normalised with ``stats`` (``obs_mean``, ``obs_std``, shapes ``(1, O)``);
- actions live in normalised units: the Gaussian mean is unbounded, and the environment (or the
  robot runtime) clips to ``[-1, 1]`` and scales to the action limits with ``scale_action``;
- everything is 2-D ``(B, ·)``; the hidden state is ``(B, H)`` and zero at the start of a trial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class RecurrentPolicyShape:
    """Sizes of the RL² policy."""

    obs_dim: int
    action_dim: int
    hidden_size: int

    @property
    def input_dim(self) -> int:
        """Observation, previous action, previous reward and previous done flag."""
        return self.obs_dim + self.action_dim + 2


def init_recurrent_policy(
    shape: RecurrentPolicyShape, generator: torch.Generator, initial_log_std: float = -0.5, zero_action: bool = False
) -> Params:
    """Uniform ±1/sqrt(H) GRU weights (torch's own GRU init), a small policy head so the first
    actions stay near zero, and a value head of the GRU's scale with a zero bias.

    ``zero_action`` zeroes the policy head, so the mean action is exactly zero until training
    moves it: a residual policy then starts as the nominal controller."""
    hidden, bound = shape.hidden_size, 1.0 / math.sqrt(shape.hidden_size)

    def uniform(*size: int, scale: float = bound) -> torch.Tensor:
        return (torch.rand(*size, generator=generator) * 2.0 - 1.0) * scale

    return {
        "gru_input_weight": uniform(shape.input_dim, 3 * hidden),
        "gru_hidden_weight": uniform(hidden, 3 * hidden),
        "gru_input_bias": uniform(1, 3 * hidden),
        "gru_hidden_bias": uniform(1, 3 * hidden),
        "policy_weight": uniform(hidden, shape.action_dim, scale=0.0 if zero_action else 0.01),
        "policy_bias": torch.zeros(1, shape.action_dim),
        "value_weight": uniform(hidden, 1, scale=bound),
        "value_bias": torch.zeros(1, 1),
        "log_std": torch.full((1, shape.action_dim), initial_log_std),
    }


def normalized_observations(obs: torch.Tensor, stats: Params) -> torch.Tensor:
    """Observations standardised with ``stats`` (``obs_mean``, ``obs_std``): the input of both
    policies (the GRU's here, the MLP's of MAML-PPO), computed once so they normalise alike."""
    return (obs - stats["obs_mean"]) / stats["obs_std"]


def recurrent_step(
    params: Params,
    stats: Params,
    obs: torch.Tensor,
    prev_action: torch.Tensor,
    prev_reward: torch.Tensor,
    prev_done: torch.Tensor,
    hidden: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One policy step: ``(action mean (B, A), value (B, 1), next hidden (B, H))``.

    ``prev_reward`` and ``prev_done`` are ``(B, 1)``; the previous action is the normalised one
    the policy sampled (clipped to [-1, 1]), so the robot feeds back exactly what it commanded.
    """
    inputs = torch.cat([normalized_observations(obs, stats), prev_action, prev_reward, prev_done], dim=-1)
    input_gates = inputs @ params["gru_input_weight"] + params["gru_input_bias"]
    hidden_gates = hidden @ params["gru_hidden_weight"] + params["gru_hidden_bias"]
    input_reset, input_update, input_new = input_gates.chunk(3, dim=-1)
    hidden_reset, hidden_update, hidden_new = hidden_gates.chunk(3, dim=-1)
    reset = torch.sigmoid(input_reset + hidden_reset)
    update = torch.sigmoid(input_update + hidden_update)
    candidate = torch.tanh(input_new + reset * hidden_new)
    next_hidden = (1.0 - update) * candidate + update * hidden
    action_mean = next_hidden @ params["policy_weight"] + params["policy_bias"]
    value = next_hidden @ params["value_weight"] + params["value_bias"]
    return action_mean, value, next_hidden


def scale_action(normalised: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map a normalised action in [-1, 1] (clipped first) to the robot's limits."""
    clipped = np.clip(normalised, -1.0, 1.0)
    return low + (clipped + 1.0) * 0.5 * (high - low)
