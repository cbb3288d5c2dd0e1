"""Checkpoint -> bundle: the dynamics model *and its adaptation step* as ONNX graphs.

How the gradient gets into the graph: the whole inner loop (``adapt_params``, which uses
``torch.func.grad``) is traced to plain aten ops by ``export.graph_export.export_graph``, and
that graph, which no longer contains any autograd call, is exported with the dynamo exporter.
Every graph is checked against torch at both onnxruntime optimisation levels before the bundle
is written (``export.graph_export.check_parity``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from export.graph_export import (
    check_export_target,
    check_parity,
    export_graph,
    provenance,
    robot_fields,
    staged_directory,
    write_manifest,
)
from metarl_core.model_based.checkpoint import TrainedDynamics, load_checkpoint
from metarl_core.model_based.dynamics_model import Params, adapt_params, predict_next_state, window_loss
from metarl_core.model_based.last_layer_rls import features

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
        states, actions, next_states = inputs[n_params : n_params + 3]
        constants = inputs[n_params + 3 :]
        stats = dict(zip(STAT_NAMES, constants[: len(STAT_NAMES)], strict=True))
        step_sizes: float | dict[str, torch.Tensor] = (
            dict(zip(names, constants[len(STAT_NAMES) :], strict=True))
            if isinstance(model.step_sizes, Mapping)
            else float(model.step_sizes)
        )
        before = window_loss(params, states, actions, next_states, stats)
        adapted = adapt_params(
            params, states, actions, next_states, stats, step_sizes, model.inner_steps, create_graph=False
        )
        after = window_loss(adapted, states, actions, next_states, stats)
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
        state_norm = (states - stats["state_mean"]) / stats["state_std"]
        action_norm = (actions - stats["action_mean"]) / stats["action_std"]
        return features(params, state_norm, action_norm)

    return step


def _export_graph(
    step: Callable[..., Any],
    model: TrainedDynamics,
    example: list[torch.Tensor],
    input_names: list[str],
    output_names: list[str],
    dynamic_axis: str,
    path: Path,
) -> None:
    """A model graph: the parameters lead with fixed shapes, the data inputs share one dynamic axis."""
    n_params = len(model.shape.parameter_names())
    export_graph(step, _constants(model), example, input_names, output_names, dynamic_axis, path, n_params)


def export_trained_dynamics(model: TrainedDynamics, out_dir: Path, seed: int = 0, sign_key: Path | None = None) -> Path:
    """Write ``model`` as a verified bundle directory at ``out_dir`` (replaced atomically; an
    ``out_dir`` that is not a bundle is refused), signed with ``sign_key`` when given."""
    if model.mode not in ("gradient", "rls"):
        raise ValueError(f"mode={model.mode!r} is not one of gradient, rls")
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
        constants = list(_constants(model).values())
        parity = 0.0
        if model.mode == "gradient":
            adapt_inputs = [*names, *WINDOW_INPUTS]
            adapt_outputs = [f"adapted.{k}" for k in names] + ["loss_before", "loss_after"]
            adapt = adaptation_step(model)
            example = params + window(model.window_size)
            _export_graph(adapt, model, example, adapt_inputs, adapt_outputs, "window", staging / "adapt.onnx")
            for length in sorted({1, max(1, model.window_size // 2), model.window_size}):
                parity = max(
                    parity,
                    check_parity(
                        staging / "adapt.onnx",
                        lambda *x: adapt(*x, *constants),
                        params + window(length),
                        adapt_inputs,
                        "adapt.onnx",
                    ),
                )
        else:
            feature_inputs = [*names, "states", "actions"]
            feature_fn = feature_step(model)
            example = params + window(8)[:2]
            _export_graph(feature_fn, model, example, feature_inputs, ["features"], "batch", staging / "features.onnx")
            parity = check_parity(
                staging / "features.onnx",
                lambda *x: feature_fn(*x, *constants),
                params + window(model.window_size)[:2],
                feature_inputs,
                "features.onnx",
            )
        predict = prediction_step(model)
        predict_inputs = [*names, "states", "actions"]
        _export_graph(
            predict,
            model,
            params + window(8)[:2],
            predict_inputs,
            ["next_states"],
            "batch",
            staging / "predict.onnx",
        )
        parity = max(
            parity,
            check_parity(
                staging / "predict.onnx",
                lambda *x: predict(*x, *constants),
                params + window(32)[:2],
                predict_inputs,
                "predict.onnx",
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
        "mode": model.mode,
        **robot_fields(model.robot),
        "window_size": model.window_size,
        "inner_steps": model.inner_steps,
        "step_sizes": step_sizes,
        "normalizer": model.normalizer.to_dict(),
        "parameters": [{"name": k, "shape": list(model.params[k].shape)} for k in model.shape.parameter_names()],
        "hidden_sizes": list(model.shape.hidden_sizes),
        "planner": model.planner,
        "provenance": provenance(model.config, parity),
        "rls_prior_precision": model.rls_prior_precision if model.mode == "rls" else None,
    }
    write_manifest(staging, fields, sign_key)


def export_bundle(run_dir: Path, out_dir: Path, sign_key: Path | None = None) -> Path:
    """``metarl export --run <dir> --out <bundle> [--sign-key KEY.pem]``: the run's checkpoint
    as a verified bundle."""
    check_export_target(Path(out_dir))
    model, _ = load_checkpoint(Path(run_dir))
    return export_trained_dynamics(model, Path(out_dir), sign_key=sign_key)
