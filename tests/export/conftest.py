"""Tiny bundles built from untrained models: export and runtime tests need no training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from export.onnx_export import export_trained_dynamics
from metarl_core.checkpoint import TrainedDynamics
from metarl_core.dynamics_model import ModelShape, Normalizer, init_params
from sim.panda_payload import PANDA

WINDOW_SIZE = 6


def tiny_model(inner_steps: int, learned_step_sizes: bool = False, seed: int = 0) -> TrainedDynamics:
    """A Panda-shaped model with small hidden layers and non-trivial normalisation."""
    rng = np.random.default_rng(seed)
    state_dim, action_dim = PANDA.state_dim, PANDA.action_dim
    normalizer = Normalizer.fit(
        rng.normal(size=(64, state_dim)).astype(np.float32),
        (rng.normal(size=(64, action_dim)) * 10).astype(np.float32),
        rng.normal(size=(64, state_dim)).astype(np.float32),
    )
    shape = ModelShape(state_dim, action_dim, (16, 16))
    params = init_params(shape, torch.Generator().manual_seed(seed))
    step_sizes: float | dict[str, torch.Tensor] = 0.05
    if learned_step_sizes:
        step_sizes = {k: torch.full_like(v, 0.02) + 0.01 * torch.rand_like(v) for k, v in params.items()}
    return TrainedDynamics(
        robot=PANDA,
        shape=shape,
        params=params,
        normalizer=normalizer,
        window_size=WINDOW_SIZE,
        inner_steps=inner_steps,
        step_sizes=step_sizes,
        planner={"samples": 32, "horizon": 4},
    )


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[TrainedDynamics, Path]]:
    """One exported bundle per inner-step count n ∈ {1, 2, 3} (n = 3 with Meta-SGD step sizes)."""
    root = tmp_path_factory.mktemp("bundles")
    made = {}
    for n in (1, 2, 3):
        model = tiny_model(n, learned_step_sizes=(n == 3), seed=n)
        made[n] = (model, export_trained_dynamics(model, root / f"n{n}"))
    return made


@pytest.fixture()
def bundle_copy(bundles: dict[int, tuple[TrainedDynamics, Path]], tmp_path: Path) -> Path:
    """A private copy of the n = 1 bundle that a test may damage."""
    import shutil

    return Path(shutil.copytree(bundles[1][1], tmp_path / "bundle"))
