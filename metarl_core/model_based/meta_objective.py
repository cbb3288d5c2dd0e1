"""The GrBAL meta-objective and the MB baseline objective, as pure functions of parameters.

Meta-objective: for each window, adapt the meta-parameters with n SGD steps on its M past
transitions, then score the adapted model on the K future ones. ``vmap`` runs all windows of
a meta-batch at once; the outer optimiser (Adam) differentiates through the inner steps
(second order) or treats the inner gradients as constants (first order).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from metarl_core.model_based.dynamics_model import Params, StepSizes, adapt_params, window_loss
from metarl_core.model_based.last_layer_rls import rls_adapt_params


def adapted_future_loss(
    params: Params,
    step_sizes: StepSizes,
    past: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    future: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    stats: Mapping[str, torch.Tensor],
    inner_steps: int,
    first_order: bool,
    rls_prior_precision: float | None = None,
) -> torch.Tensor:
    """Loss on the K future transitions after adapting on the M past ones (one window).

    With ``rls_prior_precision`` the adaptation is the closed-form last-layer RLS instead of
    gradient steps (``inner_steps`` and ``step_sizes`` are then unused).
    """
    if rls_prior_precision is not None:
        adapted = rls_adapt_params(params, *past, stats, rls_prior_precision)
    else:
        adapted = adapt_params(params, *past, stats, step_sizes, inner_steps, create_graph=not first_order)
    return window_loss(adapted, *future, stats)


def meta_loss(
    params: Params,
    step_sizes: StepSizes,
    past: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    future: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    stats: Mapping[str, torch.Tensor],
    inner_steps: int,
    first_order: bool,
    rls_prior_precision: float | None = None,
) -> torch.Tensor:
    """Mean adapted future loss over a batch of windows: tensors ``(B, M|K, dim)``."""

    def one(p_s, p_a, p_n, f_s, f_a, f_n):
        return adapted_future_loss(
            params, step_sizes, (p_s, p_a, p_n), (f_s, f_a, f_n), stats, inner_steps, first_order, rls_prior_precision
        )

    return torch.func.vmap(one)(*past, *future).mean()


def make_step_sizes(params: Params, inner_lr: float, learned: bool) -> StepSizes:
    """A scalar step size, or (Meta-SGD) one learnable step size per parameter entry."""
    if not learned:
        return float(inner_lr)
    return {k: torch.full_like(v, inner_lr).requires_grad_() for k, v in params.items()}
