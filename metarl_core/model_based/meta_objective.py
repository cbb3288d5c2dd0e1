"""The GrBAL meta-objective, as pure functions of parameters.

Meta-objective: for each window, adapt the meta-parameters on its M past transitions (by the
run's :class:`~metarl_core.model_based.adaptation.Adaptation`), then score the adapted model on
the K future ones. ``vmap`` runs all windows of a meta-batch at once; the outer optimiser (Adam)
differentiates through the inner steps (second order) or treats the inner gradients as
constants (first order). Evaluation scores its models with the same :func:`adapted_future_loss`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from metarl_core.model_based.adaptation import Adaptation
from metarl_core.model_based.dynamics_model import Params, StepSizes, window_loss
from metarl_core.model_based.replay_buffer import TransitionWindows


def adapted_future_loss(
    params: Params,
    step_sizes: StepSizes,
    window: TransitionWindows[torch.Tensor],
    stats: Mapping[str, torch.Tensor],
    adaptation: Adaptation,
    create_graph: bool = False,
) -> torch.Tensor:
    """Loss on the K future transitions after adapting on the M past ones (one window)."""
    adapted = adaptation.adapt(params, window.past, stats, step_sizes, create_graph)
    return window_loss(adapted, *window.future, stats)


def meta_loss(
    params: Params,
    step_sizes: StepSizes,
    windows: TransitionWindows[torch.Tensor],
    stats: Mapping[str, torch.Tensor],
    adaptation: Adaptation,
    first_order: bool,
) -> torch.Tensor:
    """Mean adapted future loss over a batch of windows: tensors ``(B, M|K, dim)``."""

    def one(window: TransitionWindows[torch.Tensor]) -> torch.Tensor:
        return adapted_future_loss(params, step_sizes, window, stats, adaptation, create_graph=not first_order)

    return torch.func.vmap(one)(windows).mean()


def make_step_sizes(params: Params, inner_lr: float, learned: bool) -> StepSizes:
    """A scalar step size, or (Meta-SGD) one learnable step size per parameter entry."""
    if not learned:
        return float(inner_lr)
    return {k: torch.full_like(v, inner_lr).requires_grad_() for k, v in params.items()}
