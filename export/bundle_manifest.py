"""``bundle.json``: what a bundle is, read and checked without torch.

The manifest is the contract between the exporter (training machine) and the runtime (robot).
Every check here raises a specific :class:`BundleError` subclass whose message says what was
wrong, what was expected, and in which file and field.

Every mode shares the robot-facing fields (:class:`CommonManifest`); the model-based modes
(``gradient``, ``rls``) add the dynamics model and its adaptation (:class:`BundleManifest`), and
``recurrent`` adds the RL² policy's hidden size, observation statistics and reward
(:class:`RecurrentBundleManifest`). Adding the ``recurrent`` mode kept ``schema_version`` 1: a
gradient or rls bundle reads exactly as before, and an older runtime refuses a recurrent bundle
by its mode, naming it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
MANIFEST_NAME = "bundle.json"
MODEL_MODES = ("gradient", "rls")
MODES = (*MODEL_MODES, "recurrent")
RECURRENT_GRAPH = "policy.onnx"
RECURRENT_INPUTS = ("obs", "prev_action", "prev_reward", "prev_done", "hidden")
"""Graph inputs of a recurrent bundle, each ``(B, ·)`` float32: obs ``(B, S+R)``, prev_action
``(B, A)`` (normalised, in [-1, 1]), prev_reward ``(B, 1)``, prev_done ``(B, 1)``, hidden ``(B, H)``."""
RECURRENT_OUTPUTS = ("action_mean", "value", "next_hidden")
"""Graph outputs of a recurrent bundle: action_mean ``(B, A)`` (normalised, unclipped), value
``(B, 1)``, next_hidden ``(B, H)``."""


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the file and field."""


class BundleSchemaError(BundleError):
    """``bundle.json`` is malformed, misses a field, or comes from a newer schema."""


class BundleIntegrityError(BundleError):
    """A file's sha256 differs from the one recorded at export."""


class BundleCorruptError(BundleError):
    """A model file is truncated or not a valid ONNX graph for this bundle."""


class RobotMismatchError(BundleError):
    """The bundle was made for another robot, or for joints this robot lacks."""


FieldKinds = dict[str, type | tuple[type, ...]]
COMMON_FIELDS: FieldKinds = {
    "schema_version": int,
    "mode": str,
    "robot": str,
    "joint_names": list,
    "state_fields": list,
    "reference_fields": list,
    "command_interface": str,
    "action_low": list,
    "action_high": list,
    "control_rate_hz": (int, float),
    "provenance": dict,
    "files": dict,
}
MODEL_FIELDS: FieldKinds = {
    "window_size": int,
    "inner_steps": int,
    "normalizer": dict,
    "parameters": list,
    "planner": dict,
}
RECURRENT_FIELDS: FieldKinds = {
    "env_id": str,
    "hidden_size": int,
    "episodes_per_trial": int,
    "obs_normalizer": dict,
    "reward": dict,
}


@dataclass(frozen=True, kw_only=True)
class CommonManifest:
    """What every ``bundle.json`` says, whatever its mode: the robot it drives and how."""

    path: Path
    mode: str
    robot: str
    joint_names: tuple[str, ...]
    state_fields: tuple[str, ...]
    reference_fields: tuple[str, ...]
    command_interface: str
    action_low: np.ndarray
    action_high: np.ndarray
    control_rate_hz: float
    files: dict[str, str]
    wheel_radius_m: float | None = None
    track_width_m: float | None = None

    @property
    def state_dim(self) -> int:
        return len(self.state_fields)

    @property
    def action_dim(self) -> int:
        return len(self.joint_names) if self.command_interface != "twist" else len(self.action_low)


@dataclass(frozen=True, kw_only=True)
class BundleManifest(CommonManifest):
    """A model-based bundle (``gradient`` or ``rls``): dynamics model, adaptation, planner."""

    window_size: int
    inner_steps: int
    normalizer: dict[str, np.ndarray]
    parameter_names: tuple[str, ...]
    parameter_shapes: tuple[tuple[int, ...], ...]
    planner: dict[str, Any]
    rls_prior_precision: float | None = None


@dataclass(frozen=True, kw_only=True)
class RecurrentBundleManifest(CommonManifest):
    """A ``recurrent`` (RL²) bundle: a GRU policy whose hidden state is the adaptation.

    The observation statistics are baked into ``policy.onnx``; they are recorded here so that
    what the policy expects of its sensors can be read without opening the graph.
    """

    env_id: str
    hidden_size: int
    episodes_per_trial: int
    obs_mean: np.ndarray
    obs_std: np.ndarray
    reward: dict[str, Any]
    """The reward the policy was trained on, rebuilt by ``export.tracking_reward.TrackingReward``."""

    @property
    def obs_dim(self) -> int:
        return len(self.state_fields) + len(self.reference_fields)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(bundle_dir: Path) -> BundleManifest | RecurrentBundleManifest:
    """Parse and check ``bundle_dir/bundle.json`` and the sha256 of every file it lists; the
    manifest's type follows its mode."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / MANIFEST_NAME
    if not path.is_file():
        raise BundleSchemaError(f"{path}: missing; a bundle directory holds bundle.json (metarl export)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleSchemaError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise BundleSchemaError(f"{path}: must hold a JSON object")
    version = data.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise BundleSchemaError(
            f"{path}: schema_version {version} is newer than this runtime's {SCHEMA_VERSION}; upgrade metarl"
        )
    _check_field_kinds(path, data, COMMON_FIELDS)
    if data["schema_version"] < 1:
        raise BundleSchemaError(f"{path}: schema_version {data['schema_version']} is not a valid version")
    if data["mode"] not in MODES:
        raise BundleSchemaError(f"{path}: field 'mode'={data['mode']!r} is not one of {MODES}")
    _check_field_kinds(path, data, RECURRENT_FIELDS if data["mode"] == "recurrent" else MODEL_FIELDS)
    _check_files(bundle_dir, data["files"])
    action_low = np.asarray(data["action_low"], dtype=np.float64)
    action_high = np.asarray(data["action_high"], dtype=np.float64)
    if action_low.shape != action_high.shape or np.any(action_low > action_high):
        raise BundleSchemaError(f"{path}: action_low/action_high must have one shape and low <= high")
    common = {
        "path": bundle_dir,
        "mode": data["mode"],
        "robot": data["robot"],
        "joint_names": tuple(data["joint_names"]),
        "state_fields": tuple(data["state_fields"]),
        "reference_fields": tuple(data["reference_fields"]),
        "command_interface": data["command_interface"],
        "action_low": action_low,
        "action_high": action_high,
        "control_rate_hz": float(data["control_rate_hz"]),
        "files": data["files"],
        "wheel_radius_m": data.get("wheel_radius_m"),
        "track_width_m": data.get("track_width_m"),
    }
    if data["mode"] == "recurrent":
        return _read_recurrent(path, data, common)
    return _read_model(path, data, common, len(action_low))


def _check_field_kinds(path: Path, data: dict[str, Any], kinds: FieldKinds) -> None:
    for field, kind in kinds.items():
        if field not in data:
            raise BundleSchemaError(f"{path}: missing field '{field}'")
        if not isinstance(data[field], kind) or isinstance(data[field], bool):
            raise BundleSchemaError(f"{path}: field '{field}' must be {kind}, got {type(data[field]).__name__}")


def _read_model(path: Path, data: dict[str, Any], common: dict[str, Any], action_size: int) -> BundleManifest:
    normalizer = {k: np.asarray(v, dtype=np.float32) for k, v in data["normalizer"].items()}
    for key, size in (("state", len(data["state_fields"])), ("action", action_size), ("delta", None)):
        for stat in ("mean", "std"):
            name = f"{key}_{stat}"
            if name not in normalizer:
                raise BundleSchemaError(f"{path}: missing field 'normalizer.{name}'")
            expected = size if size is not None else len(data["state_fields"])
            if normalizer[name].shape != (expected,):
                raise BundleSchemaError(
                    f"{path}: normalizer.{name} has shape {normalizer[name].shape}, expected ({expected},)"
                )
    try:
        names = tuple(str(p["name"]) for p in data["parameters"])
        shapes = tuple(tuple(int(d) for d in p["shape"]) for p in data["parameters"])
    except (KeyError, TypeError) as error:
        raise BundleSchemaError(f"{path}: each of 'parameters' needs a name and a shape ({error})") from None
    return BundleManifest(
        **common,
        window_size=data["window_size"],
        inner_steps=data["inner_steps"],
        normalizer=normalizer,
        parameter_names=names,
        parameter_shapes=shapes,
        planner=data["planner"],
        rls_prior_precision=data.get("rls_prior_precision"),
    )


def _read_recurrent(path: Path, data: dict[str, Any], common: dict[str, Any]) -> RecurrentBundleManifest:
    for field in ("hidden_size", "episodes_per_trial"):
        if data[field] < 1:
            raise BundleSchemaError(f"{path}: field '{field}'={data[field]} must be >= 1")
    obs_dim = len(data["state_fields"]) + len(data["reference_fields"])
    stats = {}
    for name in ("obs_mean", "obs_std"):
        if name not in data["obs_normalizer"]:
            raise BundleSchemaError(f"{path}: missing field 'obs_normalizer.{name}'")
        stats[name] = np.asarray(data["obs_normalizer"][name], dtype=np.float32)
        if stats[name].shape != (obs_dim,):
            raise BundleSchemaError(
                f"{path}: obs_normalizer.{name} has shape {stats[name].shape}, expected ({obs_dim},) "
                "(state fields then reference fields)"
            )
    if not isinstance(data["reward"].get("name"), str):
        raise BundleSchemaError(f"{path}: missing field 'reward.name'")
    return RecurrentBundleManifest(
        **common,
        env_id=data["env_id"],
        hidden_size=data["hidden_size"],
        episodes_per_trial=data["episodes_per_trial"],
        obs_mean=stats["obs_mean"],
        obs_std=stats["obs_std"],
        reward=data["reward"],
    )


def _check_files(bundle_dir: Path, files: dict[str, str]) -> None:
    for name, expected in files.items():
        file_path = bundle_dir / name
        if not file_path.is_file():
            raise BundleIntegrityError(f"{file_path}: listed in bundle.json 'files' but missing")
        actual = sha256_of(file_path)
        if actual != expected:
            raise BundleIntegrityError(
                f"{file_path}: sha256 {actual[:16]}… does not match bundle.json's {expected[:16]}…; "
                "the file was changed or corrupted after export"
            )


def check_robot(manifest: CommonManifest, expected_robot: str | None, available_joints: list[str] | None) -> None:
    """Refuse a bundle made for another robot, or one that commands joints the robot lacks."""
    if expected_robot is not None and manifest.robot != expected_robot:
        raise RobotMismatchError(
            f"{manifest.path / MANIFEST_NAME}: bundle is for robot '{manifest.robot}', this is '{expected_robot}'"
        )
    if available_joints is not None:
        missing = [j for j in manifest.joint_names if j not in available_joints]
        if missing:
            raise RobotMismatchError(
                f"{manifest.path / MANIFEST_NAME}: joints {missing} are not on this robot (it has {available_joints})"
            )
