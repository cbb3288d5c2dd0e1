"""Bundles with random weights: plumbing tests need a valid bundle for a robot, not a good model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from export.onnx_export import export_trained_dynamics
from export.recurrent_export import export_trained_policy
from metarl_core.model_based.adaptation import Adaptation
from metarl_core.model_based.checkpoint import TrainedDynamics
from metarl_core.model_based.dynamics_model import ModelShape, Normalizer, init_params
from metarl_core.policy.policy_checkpoint import TrainedPolicy
from metarl_core.policy.recurrent_policy import RecurrentPolicyShape, init_recurrent_policy
from sim.panda_payload import PANDA
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
        Adaptation("gradient", inner_steps=1),
        0.01,
        planner={"samples": 16, "horizon": 3},
    )
    return export_trained_dynamics(model, out_dir)


def untrained_recurrent_panda_bundle(out_dir: Path) -> Path:
    """Export a randomly initialised RL² policy for the Panda (a ``mode: recurrent`` bundle), its
    policy head scaled up so that commands are not all near zero."""
    shape = RecurrentPolicyShape(PANDA.state_dim + PANDA.reference_dim, PANDA.action_dim, 32)
    generator = torch.Generator().manual_seed(0)
    params = init_recurrent_policy(shape, generator)
    params["policy_weight"] = torch.randn(shape.hidden_size, shape.action_dim, generator=generator)
    stats = {"obs_mean": torch.zeros(1, shape.obs_dim), "obs_std": torch.ones(1, shape.obs_dim)}
    policy = TrainedPolicy(
        "rl2", "metarl/PandaPayload-v0", shape, params, stats, PANDA.action_low, PANDA.action_high, PANDA
    )
    return export_trained_policy(policy, out_dir)
