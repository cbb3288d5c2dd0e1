"""Tiny bundles built from untrained models and policies: the export, runtime, benchmark and ROS
tests need no training."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from export.onnx_export import export_trained_dynamics
from export.recurrent_export import export_recurrent_bundle
from metarl_core.model_based.adaptation import Adaptation
from metarl_core.model_based.checkpoint import TrainedDynamics
from metarl_core.model_based.dynamics_model import ModelShape, Normalizer, init_params
from metarl_core.policy.policy_checkpoint import TrainedPolicy, save_policy_checkpoint
from metarl_core.policy.recurrent_policy import RecurrentPolicyShape, init_recurrent_policy
from metarl_core.run.checkpoint_io import CHECKPOINT_NAME
from sim.panda_payload import PANDA

WINDOW_SIZE = 6


def write_manifest_data(bundle: Path, data: dict) -> None:
    """Rewrite ``bundle.json`` and its digest, as an adversary with write access (but no signing
    key) would: only the schema checks (or a signature) can catch what is in it. The string
    ``"1e400"`` is written as the bare literal 1e400, which JSON parsers read as inf."""
    raw = json.dumps(data).replace('"1e400"', "1e400").encode("utf-8")
    (bundle / "bundle.json").write_bytes(raw)
    (bundle / "bundle.json.sha256").write_text(hashlib.sha256(raw).hexdigest() + "\n")


def read_manifest_data(bundle: Path) -> dict:
    return json.loads((bundle / "bundle.json").read_text())


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
        adaptation=Adaptation("gradient", inner_steps),
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


HIDDEN_SIZE = 32


def tiny_policy(seed: int = 0) -> TrainedPolicy:
    """A Panda RL² policy with random weights whose actions are O(1) (the initial policy head is
    tiny, which would make a parity check on actions nearly vacuous) and non-trivial observation
    statistics, some stds below 1."""
    shape = RecurrentPolicyShape(PANDA.state_dim + PANDA.reference_dim, PANDA.action_dim, HIDDEN_SIZE)
    generator = torch.Generator().manual_seed(seed)
    params = init_recurrent_policy(shape, generator)
    params["policy_weight"] = torch.randn(HIDDEN_SIZE, shape.action_dim, generator=generator) * 0.5
    params["policy_bias"] = torch.randn(1, shape.action_dim, generator=generator) * 0.1
    stats = {
        "obs_mean": torch.randn(1, shape.obs_dim, generator=generator) * 0.5,
        "obs_std": 0.2 + torch.rand(1, shape.obs_dim, generator=generator),
    }
    return TrainedPolicy(
        algo="rl2",
        env_id="metarl/PandaPayload-v0",
        shape=shape,
        params=params,
        stats=stats,
        action_low=PANDA.action_low,
        action_high=PANDA.action_high,
        robot=PANDA,
        episodes_per_trial=2,
        config={"algo": "rl2", "hidden_size": HIDDEN_SIZE},
    )


@pytest.fixture(scope="session")
def recurrent_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedPolicy, Path]:
    """A recurrent bundle exported the way ``metarl export`` does it: from a saved RL² run."""
    root = tmp_path_factory.mktemp("recurrent")
    policy = tiny_policy()
    save_policy_checkpoint(root / "run" / CHECKPOINT_NAME, policy, training_state={})
    return policy, export_recurrent_bundle(root / "run", root / "bundle")


@pytest.fixture()
def recurrent_bundle_copy(recurrent_bundle: tuple[TrainedPolicy, Path], tmp_path: Path) -> Path:
    """A private copy of the recurrent bundle that a test may damage."""
    import shutil

    return Path(shutil.copytree(recurrent_bundle[1], tmp_path / "recurrent"))
