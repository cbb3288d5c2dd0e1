"""A trained policy-based meta-RL run (MAML-PPO or RL²) as one value, and its atomic checkpoint.

This is the contract between policy training (writes it), policy evaluation and
``export.recurrent_export`` (read it). Same file name, atomic write and ``weights_only=True``
read as the model-based checkpoint (``metarl_core.run.checkpoint_io``), so ``--resume`` and the
CLI treat both kinds of run alike; a ``kind: policy`` key tells the two apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from metarl_core.policy.recurrent_policy import Params, RecurrentPolicyShape
from metarl_core.run.algorithms import PolicyAlgo
from metarl_core.run.checkpoint_io import CheckpointError, atomic_torch_save, read_checkpoint_payload
from sim.robot_description import RobotDescription


@dataclass
class TrainedPolicy:
    """Everything needed to run (and, for RL², export) a meta-trained policy."""

    algo: PolicyAlgo
    env_id: str
    """The gymnasium id it was trained on, e.g. ``metarl/PointNavigation-v0``."""
    shape: RecurrentPolicyShape
    """For MAML-PPO ``hidden_size`` is the MLP width."""
    params: Params
    stats: Params
    """Observation normalisation: ``obs_mean`` and ``obs_std``, shapes ``(1, O)``."""
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    robot: RobotDescription | None = None
    """The robot, for tasks of the robot suite (needed to export a bundle the ROS node loads)."""
    episodes_per_trial: int = 1
    """RL²: episodes of one task the hidden state is carried across."""
    inner_step_size: float = 0.0
    """MAML-PPO: the inner policy-gradient step size."""
    config: dict[str, Any] = field(default_factory=dict)


def save_policy_checkpoint(path: Path, policy: TrainedPolicy, training_state: dict[str, Any]) -> None:
    """Write ``policy`` plus resumable training state atomically."""
    payload = {
        "kind": "policy",
        "algo": policy.algo,
        "env_id": policy.env_id,
        "shape": asdict(policy.shape),
        "params": {k: v.detach().cpu() for k, v in policy.params.items()},
        "stats": {k: v.detach().cpu() for k, v in policy.stats.items()},
        "action_low": list(policy.action_low),
        "action_high": list(policy.action_high),
        "robot": None if policy.robot is None else asdict(policy.robot),
        "episodes_per_trial": policy.episodes_per_trial,
        "inner_step_size": policy.inner_step_size,
        "config": policy.config,
        "training_state": training_state,
    }
    atomic_torch_save(payload, Path(path))


def load_policy_checkpoint(path: Path, map_location: str = "cpu") -> tuple[TrainedPolicy, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_policy_checkpoint` (file or run directory)."""
    path, payload = read_checkpoint_payload(path, map_location)
    if payload.get("kind") != "policy":
        raise CheckpointError(
            f"{path} is not a policy checkpoint (a model-based run? use metarl_core.model_based.checkpoint)"
        )
    try:
        return _trained_policy(payload), payload["training_state"]
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: not a policy checkpoint of this layout ({error!r})") from None


def _trained_policy(payload: dict[str, Any]) -> TrainedPolicy:
    robot = payload["robot"]
    return TrainedPolicy(
        algo=payload["algo"],
        env_id=payload["env_id"],
        shape=RecurrentPolicyShape(**payload["shape"]),
        params=payload["params"],
        stats=payload["stats"],
        action_low=tuple(payload["action_low"]),
        action_high=tuple(payload["action_high"]),
        robot=None if robot is None else RobotDescription(**robot),
        episodes_per_trial=payload["episodes_per_trial"],
        inner_step_size=payload["inner_step_size"],
        config=payload["config"],
    )
