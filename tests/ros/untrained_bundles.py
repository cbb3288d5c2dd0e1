"""Bundles with random weights: plumbing tests need a valid bundle for a robot, not a good model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from export.onnx_export import export_trained_dynamics
from metarl_core.checkpoint import TrainedDynamics
from metarl_core.dynamics_model import ModelShape, Normalizer, init_params
from sim.robot_description import RobotDescription


def untrained_bundle(robot: RobotDescription, out_dir: Path) -> Path:
    """Export a randomly initialised model for ``robot`` (small MPPI, so ticks stay cheap)."""
    rng = np.random.default_rng(0)
    state_dim, action_dim = robot.state_dim, robot.action_dim
    half_range = (np.asarray(robot.action_high) - np.asarray(robot.action_low)) / 2.0
    normalizer = Normalizer.fit(
        rng.normal(size=(64, state_dim)).astype(np.float32),
        (rng.normal(size=(64, action_dim)) * half_range / 3.0).astype(np.float32),
        (rng.normal(size=(64, state_dim)) * 0.01).astype(np.float32),
    )
    shape = ModelShape(state_dim, action_dim, (16, 16))
    model = TrainedDynamics(
        robot,
        shape,
        init_params(shape, torch.Generator().manual_seed(0)),
        normalizer,
        8,
        1,
        0.01,
        planner={"samples": 16, "horizon": 3},
    )
    return export_trained_dynamics(model, out_dir)
