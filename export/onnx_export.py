"""Checkpoint -> bundle: the dynamics model *and its adaptation step* as ONNX graphs.

How the gradient gets into the graph: the whole inner loop (``adapt_params``, which uses
``torch.func.grad``) is traced to plain aten ops with ``make_fx(tracing_mode="symbolic")``, and
that graph, which no longer contains any autograd call, is exported with the dynamo exporter.
Placing ``torch.func.grad`` directly inside an exported module fails with both exporters, the
ONNX ``Gradient`` op is not run by onnxruntime, and onnxruntime-training is deprecated.

Every export is checked against torch at ``ORT_DISABLE_ALL`` and at the runtime's optimisation
level before the bundle is written: onnxruntime's optimiser has produced wrong numbers for some
fused MatMuls before, so no bundle reaches a robot unverified.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch.export import Dim
from torch.fx.experimental.proxy_tensor import make_fx

from export.bundle_manifest import MANIFEST_NAME, SCHEMA_VERSION, sha256_of
from export.runtime import RUNTIME_OPTIMIZATION_LEVEL
from metarl_core.checkpoint import TrainedDynamics, load_checkpoint
from metarl_core.dynamics_model import Params, adapt_params, predict_next_state, window_loss
from metarl_core.last_layer_rls import features

PARITY_TOLERANCE = 1e-5
"""Largest allowed |ORT − torch|, relative to max(1, |torch|), of any output."""
STAT_NAMES = ("state_mean", "state_std", "action_mean", "action_std", "delta_mean", "delta_std")
WINDOW_INPUTS = ("states", "actions", "next_states")


class ExportParityError(RuntimeError):
    """The exported graph disagrees with torch beyond ``PARITY_TOLERANCE``; no bundle written."""


class _ConstantsModule(torch.nn.Module):
    """Runs a traced graph with the model's constants (normalisation, step sizes) as buffers.

    Passing them as buffers rather than closed-over tensors keeps the traced graph free of
    real tensors, which the dynamo exporter's fake-tensor tracing requires.
    """

    def __init__(self, graph: torch.fx.GraphModule, constants: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        self.graph = graph
        self.constant_names = list(constants)
        for i, value in enumerate(constants.values()):
            self.register_buffer(f"constant_{i}", value.detach().clone().float())

    def forward(self, *inputs: torch.Tensor) -> Any:
        constants = [getattr(self, f"constant_{i}") for i in range(len(self.constant_names))]
        return self.graph(*inputs, *constants)


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
    constants = _constants(model)
    traced = make_fx(step, tracing_mode="symbolic")(*example, *constants.values())
    module = _ConstantsModule(traced, constants)
    n_params = len(model.shape.parameter_names())
    batch = Dim(dynamic_axis, min=1, max=65536)
    dynamic = [None] * n_params + [{0: batch}] * (len(example) - n_params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            tuple(example),
            dynamo=True,
            dynamic_shapes=(tuple(dynamic),),
            input_names=input_names,
            output_names=output_names,
            verbose=False,
        )
    program.save(str(path))
    onnx.checker.check_model(str(path))


def _check_parity(
    path: Path, reference: Callable[..., Any], inputs: list[torch.Tensor], input_names: list[str], what: str
) -> float:
    """Worst relative error of the graph at both optimisation levels; raise above tolerance."""
    expected = reference(*inputs)
    expected = [t.detach().numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
    feed = {name: t.detach().numpy() for name, t in zip(input_names, inputs, strict=True)}
    worst = 0.0
    for level in (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, RUNTIME_OPTIMIZATION_LEVEL):
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for got, want in zip(session.run(None, feed), expected, strict=True):
            error = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))
            worst = max(worst, error)
            if not error <= PARITY_TOLERANCE:
                raise ExportParityError(f"{what}: ORT ({level}) differs from torch by {error:.2e} > {PARITY_TOLERANCE}")
    return worst


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _versions() -> dict[str, str]:
    return {
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
    }


def export_trained_dynamics(model: TrainedDynamics, out_dir: Path, seed: int = 0) -> Path:
    """Write ``model`` as a verified bundle directory at ``out_dir`` (replaced atomically)."""
    if model.mode not in ("gradient", "rls"):
        raise ValueError(f"mode={model.mode!r} is not one of gradient, rls")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
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

    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
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
                    _check_parity(
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
            parity = _check_parity(
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
            _check_parity(
                staging / "predict.onnx",
                lambda *x: predict(*x, *constants),
                params + window(32)[:2],
                predict_inputs,
                "predict.onnx",
            ),
        )
        np.savez(staging / "meta_params.npz", **{k: p.numpy() for k, p in zip(names, params, strict=True)})
        _write_manifest(model, staging, parity)
        _replace_directory(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out_dir


def _write_manifest(model: TrainedDynamics, staging: Path, parity: float) -> None:
    robot = model.robot
    step_sizes = (
        {k: v.detach().cpu().tolist() for k, v in model.step_sizes.items()}
        if isinstance(model.step_sizes, Mapping)
        else float(model.step_sizes)
    )
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "mode": model.mode,
        "robot": robot.name,
        "joint_names": list(robot.joint_names),
        "state_fields": list(robot.state_fields),
        "reference_fields": list(robot.reference_fields),
        "command_interface": robot.command_interface,
        "action_low": list(robot.action_low),
        "action_high": list(robot.action_high),
        "control_rate_hz": robot.control_rate_hz,
        "wheel_radius_m": robot.wheel_radius_m,
        "track_width_m": robot.track_width_m,
        "window_size": model.window_size,
        "inner_steps": model.inner_steps,
        "step_sizes": step_sizes,
        "normalizer": model.normalizer.to_dict(),
        "parameters": [{"name": k, "shape": list(model.params[k].shape)} for k in model.shape.parameter_names()],
        "hidden_sizes": list(model.shape.hidden_sizes),
        "planner": model.planner,
        "provenance": {
            "commit": _git_commit(),
            "config": model.config,
            "versions": _versions(),
            "parity_max_relative_error": parity,
        },
        "rls_prior_precision": model.rls_prior_precision if model.mode == "rls" else None,
        "files": {path.name: sha256_of(path) for path in sorted(staging.iterdir()) if path.name != MANIFEST_NAME},
    }
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _replace_directory(staging: Path, out_dir: Path) -> None:
    """Swap ``staging`` in for ``out_dir``; a reader never sees a half-written bundle."""
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out_dir, old)
        os.replace(staging, out_dir)
        shutil.rmtree(old)
    else:
        os.replace(staging, out_dir)


def export_bundle(run_dir: Path, out_dir: Path) -> Path:
    """``metarl export --run <dir> --out <bundle>``: the run's checkpoint as a verified bundle."""
    model, _ = load_checkpoint(Path(run_dir))
    return export_trained_dynamics(model, Path(out_dir))
