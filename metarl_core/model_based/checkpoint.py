"""The trained dynamics model as one value, and what its checkpoint file holds.

``TrainedDynamics`` is the contract between training (which writes it), evaluation, and the
ONNX exporter (which reads it). The file is written atomically and read the safe way
(``weights_only=True``) by ``metarl_core.run.checkpoint_io``, as every learner's is; this module
only turns the model into tensors and plain containers and back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from metarl_core.model_based.adaptation import Adaptation
from metarl_core.model_based.dynamics_model import ModelShape, Normalizer, Params
from metarl_core.model_based.replay_buffer import TaskReplayBuffer
from metarl_core.run.checkpoint_io import CheckpointError, atomic_torch_save, read_checkpoint_payload
from sim.robot_description import RobotDescription


@dataclass
class TrainedDynamics:
    """Everything needed to adapt and predict with a meta-learned dynamics model."""

    robot: RobotDescription
    shape: ModelShape
    params: Params
    normalizer: Normalizer
    window_size: int
    """M: transitions the robot adapts on."""
    adaptation: Adaptation
    """The rule that adapts ``params`` on the window, and its settings."""
    step_sizes: float | Params
    """Scalar inner learning rate, or per-parameter learned step sizes (Meta-SGD; unused by ``rls``)."""
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
        "inner_steps": model.adaptation.inner_steps,
        "step_sizes": (
            model.step_sizes
            if isinstance(model.step_sizes, float)
            else {k: v.detach().cpu() for k, v in model.step_sizes.items()}
        ),
        "mode": model.adaptation.rule,
        "rls_prior_precision": model.adaptation.rls_prior_precision,
        "rls_forgetting": model.adaptation.rls_forgetting,
        "planner": model.planner,
        "config": model.config,
        "training_state": training_state,
    }
    atomic_torch_save(payload, path)


def load_checkpoint(path: Path, map_location: str = "cpu") -> tuple[TrainedDynamics, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: the model and its training state
    (its replay buffers rebuilt as ``TaskReplayBuffer``; its tasks left as JSON strings).

    ``path`` may be the file or the run directory holding ``checkpoint.pt``.
    """
    path, payload = read_checkpoint_payload(path, map_location)
    try:
        state = dict(payload["training_state"])
        if "replay_buffers" in state:  # stored as plain data (TaskReplayBuffer.to_state)
            state["replay_buffers"] = [TaskReplayBuffer.from_state(b) for b in state["replay_buffers"]]
        return _trained_dynamics(payload), state
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: not a model-based checkpoint of this layout ({error!r})") from None


def _trained_dynamics(payload: dict[str, Any]) -> TrainedDynamics:
    robot = payload["robot"]
    return TrainedDynamics(
        robot=RobotDescription(**{k: tuple(v) if isinstance(v, list) else v for k, v in robot.items()}),
        shape=ModelShape(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload["shape"].items()}),
        params=payload["params"],
        normalizer=Normalizer.from_dict(payload["normalizer"]),
        window_size=payload["window_size"],
        adaptation=Adaptation(
            payload["mode"],
            payload["inner_steps"],
            payload["rls_prior_precision"],
            payload.get("rls_forgetting", 1.0),  # checkpoints from before the field: all alike
        ),
        step_sizes=payload["step_sizes"],
        planner=payload["planner"],
        config=payload["config"],
    )
