"""The trained dynamics model as one value, and its atomic checkpoint file.

``TrainedDynamics`` is the contract between training (which writes it), evaluation, and the
ONNX exporter (which reads it). Writing is atomic (temp file then ``os.replace``) so a run killed
mid-write always leaves the previous checkpoint intact for ``--resume``; a write that fails (a
full disk) removes its temp file and says which path it could not write.

A checkpoint holds tensors and plain containers only (dicts, lists, tuples, str, int, float,
bool, None) and is read with ``torch.load(weights_only=True)``: a ``checkpoint.pt`` from
elsewhere cannot run code on ``metarl export`` or ``--resume`` (:class:`UnsafeCheckpointError`).
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from metarl_core.model_based.adaptation import Adaptation
from metarl_core.model_based.dynamics_model import ModelShape, Normalizer, Params
from metarl_core.model_based.replay_buffer import TaskReplayBuffer
from sim.robot_description import RobotDescription

CHECKPOINT_NAME = "checkpoint.pt"
TEMP_SUFFIX = ".tmp"
"""Suffix of a file being written atomically (``.<name>.<random>.tmp`` beside it)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: truncated, not a checkpoint, or of another layout."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holding objects other than tensors and plain containers (e.g. a pickled
    callable): refused unread, since loading it could run code."""


class CheckpointWriteError(OSError):
    """A checkpoint (or other run file) could not be written; the previous one is intact."""


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
        "planner": model.planner,
        "config": model.config,
        "training_state": training_state,
    }
    atomic_torch_save(payload, path)


def atomic_torch_save(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` to memory, then :func:`atomic_write_bytes`: a kill mid-write leaves the
    previous file whole, never a truncated one."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync, then ``os.replace``. Any failure
    (ENOSPC on a full disk) removes the temp file and raises :class:`CheckpointWriteError`
    naming ``path``; the previous file is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as stream:
            view = memoryview(data)
            while view:
                view = view[stream.write(view) :]
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_name, path)
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise CheckpointWriteError(
            error.errno or errno.EIO, f"{path}: could not be written ({reason}); the previous file is intact"
        ) from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def remove_stale_temp_files(run_dir: Path, names: tuple[str, ...]) -> list[Path]:
    """Delete the temp files a killed :func:`atomic_write_bytes` of any of ``names`` left in
    ``run_dir`` (``.<name>.<random>.tmp``); return them. Nothing else is touched."""
    run_dir = Path(run_dir)
    stale = sorted(p for name in names for p in run_dir.glob(f".{name}.*{TEMP_SUFFIX}")) if run_dir.is_dir() else []
    for path in stale:
        if path.is_file() and not path.is_symlink():
            path.unlink()
    return stale


def safe_torch_load(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only. A file with
    anything else (a pickled callable) is refused unread (:class:`UnsafeCheckpointError`); a
    truncated or foreign file is a :class:`CheckpointError`; both name the file."""
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _unpickler_reason(error)
        if "Unsupported global" in reason:
            raise UnsafeCheckpointError(
                f"{path}: refused: it holds objects other than tensors and plain containers, which loading "
                f"could run as code ({reason}); metarl writes none (a GrBAL checkpoint from before weights-only "
                "checkpoints did: retrain it)"
            ) from None
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason or 'not a torch checkpoint'})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: not a checkpoint (holds a {type(payload).__name__}, expected a mapping)")
    return payload


def load_checkpoint(path: Path, map_location: str = "cpu") -> tuple[TrainedDynamics, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: the model and its training state
    (its replay buffers rebuilt as ``TaskReplayBuffer``; its tasks left as JSON strings).

    ``path`` may be the file or the run directory holding ``checkpoint.pt``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: train first (metarl train --config ...)")
    payload = safe_torch_load(path, map_location)
    try:
        state = dict(payload["training_state"])
        if "replay_buffers" in state:  # stored as plain data (TaskReplayBuffer.to_state)
            state["replay_buffers"] = [TaskReplayBuffer.from_state(b) for b in state["replay_buffers"]]
        return _trained_dynamics(payload), state
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: not a model-based checkpoint of this layout ({error!r})") from None


def _unpickler_reason(error: pickle.UnpicklingError) -> str:
    """The line of torch's long weights-only message that says what was refused, shortened."""
    for line in str(error).splitlines():
        if "WeightsUnpickler error:" in line:
            reason = line.split("WeightsUnpickler error:", 1)[1].strip()
            return reason.split(" was not an allowed global")[0][:200]
    return ""


def _trained_dynamics(payload: dict[str, Any]) -> TrainedDynamics:
    robot = payload["robot"]
    return TrainedDynamics(
        robot=RobotDescription(**{k: tuple(v) if isinstance(v, list) else v for k, v in robot.items()}),
        shape=ModelShape(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload["shape"].items()}),
        params=payload["params"],
        normalizer=Normalizer.from_dict(payload["normalizer"]),
        window_size=payload["window_size"],
        adaptation=Adaptation(payload["mode"], payload["inner_steps"], payload["rls_prior_precision"]),
        step_sizes=payload["step_sizes"],
        planner=payload["planner"],
        config=payload["config"],
    )
