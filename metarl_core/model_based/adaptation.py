"""The inner step: how the meta-learned model adapts to a window of the current task.

An :class:`Adaptation` is the one value that carries the choice of rule from the config to
training, evaluation, export and (through ``bundle.json``) the robot; :meth:`Adaptation.adapt` is
the one place that rule is dispatched. The two rules are pure functions of the parameters:

- :func:`sgd_steps` (GrBAL, Meta-SGD): n gradient steps on the window loss, exported as
  ``adapt.onnx`` and run on the robot exactly as here.
- :func:`last_layer_rls` (ALPaCA, Neural-Fly): the output layer in closed form over the hidden
  layers' features; the robot runs ``features.onnx`` and the same solve in numpy
  (``metarl_runtime.closed_form_rls``).

The step sizes are not part of the value: they are meta-learned tensors, trained beside the
parameters by the same optimiser and stored beside them, and a baseline adapts with the same
rule at other step sizes (MB+DE). So they are passed beside the parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import torch

from metarl_core.model_based.dynamics_model import (
    Params,
    StepSizes,
    mlp_forward,
    normalized_delta,
    normalized_inputs,
    window_loss,
)
from metarl_core.model_based.replay_buffer import Transitions

AdaptationRule = Literal["gradient", "rls"]
ADAPTATION_RULES: tuple[str, ...] = get_args(AdaptationRule)


@dataclass(frozen=True)
class Adaptation:
    """Which rule adapts the model on the robot's window, and its settings."""

    rule: AdaptationRule = "gradient"
    """"gradient" (n inner SGD steps) or "rls" (closed-form last layer)."""
    inner_steps: int = 1
    """n: SGD steps of the gradient rule (kept, unused, by "rls": bundle.json records it)."""
    rls_prior_precision: float = 1.0
    """Ridge precision pulling the RLS output layer toward the meta-learned one."""
    rls_forgetting: float = 1.0
    """λ in (0, 1]: the RLS solve weighs a transition ``a`` steps older than the window's newest
    by λᵃ (1: all alike). Below 1 the solve follows a change (a payload landing) within a tick or
    two, where an evenly weighted window of M averages it in over about M/2 ticks, while the
    older transitions still condition the solve."""

    def __post_init__(self) -> None:
        if self.rule not in ADAPTATION_RULES:
            raise ValueError(f"Adaptation.rule={self.rule!r} must be one of {list(ADAPTATION_RULES)}")
        if self.inner_steps < 1:
            raise ValueError(f"Adaptation.inner_steps={self.inner_steps} must be >= 1")
        if not self.rls_prior_precision > 0:
            raise ValueError(f"Adaptation.rls_prior_precision={self.rls_prior_precision} must be > 0")
        if not 0.0 < self.rls_forgetting <= 1.0:
            raise ValueError(f"Adaptation.rls_forgetting={self.rls_forgetting} must be in (0, 1]")

    @property
    def takes_step_sizes(self) -> bool:
        """Whether :meth:`adapt` reads its step sizes (the closed form has none)."""
        return self.rule == "gradient"

    @property
    def prior_precision(self) -> float | None:
        """The ridge prior precision of a closed-form rule (what ``bundle.json`` records), None for
        the gradient rule, which has no prior."""
        return self.rls_prior_precision if self.rule == "rls" else None

    def adapt(
        self,
        params: Params,
        window: Transitions[torch.Tensor],
        stats: Mapping[str, torch.Tensor],
        step_sizes: StepSizes,
        create_graph: bool = False,
    ) -> Params:
        """``params`` adapted on ``window`` by this rule. ``create_graph`` keeps the gradient
        rule's inner gradients differentiable (second-order meta-training, see
        :func:`sgd_steps`); the closed form is differentiable either way."""
        if self.rule == "rls":
            return last_layer_rls(params, window, stats, self.rls_prior_precision, self.rls_forgetting)
        return sgd_steps(params, window, stats, step_sizes, self.inner_steps, create_graph)

    def adapt_regression(
        self,
        params: Params,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        step_sizes: StepSizes,
        create_graph: bool = False,
    ) -> Params:
        """The same rule on any MLP regression: ``params`` adapted on a window of normalised
        ``inputs`` ``(M, in)`` and ``targets`` ``(M, out)`` (mean squared error), as the residual
        torque model is (``metarl_core.model_based.residual_model``)."""
        if self.rule == "rls":
            return ridge_output_layer(params, inputs, targets, self.rls_prior_precision, self.rls_forgetting)

        def loss_fn(p: Params) -> torch.Tensor:
            return ((mlp_forward(p, inputs) - targets) ** 2).mean()

        return gradient_steps(params, loss_fn, step_sizes, self.inner_steps, create_graph)


def sgd_steps(
    params: Params,
    window: Transitions[torch.Tensor],
    stats: Mapping[str, torch.Tensor],
    step_sizes: StepSizes,
    inner_steps: int,
    create_graph: bool = True,
) -> Params:
    """``inner_steps`` SGD steps on the dynamics window loss (:func:`gradient_steps` on
    ``window_loss``)."""

    def loss_fn(p: Params) -> torch.Tensor:
        return window_loss(p, *window, stats)

    return gradient_steps(params, loss_fn, step_sizes, inner_steps, create_graph)


def gradient_steps(
    params: Params,
    loss_fn: Callable[[Params], torch.Tensor],
    step_sizes: StepSizes,
    inner_steps: int,
    create_graph: bool = True,
) -> Params:
    """``inner_steps`` SGD steps on ``loss_fn``, ``θ ← θ − α ⊙ ∇θ L``: the gradient rule of any
    model whose window loss is a function of its parameters.

    ``step_sizes`` is a scalar or a per-parameter dict (Meta-SGD). With ``create_graph`` the
    result stays differentiable w.r.t. ``params`` and ``step_sizes`` (second-order
    meta-gradients); without it the inner gradients are treated as constants (first order).
    Uses ``torch.func.grad`` so it composes with ``vmap`` over a task batch.
    """
    if inner_steps < 1:
        raise ValueError(f"inner_steps={inner_steps} must be >= 1")
    grad_fn = torch.func.grad(loss_fn)
    adapted = dict(params)
    for _ in range(inner_steps):
        grads = grad_fn(adapted)
        if not create_graph:
            grads = {k: g.detach() for k, g in grads.items()}
        adapted = {
            k: adapted[k] - (step_sizes[k] if isinstance(step_sizes, Mapping) else step_sizes) * grads[k]
            for k in adapted
        }
    return adapted


def mlp_features(params: Params, inputs: torch.Tensor) -> torch.Tensor:
    """Last hidden layer ``(B, H)`` of the MLP of ``params``: every layer but the output one."""
    hidden = inputs
    for i in range(len(params) // 2 - 1):
        hidden = torch.tanh(hidden @ params[f"layers.{i}.weight"].T + params[f"layers.{i}.bias"])
    return hidden


def features(params: Params, state_norm: torch.Tensor, action_norm: torch.Tensor) -> torch.Tensor:
    """The dynamics model's last hidden layer (what ``features.onnx`` computes)."""
    return mlp_features(params, torch.cat([state_norm, action_norm], dim=-1))


def last_layer_rls(
    params: Params,
    window: Transitions[torch.Tensor],
    stats: Mapping[str, torch.Tensor],
    prior_precision: float,
    forgetting: float = 1.0,
) -> Params:
    """The dynamics model's output layer by :func:`ridge_output_layer` on the window's normalised
    inputs and state changes."""
    states, actions, next_states = window
    inputs = torch.cat(normalized_inputs(states, actions, stats), dim=-1)
    return ridge_output_layer(params, inputs, normalized_delta(states, next_states, stats), prior_precision, forgetting)


def ridge_output_layer(
    params: Params, inputs: torch.Tensor, targets: torch.Tensor, prior_precision: float, forgetting: float = 1.0
) -> Params:
    """``params`` with the output layer replaced by its ridge posterior mean on a window of
    (normalised) ``inputs`` ``(M, in)`` and ``targets`` ``(M, out)``: the RLS rule of any MLP.

    The hidden layers are a feature map φ(x); the targets Y are regressed on [φ, 1], shrunk
    toward the meta-learned output layer W̃₀:

        W̃ = (Yᵀ Φ̃ + λ W̃₀) (Φ̃ᵀ Φ̃ + λ I)⁻¹,

    which is what recursive least squares over the window converges to from the prior
    (W̃₀, λ⁻¹I). It needs no gradient graph and one small solve, and it is differentiable, so the
    feature map is meta-trained through it with the same GrBAL objective. With ``forgetting`` γ < 1
    the window's rows (oldest first) are weighted γᵃ by their age a (the newest 1): recursive least
    squares with a forgetting factor, over the window.
    """
    if prior_precision <= 0:
        raise ValueError(f"prior_precision={prior_precision} must be > 0")
    last = len(params) // 2 - 1
    weight, bias = params[f"layers.{last}.weight"], params[f"layers.{last}.bias"]
    phi = mlp_features(params, inputs)
    phi = torch.cat([phi, torch.ones_like(phi[:, :1])], dim=1)
    if forgetting < 1.0:
        ages = torch.arange(phi.shape[0] - 1, -1, -1, dtype=phi.dtype, device=phi.device)
        root_weights = (forgetting**0.5) ** ages[:, None]
        phi, targets = phi * root_weights, targets * root_weights
    prior = torch.cat([weight, bias.T], dim=1)  # (out, H + 1)
    gram = phi.T @ phi + prior_precision * torch.eye(phi.shape[1], dtype=phi.dtype, device=phi.device)
    rhs = targets.T @ phi + prior_precision * prior  # (out, H + 1)
    posterior = torch.linalg.solve(gram, rhs.T).T  # gram is symmetric
    adapted = dict(params)
    adapted[f"layers.{last}.weight"] = posterior[:, :-1]
    adapted[f"layers.{last}.bias"] = posterior[:, -1:].T
    return adapted
