"""The inner step is plain SGD, and the meta-gradient is the true derivative of the meta-loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metarl_core.model_based.adaptation import Adaptation, mlp_features, ridge_output_layer, sgd_steps
from metarl_core.model_based.dynamics_model import (
    ModelShape,
    init_mlp,
    init_params,
    mlp_forward,
    window_loss,
)
from metarl_core.model_based.meta_objective import meta_loss
from metarl_core.model_based.replay_buffer import Transitions, TransitionWindows

TWO_STEPS = Adaptation("gradient", inner_steps=2)


def unit_stats(state_dim: int, action_dim: int, dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    zeros, ones = torch.zeros, torch.ones
    return {
        "state_mean": zeros(state_dim, dtype=dtype) + 0.1,
        "state_std": ones(state_dim, dtype=dtype) * 2.0,
        "action_mean": zeros(action_dim, dtype=dtype),
        "action_std": ones(action_dim, dtype=dtype) * 3.0,
        "delta_mean": zeros(state_dim, dtype=dtype) - 0.05,
        "delta_std": ones(state_dim, dtype=dtype) * 0.5,
    }


def tiny(dtype: torch.dtype = torch.float64):
    shape = ModelShape(2, 1, (3,))
    params = {k: v.to(dtype) for k, v in init_params(shape, torch.Generator().manual_seed(0)).items()}
    generator = torch.Generator().manual_seed(1)
    window = [torch.randn(5, d, generator=generator, dtype=dtype) for d in (2, 1, 2)]
    return shape, params, window, unit_stats(2, 1, dtype)


def test_inner_step_equals_a_hand_computed_sgd_step() -> None:
    _, params, (s, a, n), stats = tiny()
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    loss = window_loss(leaves, s, a, n, stats)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    expected = {k: params[k] - 0.1 * g for k, g in zip(leaves, grads, strict=True)}

    adapted = sgd_steps(params, Transitions(s, a, n), stats, 0.1, inner_steps=1)

    for key in params:
        torch.testing.assert_close(adapted[key], expected[key], rtol=0, atol=1e-12)


def test_two_inner_steps_with_per_parameter_step_sizes() -> None:
    _, params, (s, a, n), stats = tiny()
    sizes = {k: torch.full_like(v, 0.05) * (i + 1) for i, (k, v) in enumerate(params.items())}
    manual = dict(params)
    for _ in range(2):
        leaves = {k: v.detach().requires_grad_() for k, v in manual.items()}
        grads = torch.autograd.grad(window_loss(leaves, s, a, n, stats), list(leaves.values()))
        manual = {k: leaves[k].detach() - sizes[k] * g for k, g in zip(leaves, grads, strict=True)}

    adapted = sgd_steps(params, Transitions(s, a, n), stats, sizes, inner_steps=2)

    for key in params:
        torch.testing.assert_close(adapted[key], manual[key], rtol=0, atol=1e-12)


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_matches_finite_differences(first_order: bool) -> None:
    """Second order: the exact derivative. First order: the derivative with inner gradients held fixed."""
    _, params, _, stats = tiny()
    generator = torch.Generator().manual_seed(2)
    past = Transitions(*(torch.randn(3, 4, d, generator=generator, dtype=torch.float64) for d in (2, 1, 2)))
    future = Transitions(*(torch.randn(3, 4, d, generator=generator, dtype=torch.float64) for d in (2, 1, 2)))
    windows = TransitionWindows(past, future)
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    loss = meta_loss(leaves, 0.3, windows, stats, TWO_STEPS, first_order=first_order)
    analytic = torch.autograd.grad(loss, list(leaves.values()))

    def numeric_loss(p: dict[str, torch.Tensor]) -> float:
        if not first_order:
            return float(meta_loss(p, 0.3, windows, stats, TWO_STEPS, first_order=False))
        # First order treats each window's inner gradients as constants evaluated at the base params.
        total = 0.0
        for w in range(3):
            window = [x[w] for x in past]
            adapted = {k: v.clone() for k, v in params.items()}
            for _ in range(2):
                leaves_w = {k: v.detach().requires_grad_() for k, v in adapted.items()}
                grads = torch.autograd.grad(window_loss(leaves_w, *window, stats), list(leaves_w.values()))
                adapted = {k: leaves_w[k].detach() - 0.3 * g for k, g in zip(leaves_w, grads, strict=True)}
            shift = {k: adapted[k] - params[k] for k in params}
            total += float(window_loss({k: p[k] + shift[k] for k in p}, *[x[w] for x in future], stats))
        return total / 3

    epsilon = 1e-6
    for (key, value), grad in zip(params.items(), analytic, strict=True):
        for index in range(value.numel()):
            plus = {k: v.clone() for k, v in params.items()}
            minus = {k: v.clone() for k, v in params.items()}
            plus[key].view(-1)[index] += epsilon
            minus[key].view(-1)[index] -= epsilon
            numeric = (numeric_loss(plus) - numeric_loss(minus)) / (2 * epsilon)
            assert abs(grad.view(-1)[index].item() - numeric) < 1e-6, (key, index, first_order)


def test_second_order_differs_from_first_order() -> None:
    """Guards the test above: the two meta-gradients are not accidentally the same computation."""
    _, params, _, stats = tiny()
    generator = torch.Generator().manual_seed(3)
    windows = TransitionWindows(
        *(
            Transitions(*(torch.randn(2, 4, d, generator=generator, dtype=torch.float64) for d in (2, 1, 2)))
            for _ in range(2)
        )
    )
    grads = []
    for first_order in (False, True):
        leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
        loss = meta_loss(leaves, 0.3, windows, stats, TWO_STEPS, first_order=first_order)
        grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(leaves.values()))]))
    assert not np.allclose(grads[0].numpy(), grads[1].numpy(), atol=1e-8)


def _step_window() -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """A tiny MLP and a window of 8 rows whose target jumps by 1 at the newest two: a payload that
    landed two ticks ago."""
    params = init_mlp((3, 8, 2), torch.Generator().manual_seed(0))
    inputs = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    targets = torch.zeros(8, 2)
    targets[-2:] += 1.0
    return params, inputs, targets


def test_rls_forgetting_follows_a_change_the_evenly_weighted_window_averages_in() -> None:
    params, inputs, targets = _step_window()
    newest = inputs[-1:]

    def newest_error(forgetting: float) -> float:
        adapted = ridge_output_layer(params, inputs, targets, 0.03, forgetting)
        return float((mlp_forward(adapted, newest) - targets[-1:]).abs().max())

    assert newest_error(0.3) < 0.5 * newest_error(1.0)
    evenly = ridge_output_layer(params, inputs, targets, 0.03)
    for name, value in ridge_output_layer(params, inputs, targets, 0.03, 1.0).items():
        torch.testing.assert_close(value, evenly[name], rtol=0, atol=0)


def test_rls_forgetting_weighs_each_row_by_its_age() -> None:
    """γ < 1 is the ridge solve of rows scaled by √γ^age, the newest row unscaled."""
    params, inputs, targets = _step_window()
    gamma = 0.5
    root = torch.sqrt(torch.tensor(gamma)) ** torch.arange(7, -1, -1, dtype=torch.float32)[:, None]
    weighted = ridge_output_layer(params, inputs, targets, 0.1, gamma)
    # The hidden layers are the feature map: scale the rows after it by solving on features directly.
    features = torch.cat([mlp_features(params, inputs), torch.ones(8, 1)], dim=1) * root
    prior = torch.cat([params["layers.1.weight"], params["layers.1.bias"].T], dim=1)
    gram = features.T @ features + 0.1 * torch.eye(features.shape[1])
    posterior = torch.linalg.solve(gram, (torch.mm((targets * root).T, features) + 0.1 * prior).T).T
    torch.testing.assert_close(weighted["layers.1.weight"], posterior[:, :-1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("forgetting", [0.0, -0.5, 1.5])
def test_a_forgetting_factor_outside_zero_to_one_is_refused(forgetting: float) -> None:
    with pytest.raises(ValueError, match=r"rls_forgetting=.* must be in \(0, 1\]"):
        Adaptation("rls", 1, 1.0, forgetting)
