"""The trained dynamics model as one value, and its atomic checkpoint file.

``TrainedDynamics`` is the contract between training (which writes it), evaluation, and the
ONNX exporter (which reads it). Writing is atomic (temp file then ``os.replace``) so a run killed
mid-write always leaves the previous checkpoint intact for ``--resume``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from metarl_core.dynamics_model import ModelShape, Normalizer, Params
from sim.robot_description import RobotDescription

CHECKPOINT_NAME = "checkpoint.pt"
AdaptationMode = Literal["gradient", "rls"]


@dataclass
class TrainedDynamics:
    """Everything needed to adapt and predict with a meta-learned dynamics model."""

    robot: RobotDescription
    shape: ModelShape
    params: Params
    normalizer: Normalizer
    window_size: int
    """M: transitions the robot adapts on."""
    inner_steps: int
    """n: gradient steps of the adaptation (ignored by ``rls``)."""
    step_sizes: float | Params
    """Scalar inner learning rate, or per-parameter learned step sizes (Meta-SGD)."""
    mode: AdaptationMode = "gradient"
    rls_prior_precision: float = 1.0
    """Ridge prior precision of last-layer RLS adaptation (``mode == "rls"``)."""
    planner: dict[str, Any] = field(default_factory=dict)
    """MPPI defaults (samples, horizon, noise, temperature, ...) shipped in the bundle."""
    config: dict[str, Any] = field(default_factory=dict)
    """The training config, for provenance."""


def save_checkpoint(path: Path, model: TrainedDynamics, training_state: dict[str, Any]) -> None:
    """Write ``model`` plus resumable training state (optimizer, RNG, iteration) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "robot": asdict(model.robot),
        "shape": asdict(model.shape),
        "params": {k: v.detach().cpu() for k, v in model.params.items()},
        "normalizer": model.normalizer.to_dict(),
        "window_size": model.window_size,
        "inner_steps": model.inner_steps,
        "step_sizes": (
            model.step_sizes
            if isinstance(model.step_sizes, float)
            else {k: v.detach().cpu() for k, v in model.step_sizes.items()}
        ),
        "mode": model.mode,
        "rls_prior_precision": model.rls_prior_precision,
        "planner": model.planner,
        "config": model.config,
        "training_state": training_state,
    }
    atomic_torch_save(payload, path)


def atomic_torch_save(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temp file in the same directory, then ``os.replace``: a kill mid-write
    leaves the previous file whole, never a truncated one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp_name)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def load_checkpoint(path: Path, map_location: str = "cpu") -> tuple[TrainedDynamics, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: the model and its training state.

    ``path`` may be the file or the run directory holding ``checkpoint.pt``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: train first (metarl train --config ...)")
    payload = torch.load(path, map_location=map_location, weights_only=False)
    robot = payload["robot"]
    model = TrainedDynamics(
        robot=RobotDescription(**{k: tuple(v) if isinstance(v, list) else v for k, v in robot.items()}),
        shape=ModelShape(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload["shape"].items()}),
        params=payload["params"],
        normalizer=Normalizer.from_dict(payload["normalizer"]),
        window_size=payload["window_size"],
        inner_steps=payload["inner_steps"],
        step_sizes=payload["step_sizes"],
        mode=payload["mode"],
        rls_prior_precision=payload["rls_prior_precision"],
        planner=payload["planner"],
        config=payload["config"],
    )
    return model, payload["training_state"]
