"""``bundle.json``: what a bundle is, read and checked without torch.

The manifest is the contract between the exporter (training machine) and the runtime (robot).
Every check here raises a specific :class:`BundleError` subclass whose message says what was
wrong, what was expected, and in which file and field.
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
MODES = ("gradient", "rls")


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


REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
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
    "window_size": int,
    "inner_steps": int,
    "normalizer": dict,
    "parameters": list,
    "planner": dict,
    "provenance": dict,
    "files": dict,
}


@dataclass(frozen=True)
class BundleManifest:
    """The parsed, validated ``bundle.json``."""

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
    window_size: int
    inner_steps: int
    normalizer: dict[str, np.ndarray]
    parameter_names: tuple[str, ...]
    parameter_shapes: tuple[tuple[int, ...], ...]
    planner: dict[str, Any]
    files: dict[str, str]
    wheel_radius_m: float | None = None
    track_width_m: float | None = None
    rls_prior_precision: float | None = None

    @property
    def state_dim(self) -> int:
        return len(self.state_fields)

    @property
    def action_dim(self) -> int:
        return len(self.joint_names) if self.command_interface != "twist" else len(self.action_low)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(bundle_dir: Path) -> BundleManifest:
    """Parse and check ``bundle_dir/bundle.json`` and the sha256 of every file it lists."""
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
    for field, kind in REQUIRED_FIELDS.items():
        if field not in data:
            raise BundleSchemaError(f"{path}: missing field '{field}'")
        if not isinstance(data[field], kind) or isinstance(data[field], bool):
            raise BundleSchemaError(f"{path}: field '{field}' must be {kind}, got {type(data[field]).__name__}")
    if data["schema_version"] < 1:
        raise BundleSchemaError(f"{path}: schema_version {data['schema_version']} is not a valid version")
    if data["mode"] not in MODES:
        raise BundleSchemaError(f"{path}: field 'mode'={data['mode']!r} is not one of {MODES}")
    _check_files(bundle_dir, data["files"])
    action_low = np.asarray(data["action_low"], dtype=np.float64)
    action_high = np.asarray(data["action_high"], dtype=np.float64)
    if action_low.shape != action_high.shape or np.any(action_low > action_high):
        raise BundleSchemaError(f"{path}: action_low/action_high must have one shape and low <= high")
    normalizer = {k: np.asarray(v, dtype=np.float32) for k, v in data["normalizer"].items()}
    for key, size in (("state", len(data["state_fields"])), ("action", len(action_low)), ("delta", None)):
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
        path=bundle_dir,
        mode=data["mode"],
        robot=data["robot"],
        joint_names=tuple(data["joint_names"]),
        state_fields=tuple(data["state_fields"]),
        reference_fields=tuple(data["reference_fields"]),
        command_interface=data["command_interface"],
        action_low=action_low,
        action_high=action_high,
        control_rate_hz=float(data["control_rate_hz"]),
        window_size=data["window_size"],
        inner_steps=data["inner_steps"],
        normalizer=normalizer,
        parameter_names=names,
        parameter_shapes=shapes,
        planner=data["planner"],
        files=data["files"],
        wheel_radius_m=data.get("wheel_radius_m"),
        track_width_m=data.get("track_width_m"),
        rls_prior_precision=data.get("rls_prior_precision"),
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


def check_robot(manifest: BundleManifest, expected_robot: str | None, available_joints: list[str] | None) -> None:
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
