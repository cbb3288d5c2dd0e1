"""Residual checkpoint -> ``mode: residual`` bundle: the residual torque model, its adaptation
step as a graph (or the features its closed form solves over), and the nominal arm.

```
bundle/
  bundle.json          mode: residual, adaptation_rule (rls|gradient), window_size (M), inner_steps,
                       step_sizes, rls_prior_precision, rls_forgetting, gradient_warm_start,
                       parameters, residual_normalizer
                       {input_mean, input_std, target_mean, target_std}, residual_inputs,
                       nominal {urdf_file, held_positions, damping_nms, friction_nm,
                       friction_smoothing_rad_s, kp_per_s2, kd_per_s}, provenance, files
  residual.onnx        (params..., inputs[B, 4n]) -> residual[B, n] (N·m): the MLP's part
  (physical: nothing more; the robot solves the physical parameters in closed form in numpy over
   ``physical_prior {mean, log_precision}``, P entries each, and adds ``design @ θ``)
  features.onnx        (rls)      (params..., inputs[B, 4n]) -> features[B, H]
  adapt.onnx           (gradient) (params..., inputs[M, 4n], targets[M, n])
                                    -> (adapted params..., loss_before[1,1], loss_after[1,1])
  meta_params.npz      the meta-learned parameters
  nominal_model.urdf   the arm's rigid-body model, as its maker ships it (payload-free)
```
The normalisation is baked into every graph (constants); the robot computes the raw inputs
``[sin q, cos q, q̇, q̈]`` and the targets with ``metarl_runtime.residual_torque``, the same code
training used. Every graph is checked against torch at both ORT levels (``export.graph_export``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

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
from metarl_core.model_based.adaptation import mlp_features
from metarl_core.model_based.residual_model import (
    RESIDUAL_STAT_NAMES,
    NominalDescription,
    TrainedResidual,
    adapt_residual,
    load_residual_checkpoint,
    predict_residual,
    residual_loss,
)
from metarl_runtime.residual_torque import RESIDUAL_INPUT_NAMES

NOMINAL_URDF_NAME = "nominal_model.urdf"


def _constants(model: TrainedResidual) -> dict[str, torch.Tensor]:
    constants = {name: torch.as_tensor(getattr(model.stats, name)) for name in RESIDUAL_STAT_NAMES}
    if isinstance(model.step_sizes, Mapping):
        constants.update({f"step_size.{k}": v for k, v in model.step_sizes.items()})
    return constants


def _split(model: TrainedResidual, inputs: tuple[torch.Tensor, ...], data: int) -> tuple:
    names = model.parameter_names()
    n = len(names)
    params = dict(zip(names, inputs[:n], strict=True))
    constants = inputs[n + data :]
    stats = dict(zip(RESIDUAL_STAT_NAMES, constants[: len(RESIDUAL_STAT_NAMES)], strict=True))
    step_sizes = (
        dict(zip(names, constants[len(RESIDUAL_STAT_NAMES) :], strict=True))
        if isinstance(model.step_sizes, Mapping)
        else float(model.step_sizes)
    )
    return params, inputs[n : n + data], stats, step_sizes


def residual_step(model: TrainedResidual) -> Callable[..., torch.Tensor]:
    """What ``residual.onnx`` computes: (params..., inputs, constants...) -> residual torques."""

    def step(*inputs: torch.Tensor) -> torch.Tensor:
        params, (x,), stats, _ = _split(model, inputs, 1)
        return predict_residual(params, x, stats)

    return step


def feature_step(model: TrainedResidual) -> Callable[..., torch.Tensor]:
    """What ``features.onnx`` computes: (params..., inputs, constants...) -> last hidden layer."""

    def step(*inputs: torch.Tensor) -> torch.Tensor:
        params, (x,), stats, _ = _split(model, inputs, 1)
        return mlp_features(params, (x - stats["input_mean"]) / stats["input_std"])

    return step


def adaptation_step(model: TrainedResidual) -> Callable[..., tuple[torch.Tensor, ...]]:
    """What ``adapt.onnx`` computes: (params..., inputs, targets, constants...) -> (adapted
    params..., loss_before, loss_after): the gradient rule's n steps, in the graph."""
    names = model.parameter_names()

    def step(*inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        params, (x, y), stats, step_sizes = _split(model, inputs, 2)
        before = residual_loss(params, x, y, stats)
        adapted = adapt_residual(params, x, y, stats, model.adaptation, step_sizes)
        after = residual_loss(adapted, x, y, stats)
        return (*(adapted[k] for k in names), before.reshape(1, 1), after.reshape(1, 1))

    return step


def export_trained_residual(model: TrainedResidual, out_dir: Path, seed: int = 0, sign_key: Path | None = None) -> Path:
    """Write ``model`` as a verified ``mode: residual`` bundle at ``out_dir`` (replaced atomically)."""
    out_dir = Path(out_dir)
    names = model.parameter_names()
    params = [model.params[k].detach().float().cpu() for k in names]
    generator = torch.Generator().manual_seed(seed)
    stats = model.stats.torch()
    constants = _constants(model)
    n_params = len(names)

    def pairs(length: int) -> list[torch.Tensor]:
        x = stats["input_mean"] + stats["input_std"] * torch.randn(
            length, len(stats["input_mean"]), generator=generator
        )
        y = stats["target_mean"] + stats["target_std"] * torch.randn(
            length, len(stats["target_mean"]), generator=generator
        )
        return [x, y]

    lengths = sorted({2, max(2, model.window_size // 2), model.window_size})
    with staged_directory(out_dir) as staging:
        parity = export_checked_graph(
            residual_step(model),
            constants,
            params + pairs(8)[:1],
            [params + pairs(n)[:1] for n in (1, 32)],
            [*names, "inputs"],
            ["residual"],
            "batch",
            staging / "residual.onnx",
            n_params,
        )
        graph = 0.0
        if model.rule == "rls":
            graph = export_checked_graph(
                feature_step(model),
                constants,
                params + pairs(8)[:1],
                [params + pairs(n)[:1] for n in lengths],
                [*names, "inputs"],
                ["features"],
                "batch",
                staging / "features.onnx",
                n_params,
            )
        elif model.rule == "gradient":
            graph = export_checked_graph(
                adaptation_step(model),
                constants,
                params + pairs(model.window_size),
                [params + pairs(n) for n in lengths],
                [*names, "inputs", "targets"],
                [*(f"adapted.{k}" for k in names), "loss_before", "loss_after"],
                "window",
                staging / "adapt.onnx",
                n_params,
            )
        np.savez(staging / "meta_params.npz", **{k: p.numpy() for k, p in zip(names, params, strict=True)})
        (staging / NOMINAL_URDF_NAME).write_text(model.nominal.urdf, encoding="utf-8")
        _write_manifest(model, staging, max(parity, graph), sign_key)
    return out_dir


def nominal_fields(nominal: NominalDescription) -> dict[str, Any]:
    """``bundle.json``'s ``nominal`` mapping: the arm's model (the bundle's ``NOMINAL_URDF_NAME``
    file) and the numbers its computed torque is built from; residual and residual-action
    recurrent bundles both carry it, and ``metarl_runtime.bundle_manifest`` reads it for both."""
    return {
        "urdf_file": NOMINAL_URDF_NAME,
        "held_positions": dict(nominal.held_positions),
        "damping_nms": list(nominal.damping_nms),
        "friction_nm": list(nominal.friction_nm),
        "friction_smoothing_rad_s": nominal.friction_smoothing_rad_s,
        "kp_per_s2": nominal.kp_per_s2,
        "kd_per_s": nominal.kd_per_s,
    }


def _write_manifest(model: TrainedResidual, staging: Path, parity: float, sign_key: Path | None) -> None:
    step_sizes = (
        {k: v.detach().cpu().tolist() for k, v in model.step_sizes.items()}
        if isinstance(model.step_sizes, Mapping)
        else float(model.step_sizes)
    )
    fields = {
        "mode": "residual",
        **robot_fields(model.robot),
        "adaptation_rule": model.rule,
        "window_size": model.window_size,
        "inner_steps": 1 if model.adaptation is None else model.adaptation.inner_steps,
        "step_sizes": step_sizes,
        "rls_prior_precision": 1.0 if model.adaptation is None else model.adaptation.rls_prior_precision,
        "rls_forgetting": 1.0 if model.adaptation is None else model.adaptation.rls_forgetting,
        "gradient_warm_start": model.warm_start,
        "physical_prior": {k: v.detach().cpu().double().tolist() for k, v in model.physical_prior.items()},
        "parameters": [{"name": k, "shape": list(model.params[k].shape)} for k in model.parameter_names()],
        "residual_inputs": list(RESIDUAL_INPUT_NAMES),
        "residual_normalizer": model.stats.to_dict(),
        "nominal": nominal_fields(model.nominal),
        "provenance": provenance(model.config, parity),
    }
    write_manifest(staging, fields, sign_key)


def export_residual_bundle(run_dir: Path, out_dir: Path, sign_key: Path | None = None) -> Path:
    """``metarl export --run <dir> --out <bundle>`` for a ``grbal-residual`` run."""
    check_export_target(Path(out_dir))
    model, _ = load_residual_checkpoint(Path(run_dir))
    return export_trained_residual(model, Path(out_dir), sign_key=sign_key)
