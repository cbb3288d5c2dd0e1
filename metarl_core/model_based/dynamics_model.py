"""Functional MLP dynamics model: parameters are an explicit, ordered dict of tensors.

Why functional: the inner adaptation step (``metarl_core.model_based.adaptation``) is then a
pure function ``adapt(params, window) -> params`` that is easy to test, ``vmap`` over tasks,
and mirrors exactly what the exported ONNX adaptation graph computes on the robot.

The model predicts the *normalised* state change. Biases are kept 2-D (``(1, out)``) so that
no exported MatMul ever sees a 1-D operand (see docs/architecture.md, onnxruntime hazard).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

Params = dict[str, torch.Tensor]
StepSizes = float | Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class ModelShape:
    """Sizes of the dynamics MLP; hidden layers use tanh (smooth, so inner gradients are too)."""

    state_dim: int
    action_dim: int
    hidden_sizes: tuple[int, ...] = (128, 128)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return (self.state_dim + self.action_dim, *self.hidden_sizes, self.state_dim)

    def parameter_names(self) -> list[str]:
        """Parameter names in the fixed order used by checkpoints and ONNX graph inputs."""
        names: list[str] = []
        for i in range(len(self.layer_sizes) - 1):
            names += [f"layers.{i}.weight", f"layers.{i}.bias"]
        return names


def init_params(shape: ModelShape, generator: torch.Generator | None = None) -> Params:
    """Xavier-uniform weights and zero biases, in ``shape.parameter_names()`` order."""
    return init_mlp(shape.layer_sizes, generator)


def init_mlp(sizes: tuple[int, ...], generator: torch.Generator | None = None) -> Params:
    """An MLP of layer widths ``sizes`` (input first): Xavier-uniform weights, zero biases."""
    params: Params = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        bound = float(np.sqrt(6.0 / (fan_in + fan_out)))
        weight = (torch.rand(fan_out, fan_in, generator=generator) * 2.0 - 1.0) * bound
        params[f"layers.{i}.weight"] = weight
        params[f"layers.{i}.bias"] = torch.zeros(1, fan_out)
    return params


def predict_normalized_delta(params: Params, state_norm: torch.Tensor, action_norm: torch.Tensor) -> torch.Tensor:
    """Normalised state change for a batch ``(B, S)``, ``(B, A)`` -> ``(B, S)``."""
    return mlp_forward(params, torch.cat([state_norm, action_norm], dim=-1))


def mlp_forward(params: Params, inputs: torch.Tensor) -> torch.Tensor:
    """The MLP of ``params`` (tanh hidden layers, linear output) on ``inputs`` ``(B, in)``: any
    regression the adaptation rules adapt (the dynamics model, the residual torque model)."""
    hidden = inputs
    n_layers = len(params) // 2
    for i in range(n_layers):
        hidden = hidden @ params[f"layers.{i}.weight"].T + params[f"layers.{i}.bias"]
        if i < n_layers - 1:
            hidden = torch.tanh(hidden)
    return hidden


@dataclass(frozen=True)
class Normalizer:
    """Per-dimension statistics of states, actions and state changes (float32 numpy arrays).

    Stored with the checkpoint and in ``bundle.json``: the robot must normalise exactly as
    training did.
    """

    state_mean: np.ndarray
    state_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray
    delta_mean: np.ndarray
    delta_std: np.ndarray

    MIN_STD = 1e-6

    @classmethod
    def fit(cls, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray) -> Normalizer:
        """Statistics of a transition set; stds are floored so constant dimensions stay finite."""
        deltas = next_states - states

        def stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            mean = x.mean(axis=0).astype(np.float32)
            std = np.maximum(x.std(axis=0), cls.MIN_STD).astype(np.float32)
            return mean, std

        return cls(*stats(states), *stats(actions), *stats(deltas))

    def to_dict(self) -> dict[str, list[float]]:
        return {name: getattr(self, name).tolist() for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, list[float]]) -> Normalizer:
        return cls(**{name: np.asarray(data[name], dtype=np.float32) for name in cls.__dataclass_fields__})

    def torch(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """The statistics as float32 tensors, for the torch side of training."""
        return {k: torch.as_tensor(v, device=device) for k, v in self.to_dict().items()}


def normalized_inputs(
    states: torch.Tensor, actions: torch.Tensor, stats: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """States and actions standardised with the training statistics: the model's inputs, computed
    once here for the window loss, the prediction and the RLS features, so all see the same ones."""
    return (states - stats["state_mean"]) / stats["state_std"], (actions - stats["action_mean"]) / stats["action_std"]


def normalized_delta(
    states: torch.Tensor, next_states: torch.Tensor, stats: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """The standardised state change ``(s' - s - delta_mean) / delta_std``: what the model predicts."""
    return (next_states - states - stats["delta_mean"]) / stats["delta_std"]


def window_loss(
    params: Params,
    states: torch.Tensor,
    actions: torch.Tensor,
    next_states: torch.Tensor,
    stats: Mapping[str, torch.Tensor],
) -> torch.Tensor:
    """Mean squared error of the normalised state change over a window of raw transitions."""
    state_norm, action_norm = normalized_inputs(states, actions, stats)
    target = normalized_delta(states, next_states, stats)
    return ((predict_normalized_delta(params, state_norm, action_norm) - target) ** 2).mean()


def predict_next_state(
    params: Params, states: torch.Tensor, actions: torch.Tensor, stats: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """Raw next state: ``s + Δs_norm * delta_std + delta_mean``."""
    delta = predict_normalized_delta(params, *normalized_inputs(states, actions, stats))
    return states + delta * stats["delta_std"] + stats["delta_mean"]
