"""``metarl train`` for the policy-based meta-learners (``algo: maml-ppo | rl2``).

What both algorithms share lives here: reading the config by its ``algo`` key, opening the
run directory (``metarl_core.run``: ``config.yaml``, ``checkpoint.pt``, ``metrics.csv``,
``tensorboard/``, ``--resume``) with the policy checkpoint loader, and the CPU-only rule.
Each algorithm's own loop reads top to bottom in ``maml_ppo.train`` and ``rl2.train``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from metarl_core.policy import maml_ppo, rl2
from metarl_core.policy.maml_ppo import MamlPPOConfig
from metarl_core.policy.policy_checkpoint import load_policy_checkpoint
from metarl_core.policy.rl2 import RL2Config
from metarl_core.run.config_loading import read_config_mapping
from metarl_core.run.run_directory import open_run_directory
from metarl_core.run.run_metrics import MetricsWriter

PolicyConfig = MamlPPOConfig | RL2Config
CONFIG_TYPES: dict[str, type[MamlPPOConfig] | type[RL2Config]] = {
    config_type.algo: config_type for config_type in (MamlPPOConfig, RL2Config)
}
"""Each ``metarl_core.run.algorithms.POLICY_ALGOS`` name (its config's ``algo`` default) to its config."""
TRAINERS = {MamlPPOConfig.algo: maml_ppo.train, RL2Config.algo: rl2.train}


def load_policy_config(path: Path) -> PolicyConfig:
    """The config dataclass its ``algo`` key names, with every field checked (errors name it)."""
    data = read_config_mapping(path)
    algo = data.get("algo")
    if algo not in CONFIG_TYPES:
        raise ValueError(f"{path}: field 'algo'={algo!r} must be one of {sorted(CONFIG_TYPES)} for a policy run")
    return CONFIG_TYPES[algo].from_dict(data, source=str(path))


def run_training(config_path: Path, run_dir: Path | None, device: str, resume: bool) -> Path:
    """Train (or resume) the run described by ``config_path``; return the run directory."""
    return train_policy(load_policy_config(config_path), run_dir, device, resume)


def train_policy(config: PolicyConfig, run_dir: Path | None, device: str = "cpu", resume: bool = False) -> Path:
    """Train ``config`` into ``run_dir`` (default ``runs/<name>``).

    With ``resume`` an existing checkpoint is continued up to ``config.iterations`` (a run can
    thus also be extended); without it, an existing checkpoint is an error rather than lost.
    Policy runs train on the CPU: their networks are small, their time goes into simulation and
    lock-step sampling, and a GPU would only add transfers per environment step.
    """
    if torch.device(device).type != "cpu":
        raise ValueError(f"device={device!r}: policy runs (maml-ppo, rl2) train on the CPU; pass --device cpu")
    run_dir, resumed = open_run_directory(config, run_dir, resume, load_policy_checkpoint)
    # Small networks on a shared CPU: one intra-op thread is faster than contending for two.
    torch.set_num_threads(1)
    metrics = MetricsWriter(run_dir)
    try:
        TRAINERS[config.algo](config, run_dir, resumed, metrics)
    finally:
        metrics.close()
    return run_dir
