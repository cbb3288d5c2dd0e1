"""Checkpoint -> bundle: the dynamics model *and its adaptation step* as ONNX graphs.

How the gradient gets into the graph: the whole inner loop (``sgd_steps``, which uses
``torch.func.grad``) is traced to plain aten ops by ``export.graph_export.export_graph``, and
that graph, which no longer contains any autograd call, is exported with the dynamo exporter.
Every graph is checked against torch at both onnxruntime optimisation levels before the bundle
is written (``export.graph_export.check_parity``).

Each adaptation rule ships one graph (``ADAPTATION_GRAPHS``): the gradient rule its whole inner
loop (``adapt.onnx``), the closed-form RLS rule the features it solves over (``features.onnx``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from export.graph_export import (
    check_export_target,
    export_checked_graph,
    provenance,
    robot_fields,
    staged_directory,
    write_manifest,
)
from metarl_core.model_based.adaptation import AdaptationRule, features, sgd_steps
from metarl_core.model_based.checkpoint import TrainedDynamics, load_checkpoint
from metarl_core.model_based.dynamics_model import Params, normalized_inputs, predict_next_state, window_loss
from metarl_core.model_based.replay_buffer import Transitions

STAT_NAMES = ("state_mean", "state_std", "action_mean", "action_std", "delta_mean", "delta_std")
WINDOW_INPUTS = ("states", "actions", "next_states")


def _constants(model: TrainedDynamics) -> dict[str, torch.Tensor]:
    constants = {name: torch.as_tensor(getattr(model.normalizer, name)) for name in STAT_NAMES}
    if isinstance(model.step_sizes, Mapping):
        constants.update({f"step_size.{k}": v for k, v in model.step_sizes.items()})
    return constants


def adaptation_step(model: TrainedDynamics) -> Callable[..., tuple[torch.Tensor, ...]]:
    """The function the adaptation graph computes: (params..., window, constants...) ->
    (adapted params..., loss_before[1,1], loss_after[1,1])."""
    names = model.shape.parameter_names()
    n_params = len(names)

    def step(*inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        params = dict(zip(names, inputs[:n_params], strict=True))
        window = Transitions(*inputs[n_params : n_params + 3])
        constants = inputs[n_params + 3 :]
        stats = dict(zip(STAT_NAMES, constants[: len(STAT_NAMES)], strict=True))
        step_sizes: float | dict[str, torch.Tensor] = (
            dict(zip(names, constants[len(STAT_NAMES) :], strict=True))
            if isinstance(model.step_sizes, Mapping)
            else float(model.step_sizes)
        )
        before = window_loss(params, *window, stats)
        adapted = sgd_steps(params, window, stats, step_sizes, model.adaptation.inner_steps, create_graph=False)
        after = window_loss(adapted, *window, stats)
        return (*(adapted[k] for k in names), before.reshape(1, 1), after.reshape(1, 1))

    return step


def _split_model_inputs(
    model: TrainedDynamics, inputs: tuple[torch.Tensor, ...]
) -> tuple[Params, torch.Tensor, torch.Tensor, Params]:
    """The flat graph inputs ``(params..., states, actions, stats...)`` back into named pieces."""
    names = model.shape.parameter_names()
    n_params = len(names)
    params = dict(zip(names, inputs[:n_params], strict=True))
    states, actions = inputs[n_params : n_params + 2]
    stats = dict(zip(STAT_NAMES, inputs[n_params + 2 : n_params + 2 + len(STAT_NAMES)], strict=True))
    return params, states, actions, stats


def prediction_step(model: TrainedDynamics) -> Callable[..., torch.Tensor]:
    """The function the prediction graph computes: (params..., states, actions, stats...) -> next states."""

    def step(*inputs: torch.Tensor) -> torch.Tensor:
        return predict_next_state(*_split_model_inputs(model, inputs))

    return step


def feature_step(model: TrainedDynamics) -> Callable[..., torch.Tensor]:
    """The function the RLS feature graph computes: (params..., states, actions, stats...) -> φ."""

    def step(*inputs: torch.Tensor) -> torch.Tensor:
        params, states, actions, stats = _split_model_inputs(model, inputs)
        return features(params, *normalized_inputs(states, actions, stats))

    return step


WindowSampler = Callable[[int], list[torch.Tensor]]
"""``length -> [states, actions, next_states]``: random raw transitions around the normaliser."""


def _export_model_graph(
    step: Callable[..., object],
    model: TrainedDynamics,
    example: list[torch.Tensor],
    checks: list[list[torch.Tensor]],
    input_names: list[str],
    output_names: list[str],
    dynamic_axis: str,
    path: Path,
) -> float:
    """A model graph, verified: the parameters lead with fixed shapes, the data inputs share one
    dynamic axis. Returns the worst parity error over ``checks``."""
    n_params = len(model.shape.parameter_names())
    return export_checked_graph(
        step, _constants(model), example, checks, input_names, output_names, dynamic_axis, path, n_params
    )


def _export_gradient_graph(
    model: TrainedDynamics, staging: Path, params: list[torch.Tensor], window: WindowSampler
) -> float:
    """``adapt.onnx``: the inner SGD steps and both window losses, verified on windows of 1, M/2 and M."""
    names = model.shape.parameter_names()
    example = params + window(model.window_size)
    checks = [params + window(length) for length in sorted({1, max(1, model.window_size // 2), model.window_size})]
    outputs = [f"adapted.{k}" for k in names] + ["loss_before", "loss_after"]
    inputs = [*names, *WINDOW_INPUTS]
    return _export_model_graph(
        adaptation_step(model), model, example, checks, inputs, outputs, "window", staging / "adapt.onnx"
    )


def _export_feature_graph(
    model: TrainedDynamics, staging: Path, params: list[torch.Tensor], window: WindowSampler
) -> float:
    """``features.onnx``: the hidden layers the robot's closed-form RLS solves over."""
    example = params + window(8)[:2]
    checks = [params + window(model.window_size)[:2]]
    inputs = [*model.shape.parameter_names(), "states", "actions"]
    return _export_model_graph(
        feature_step(model), model, example, checks, inputs, ["features"], "batch", staging / "features.onnx"
    )


ADAPTATION_GRAPHS: dict[AdaptationRule, Callable[[TrainedDynamics, Path, list[torch.Tensor], WindowSampler], float]] = {
    "gradient": _export_gradient_graph,
    "rls": _export_feature_graph,
}
"""The graph each adaptation rule ships, written into the staging directory; each returns its parity."""


def export_trained_dynamics(model: TrainedDynamics, out_dir: Path, seed: int = 0, sign_key: Path | None = None) -> Path:
    """Write ``model`` as a verified bundle directory at ``out_dir`` (replaced atomically; an
    ``out_dir`` that is not a bundle is refused), signed with ``sign_key`` when given."""
    out_dir = Path(out_dir)
    names = model.shape.parameter_names()
    params = [model.params[k].detach().float().cpu() for k in names]
    state_dim, action_dim = model.shape.state_dim, model.shape.action_dim
    generator = torch.Generator().manual_seed(seed)
    stats = model.normalizer.torch()

    def window(length: int) -> list[torch.Tensor]:
        states = stats["state_mean"] + stats["state_std"] * torch.randn(length, state_dim, generator=generator)
        actions = stats["action_mean"] + stats["action_std"] * torch.randn(length, action_dim, generator=generator)
        deltas = stats["delta_mean"] + stats["delta_std"] * torch.randn(length, state_dim, generator=generator)
        return [states, actions, states + deltas]

    with staged_directory(out_dir) as staging:
        parity = ADAPTATION_GRAPHS[model.adaptation.rule](model, staging, params, window)
        predict_inputs = [*names, "states", "actions"]
        parity = max(
            parity,
            _export_model_graph(
                prediction_step(model),
                model,
                params + window(8)[:2],
                [params + window(32)[:2]],
                predict_inputs,
                ["next_states"],
                "batch",
                staging / "predict.onnx",
            ),
        )
        np.savez(staging / "meta_params.npz", **{k: p.numpy() for k, p in zip(names, params, strict=True)})
        _write_manifest(model, staging, parity, sign_key)
    return out_dir


def _write_manifest(model: TrainedDynamics, staging: Path, parity: float, sign_key: Path | None) -> None:
    step_sizes = (
        {k: v.detach().cpu().tolist() for k, v in model.step_sizes.items()}
        if isinstance(model.step_sizes, Mapping)
        else float(model.step_sizes)
    )
    fields = {
        "mode": model.adaptation.rule,
        **robot_fields(model.robot),
        "window_size": model.window_size,
        "inner_steps": model.adaptation.inner_steps,
        "step_sizes": step_sizes,
        "normalizer": model.normalizer.to_dict(),
        "parameters": [{"name": k, "shape": list(model.params[k].shape)} for k in model.shape.parameter_names()],
        "hidden_sizes": list(model.shape.hidden_sizes),
        "planner": model.planner,
        "provenance": provenance(model.config, parity),
        "rls_prior_precision": model.adaptation.prior_precision,
        "rls_forgetting": model.adaptation.rls_forgetting,
    }
    write_manifest(staging, fields, sign_key)


def export_bundle(run_dir: Path, out_dir: Path, sign_key: Path | None = None) -> Path:
    """``metarl export --run <dir> --out <bundle> [--sign-key KEY.pem]``: the run's checkpoint
    as a verified bundle."""
    check_export_target(Path(out_dir))
    model, _ = load_checkpoint(Path(run_dir))
    return export_trained_dynamics(model, Path(out_dir), sign_key=sign_key)
