"""RL² checkpoint -> ``mode: recurrent`` bundle: one policy step, hidden state in and out, as ONNX.

The graph is ``recurrent_step`` with the deterministic action (the Gaussian's mean; the robot
clips and scales it as deterministic scoring does, so ``log_std`` is not exported):
``(obs, prev_action, prev_reward, prev_done, hidden) -> (action_mean, value, next_hidden)``, every
tensor ``(batch, ·)`` with a dynamic batch. It is traced and verified exactly as the model-based
graphs are (``export.graph_export``).

The weights and observation statistics are baked into the graph as constants rather than taken
as inputs. A model-based bundle needs its parameters as inputs because adaptation produces new
ones; an RL² policy adapts only through its hidden state and its weights never change on the
robot. Baked in, the graph's interface is just the five per-tick inputs (no weights file that
could disagree with the graph), the weights are covered by the graph's sha256, and onnxruntime
can fold them at load time, which makes a tick cheaper.
"""

from __future__ import annotations

from collections.abc import Callable
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
from export.residual_export import NOMINAL_URDF_NAME, nominal_fields
from metarl_core.model_based.residual_train import panda_nominal
from metarl_core.policy.policy_checkpoint import TrainedPolicy, load_policy_checkpoint
from metarl_core.policy.recurrent_policy import recurrent_step
from metarl_runtime.bundle_manifest import RECURRENT_GRAPH, RECURRENT_INPUTS, RECURRENT_OUTPUTS
from sim import registered_env_class
from sim.reward_spec import RewardSpec

POLICY_PARAMETERS = (
    "gru_input_weight",
    "gru_hidden_weight",
    "gru_input_bias",
    "gru_hidden_bias",
    "policy_weight",
    "policy_bias",
    "value_weight",
    "value_bias",
)
"""What ``recurrent_step`` reads of the parameters (``log_std`` only shapes the exploration noise)."""
STAT_NAMES = ("obs_mean", "obs_std")


def env_reward_spec(env_id: str) -> RewardSpec | None:
    """The ``reward_spec`` the environment ``env_id`` computes its reward from, read off its
    registered class (no simulator is started); None for an env without one."""
    return getattr(registered_env_class(env_id), "reward_spec", None)


def policy_step_function() -> Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The function the policy graph computes: (graph inputs..., parameters..., stats...) ->
    (action_mean, value, next_hidden)."""
    n_params = len(POLICY_PARAMETERS)

    def step(
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        prev_done: torch.Tensor,
        hidden: torch.Tensor,
        *constants: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        params = dict(zip(POLICY_PARAMETERS, constants[:n_params], strict=True))
        stats = dict(zip(STAT_NAMES, constants[n_params:], strict=True))
        return recurrent_step(params, stats, obs, prev_action, prev_reward, prev_done, hidden)

    return step


def _check_policy(policy: TrainedPolicy) -> None:
    """Refuse a checkpoint the robot could not run, naming what is wrong."""
    if policy.algo != "rl2":
        raise ValueError(f"algo={policy.algo!r}: only RL² policies export to a recurrent bundle")
    robot = policy.robot
    if robot is None:
        raise ValueError(f"env {policy.env_id!r} has no robot description: a bundle needs a robot to drive")
    if env_reward_spec(policy.env_id) is None:
        raise ValueError(
            f"env {policy.env_id!r} has no reward spec (its class sets no reward_spec); "
            "the robot could not recompute the reward the policy reads"
        )
    shape = policy.shape
    error_dim = robot.state_dim if policy.config.get("action") == "residual" else 0
    if shape.obs_dim != robot.state_dim + robot.reference_dim + error_dim or shape.action_dim != robot.action_dim:
        raise ValueError(
            f"policy shape {shape} does not fit robot '{robot.name}' (obs {robot.state_dim}+{robot.reference_dim}"
            f"{f'+{error_dim} tracking error' if error_dim else ''}, action {robot.action_dim})"
        )
    low, high = np.asarray(policy.action_low), np.asarray(policy.action_high)
    if low.shape != (robot.action_dim,) or np.any(low < robot.action_low) or np.any(high > robot.action_high):
        raise ValueError(
            f"policy action limits {low.tolist()}..{high.tolist()} exceed robot '{robot.name}' limits "
            f"{list(robot.action_low)}..{list(robot.action_high)}"
        )


def export_trained_policy(policy: TrainedPolicy, out_dir: Path, seed: int = 0, sign_key: Path | None = None) -> Path:
    """Write ``policy`` as a verified recurrent bundle directory at ``out_dir`` (replaced
    atomically; an ``out_dir`` that is not a bundle is refused), signed with ``sign_key`` when given."""
    _check_policy(policy)
    out_dir = Path(out_dir)
    shape = policy.shape
    constants = {name: policy.params[name].detach().float().cpu() for name in POLICY_PARAMETERS}
    constants |= {name: policy.stats[name].detach().float().cpu().reshape(1, shape.obs_dim) for name in STAT_NAMES}
    generator = torch.Generator().manual_seed(seed)

    def inputs(batch: int) -> list[torch.Tensor]:
        """Inputs over the range a robot produces: observations around the training statistics,
        actions in [-1, 1], rewards of either sign, done flags, and hidden states in (-1, 1)."""
        return [
            constants["obs_mean"] + constants["obs_std"] * torch.randn(batch, shape.obs_dim, generator=generator),
            torch.rand(batch, shape.action_dim, generator=generator) * 2.0 - 1.0,
            torch.randn(batch, 1, generator=generator),
            (torch.rand(batch, 1, generator=generator) < 0.3).float(),
            torch.rand(batch, shape.hidden_size, generator=generator) * 2.0 - 1.0,
        ]

    step = policy_step_function()
    with staged_directory(out_dir) as staging:
        graph = staging / RECURRENT_GRAPH
        example = inputs(4)
        checks = [inputs(batch) for batch in (1, 3, 32)]
        parity = export_checked_graph(
            step, constants, example, checks, RECURRENT_INPUTS, RECURRENT_OUTPUTS, "batch", graph
        )
        robot = policy.robot
        write_manifest(
            staging,
            {
                "mode": "recurrent",
                **robot_fields(robot),
                **_action_fields(policy, staging),
                "env_id": policy.env_id,
                "hidden_size": shape.hidden_size,
                "episodes_per_trial": policy.episodes_per_trial,
                "obs_normalizer": {name: constants[name].reshape(-1).tolist() for name in STAT_NAMES},
                "reward": env_reward_spec(policy.env_id).to_json(),
                "provenance": provenance(policy.config, parity),
            },
            sign_key,
        )
    return out_dir


def _action_fields(policy: TrainedPolicy, staging: Path) -> dict[str, Any]:
    """How the robot turns the policy's action into a command. ``torque``: scaled to the policy's
    action limits. ``residual``: the policy's limits are the normalised [-1, 1] of the correction,
    so the command limits are the robot's own, and the nominal arm the correction is added to
    travels with the bundle (its URDF as a hashed file, as in residual bundles)."""
    if policy.config.get("action", "torque") != "residual":
        return {"action_low": list(policy.action_low), "action_high": list(policy.action_high)}
    robot = policy.robot
    nominal = panda_nominal()
    (staging / NOMINAL_URDF_NAME).write_text(nominal.urdf, encoding="utf-8")
    return {
        "action_low": list(robot.action_low),
        "action_high": list(robot.action_high),
        "action": "residual",
        "residual_torque_fraction": float(policy.config["residual_torque_fraction"]),
        "nominal": nominal_fields(nominal),
    }


def export_recurrent_bundle(run_dir: Path, out_dir: Path, sign_key: Path | None = None) -> Path:
    """``metarl export`` for an RL² run: its checkpoint as a verified ``mode: recurrent`` bundle."""
    check_export_target(Path(out_dir))
    policy, _ = load_policy_checkpoint(Path(run_dir))
    return export_trained_policy(policy, Path(out_dir), sign_key=sign_key)
