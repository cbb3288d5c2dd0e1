"""What every bundle export shares: trace a function to ONNX, prove it matches torch, and write
the bundle directory atomically with its manifest and provenance.

How a function gets into a graph: it is traced to plain aten ops with
``make_fx(tracing_mode="symbolic")`` (which also turns a ``torch.func.grad`` inner loop into
ordinary ops) and that graph is exported with the dynamo exporter. Placing ``torch.func.grad``
directly inside an exported module fails with both exporters, the ONNX ``Gradient`` op is not
run by onnxruntime, and onnxruntime-training is deprecated.

Every graph is checked against torch at ``ORT_DISABLE_ALL`` and at the runtime's optimisation
level before a bundle is written: onnxruntime's optimiser has produced wrong numbers for some
fused MatMuls before, so no bundle reaches a robot unverified.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch.export import Dim
from torch.fx.experimental.proxy_tensor import make_fx

from metarl_runtime.bundle_manifest import DIGEST_NAME, INTEGRITY_NAMES, MANIFEST_NAME, SCHEMA_VERSION, sha256_of
from metarl_runtime.onnx_sessions import RUNTIME_OPTIMIZATION_LEVEL
from sim.robot_description import RobotDescription

PARITY_TOLERANCE = 1e-5
"""Largest allowed |ORT − torch|, relative to max(1, |torch|), of any output."""


class ExportParityError(RuntimeError):
    """The exported graph disagrees with torch beyond ``PARITY_TOLERANCE``; no bundle written."""


class _ConstantsModule(torch.nn.Module):
    """Runs a traced graph with the model's constants (normalisation, step sizes, weights) as buffers.

    Passing them as buffers rather than closed-over tensors keeps the traced graph free of
    real tensors, which the dynamo exporter's fake-tensor tracing requires; in the ONNX file they
    become initializers.
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


@contextmanager
def _quiet_onnx_registry() -> Iterator[None]:
    """Silence the exporter's registry, which logs one warning per torchvision operator it
    cannot register ("torchvision is not installed") on every export: noise in training and demo
    output for operators no metarl graph uses."""
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)
    try:
        yield
    finally:
        registry.setLevel(level)


def export_graph(
    step: Callable[..., Any],
    constants: Mapping[str, torch.Tensor],
    example: Sequence[torch.Tensor],
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axis: str,
    path: Path,
    static_inputs: int = 0,
) -> None:
    """Write ``step(*inputs, *constants)`` to ``path`` as an ONNX graph of ``inputs`` only.

    The first ``static_inputs`` inputs keep the example's shapes; every other input has a
    dynamic leading dimension named ``dynamic_axis``. The example's leading size must be at
    least 2: torch.export specialises a dimension of size 1.
    """
    traced = make_fx(step, tracing_mode="symbolic")(*example, *constants.values())
    module = _ConstantsModule(traced, constants)
    batch = Dim(dynamic_axis, min=1, max=65536)
    dynamic = [None] * static_inputs + [{0: batch}] * (len(example) - static_inputs)
    with warnings.catch_warnings(), _quiet_onnx_registry():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            tuple(example),
            dynamo=True,
            dynamic_shapes=(tuple(dynamic),),
            input_names=list(input_names),
            output_names=list(output_names),
            verbose=False,
        )
    program.save(str(path))
    onnx.checker.check_model(str(path))


def check_parity(
    path: Path, reference: Callable[..., Any], inputs: Sequence[torch.Tensor], input_names: Sequence[str], what: str
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


def export_checked_graph(
    step: Callable[..., Any],
    constants: Mapping[str, torch.Tensor],
    example: Sequence[torch.Tensor],
    checks: Sequence[Sequence[torch.Tensor]],
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axis: str,
    path: Path,
    static_inputs: int = 0,
) -> float:
    """:func:`export_graph`, then :func:`check_parity` of the graph against ``step`` on each input
    set of ``checks``: the worst relative error (a graph off by more raises, nothing is kept)."""
    export_graph(step, constants, example, input_names, output_names, dynamic_axis, path, static_inputs)
    values = list(constants.values())
    return max(check_parity(path, lambda *x: step(*x, *values), inputs, input_names, path.name) for inputs in checks)


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


def provenance(config: Mapping[str, Any], parity: float) -> dict[str, Any]:
    """Where a bundle came from: commit, training config, library versions, measured parity."""
    return {
        "commit": _git_commit(),
        "config": dict(config),
        "versions": {
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "numpy": np.__version__,
        },
        "parity_max_relative_error": parity,
    }


def robot_fields(robot: RobotDescription) -> dict[str, Any]:
    """The manifest fields every mode shares: which robot, how its sensors map, its limits."""
    return {
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
    }


class ExportTargetError(FileExistsError):
    """``--out`` names something that is not a bundle metarl wrote: it is never replaced."""


def write_manifest(staging: Path, fields: Mapping[str, Any], sign_key: Path | None = None) -> None:
    """``staging/bundle.json``: the schema version, ``fields``, and the sha256 of every file
    already in ``staging`` (so the manifest is written last); then ``bundle.json.sha256`` over
    its bytes and, with ``sign_key`` (an Ed25519 PEM private key), ``bundle.json.sig``."""
    manifest = {
        "schema_version": SCHEMA_VERSION,
        **fields,
        "files": {path.name: sha256_of(path) for path in sorted(staging.iterdir()) if path.name != MANIFEST_NAME},
    }
    raw = json.dumps(manifest, indent=2, allow_nan=False).encode("utf-8")
    (staging / MANIFEST_NAME).write_bytes(raw)
    (staging / DIGEST_NAME).write_text(f"{hashlib.sha256(raw).hexdigest()}  {MANIFEST_NAME}\n", encoding="ascii")
    if sign_key is not None:
        from metarl_runtime.bundle_signature import sign_manifest

        sign_manifest(staging, sign_key)


def check_export_target(out_dir: Path) -> None:
    """Refuse an ``out_dir`` that export would replace but did not write: a file, or a
    non-empty directory that is not a bundle (a ``bundle.json`` whose ``files`` and integrity
    files are all it holds). Called before any work and again just before the replace."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise ExportTargetError(f"{out_dir}: exists and is not a bundle directory; export writes elsewhere or nowhere")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    try:
        listed = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))["files"]
        ours = {MANIFEST_NAME, *INTEGRITY_NAMES, *listed}
    except (OSError, ValueError, KeyError, TypeError):
        raise ExportTargetError(
            f"{out_dir}: exists and is not a bundle written by metarl (no readable bundle.json); "
            "it is left as it is: choose another --out"
        ) from None
    foreign = sorted(entry.name for entry in out_dir.iterdir() if entry.name not in ours or entry.is_symlink())
    if foreign:
        raise ExportTargetError(
            f"{out_dir}: holds {foreign[:5]} that its bundle.json does not list; it is left as it is: "
            "choose another --out"
        )


@contextmanager
def staged_directory(out_dir: Path) -> Iterator[Path]:
    """A fresh sibling directory of ``out_dir`` to write a bundle into. When the block completes
    it replaces ``out_dir`` (a reader never sees a half-written bundle); when it raises, it is
    removed and ``out_dir`` is left as it was. An ``out_dir`` that is not a bundle metarl wrote
    is refused (:class:`ExportTargetError`) before anything is written."""
    check_export_target(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield staging
        check_export_target(out_dir)
        _replace_directory(staging, out_dir)
    except OSError as error:
        if isinstance(error, ExportTargetError):
            raise
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise OSError(error.errno, f"{out_dir}: bundle could not be written ({reason}); nothing was replaced") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _replace_directory(staging: Path, out_dir: Path) -> None:
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out_dir, old)
        os.replace(staging, out_dir)
        shutil.rmtree(old)
    else:
        os.replace(staging, out_dir)
