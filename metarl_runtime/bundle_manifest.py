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

``bundle.json`` is treated as hostile input. Its own bytes are covered by a detached digest
(``bundle.json.sha256``) and, when the robot holds a trusted public key, by an Ed25519
signature (``bundle.json.sig``, :mod:`metarl_runtime.bundle_signature`); every number is range-checked;
every file the runtime loads must be listed, named plainly inside the bundle (no ``..``, no
absolute path, no symlink anywhere in the directory), and is read once: the bytes hashed are
the bytes the runtime loads (``CommonManifest.file_bytes``).
"""

from __future__ import annotations

import hashlib
import json
import math
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metarl_runtime.bundle_errors import (
    DIGEST_NAME,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    BundleCorruptError,
    BundleError,
    BundleIntegrityError,
    BundleSchemaError,
    BundleSignatureError,
    RobotMismatchError,
)
from metarl_runtime.bundle_signature import verify_manifest_signature
from metarl_runtime.mppi import MPPIConfig, PlannerConfigError
from metarl_runtime.residual_action import ACTION_MODES
from metarl_runtime.residual_torque import RESIDUAL_INPUT_NAMES, NominalArm
from metarl_runtime.rigid_body import RigidBodyModel, RigidBodyModelError

__all__ = [
    "DIGEST_NAME",
    "MANIFEST_NAME",
    "SIGNATURE_NAME",
    "BundleCorruptError",
    "BundleError",
    "BundleIntegrityError",
    "BundleSchemaError",
    "BundleSignatureError",
    "RobotMismatchError",
]

SCHEMA_VERSION = 1
INTEGRITY_NAMES = (DIGEST_NAME, SIGNATURE_NAME)
MODEL_MODES = ("gradient", "rls")
MODES = (*MODEL_MODES, "recurrent", "residual")
RECURRENT_GRAPH = "policy.onnx"
RECURRENT_INPUTS = ("obs", "prev_action", "prev_reward", "prev_done", "hidden")
"""Graph inputs of a recurrent bundle, each ``(B, ·)`` float32: obs ``(B, S+R)``, prev_action
``(B, A)`` (normalised, in [-1, 1]), prev_reward ``(B, 1)``, prev_done ``(B, 1)``, hidden ``(B, H)``."""
RECURRENT_OUTPUTS = ("action_mean", "value", "next_hidden")
"""Graph outputs of a recurrent bundle: action_mean ``(B, A)`` (normalised, unclipped), value
``(B, 1)``, next_hidden ``(B, H)``."""


REQUIRED_FILES = {
    "gradient": ("adapt.onnx", "predict.onnx", "meta_params.npz"),
    "rls": ("features.onnx", "predict.onnx", "meta_params.npz"),
    "recurrent": ("policy.onnx",),
    "residual": ("residual.onnx", "meta_params.npz"),
}
"""What each mode's runtime loads: every one must be listed in ``files`` with its sha256."""
ACTION_LIMIT_BOUND = 1e4
"""Largest |action limit| a bundle may carry (N·m, N, m/s or rad/s): beyond any robot this
project drives; the ROS node narrows further to the robot's own limits."""
CONTROL_RATE_RANGE_HZ = (1.0, 2000.0)
WINDOW_SIZE_MAX = 10_000
"""Most transitions a model-based bundle may adapt on (a ring buffer and one graph run)."""
INNER_STEPS_MAX = 100
STEP_SIZE_MAX = 100.0
"""Largest |inner step size| recorded in a bundle (the graph has them baked in)."""
HIDDEN_SIZE_MAX = 65_536
EPISODES_PER_TRIAL_MAX = 10_000
STATISTIC_BOUND = 1e12
"""Largest |mean| or std a normaliser may carry; a std must also be > 0."""
GEOMETRY_RANGE_M = (1e-3, 100.0)
"""Range of a base's wheel radius and track width."""
MANIFEST_MAX_BYTES = 16 << 20
"""Largest ``bundle.json`` read (its provenance holds the training config: kilobytes)."""
FILE_MAX_BYTES = 1 << 30
"""Largest file of a bundle read into memory (a Panda bundle's graphs are well under 1 MiB)."""


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
RESIDUAL_FIELDS: FieldKinds = {
    "adaptation_rule": str,
    "window_size": int,
    "inner_steps": int,
    "parameters": list,
    "residual_inputs": list,
    "residual_normalizer": dict,
    "nominal": dict,
}
RESIDUAL_RULE_GRAPHS = {"physical": None, "rls": "features.onnx", "gradient": "adapt.onnx"}
"""The graph each residual adaptation rule ships besides ``residual.onnx`` (physical: none, its
closed form runs in numpy)."""
LOG_PRECISION_BOUND = 50.0
"""Largest |log precision| of the physical rule's prior (exp(±50) spans every usable ridge)."""
NOMINAL_FIELDS: FieldKinds = {
    "urdf_file": str,
    "held_positions": dict,
    "damping_nms": list,
    "friction_nm": list,
    "friction_smoothing_rad_s": (int, float),
    "kp_per_s2": (int, float),
    "kd_per_s": (int, float),
}
GAIN_MAX = 1e6
"""Largest computed-torque gain (1/s², 1/s) or joint damping/friction a bundle may carry."""
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
    file_bytes: Mapping[str, bytes] = field(default_factory=dict, repr=False, compare=False)
    """Every listed file's contents as read and hashed: what the runtime loads (read once)."""

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
    rls_forgetting: float = 1.0


@dataclass(frozen=True, kw_only=True)
class ResidualBundleManifest(CommonManifest):
    """A ``residual`` bundle: adaptive computed torque over the arm's nominal rigid-body model.

    The nominal model is built (and so validated) when the manifest is read: a URDF that is not
    a usable rigid-body model of the bundle's joints is a ``BundleSchemaError`` naming the file."""

    adaptation_rule: str
    window_size: int
    inner_steps: int
    rls_prior_precision: float
    rls_forgetting: float
    gradient_warm_start: float
    """w in [0, 1): the gradient rule's steps start from θ* + w (θ_last − θ*) (0: from θ*)."""
    parameter_names: tuple[str, ...]
    parameter_shapes: tuple[tuple[int, ...], ...]
    residual_normalizer: dict[str, np.ndarray]
    nominal_arm: NominalArm
    physical_prior: dict[str, np.ndarray]
    """The physical rule's prior over its P parameters: ``mean`` and ``log_precision``."""


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
    """The reward the policy was trained on, rebuilt by ``metarl_runtime.tracking_reward.TrackingReward``."""
    action: str = "torque"
    """How the policy's normalised action becomes the command (``ACTION_MODES``): ``torque``
    scales it to the action limits; ``residual`` adds it, bounded, to the nominal controller's
    torque (``metarl_runtime.residual_action``), and the policy also sees the tracking error.
    Absent from ``bundle.json``: ``torque`` (bundles written before the residual mode)."""
    residual_torque_fraction: float = 0.0
    """``residual``: the largest correction as a fraction of each joint's effort limit."""
    nominal_arm: NominalArm | None = None
    """``residual``: the arm's nominal model and gains (``nominal``, as in residual bundles)."""

    @property
    def obs_dim(self) -> int:
        """Sensor observation width: state fields then reference fields."""
        return len(self.state_fields) + len(self.reference_fields)

    @property
    def policy_input_dim(self) -> int:
        """The graph's observation width: the sensor observation, then, in ``residual`` mode, the
        tracking error (one per state field)."""
        return self.obs_dim + (len(self.state_fields) if self.action == "residual" else 0)


def sha256_of(path: Path) -> str:
    """The hex sha256 of the file at ``path``, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(
    bundle_dir: Path, trusted_public_key: Path | str | None = None
) -> BundleManifest | RecurrentBundleManifest | ResidualBundleManifest:
    """Parse and check ``bundle_dir/bundle.json``, in the order that keeps hostile input away
    from the parser: no symlink in the directory, the manifest's digest (and, with
    ``trusted_public_key``, its Ed25519 signature), then schema and ranges, then every listed
    file's name and sha256. The manifest's type follows its mode; its ``file_bytes`` hold the
    files exactly as hashed."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / MANIFEST_NAME
    if not path.is_file():
        raise BundleSchemaError(f"{path}: missing; a bundle directory holds bundle.json (metarl export)")
    _refuse_symlinks(bundle_dir)
    if path.stat().st_size > MANIFEST_MAX_BYTES:
        raise BundleSchemaError(f"{path}: {path.stat().st_size} bytes, more than a manifest's {MANIFEST_MAX_BYTES}")
    raw = path.read_bytes()
    _check_manifest_digest(bundle_dir, raw)
    if trusted_public_key is not None:
        verify_manifest_signature(bundle_dir, raw, Path(trusted_public_key))
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as error:
        raise BundleSchemaError(f"{path}: not valid JSON ({error})") from None
    except RecursionError:
        raise BundleSchemaError(f"{path}: not valid JSON (nested too deeply)") from None
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
    mode_fields = {"recurrent": RECURRENT_FIELDS, "residual": RESIDUAL_FIELDS}.get(data["mode"], MODEL_FIELDS)
    _check_field_kinds(path, data, mode_fields)
    for name in ("joint_names", "state_fields", "reference_fields"):
        _check_names(path, name, data[name])
    action_low, action_high = _action_limits(path, data)
    rate = float(data["control_rate_hz"])
    if not CONTROL_RATE_RANGE_HZ[0] <= rate <= CONTROL_RATE_RANGE_HZ[1]:
        raise BundleSchemaError(f"{path}: field 'control_rate_hz'={rate!r} must be in {list(CONTROL_RATE_RANGE_HZ)} Hz")
    geometry = {name: _optional_length(path, data, name) for name in ("wheel_radius_m", "track_width_m")}
    if data["command_interface"] == "twist" and None in geometry.values():
        raise BundleSchemaError(f"{path}: a 'twist' bundle needs 'wheel_radius_m' and 'track_width_m'")
    files = _read_files(bundle_dir, data["files"], data["mode"])
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
        "control_rate_hz": rate,
        "files": dict(data["files"]),
        "file_bytes": files,
        **geometry,
    }
    if data["mode"] == "recurrent":
        return _read_recurrent(path, data, common)
    if data["mode"] == "residual":
        return _read_residual(path, data, common)
    return _read_model(path, data, common, len(action_low))


def _refuse_constant(name: str) -> float:
    """``json`` accepts NaN and Infinity; a bundle may not hold them anywhere."""
    raise ValueError(f"{name} is not a number a bundle may hold")


def _refuse_symlinks(bundle_dir: Path) -> None:
    """No entry of the bundle directory may be a symlink, whether it points in or out: the file
    hashed would not be the file a later reader opens."""
    for entry in sorted(bundle_dir.iterdir()):
        if entry.is_symlink():
            raise BundleIntegrityError(f"{entry}: is a symlink; a bundle holds regular files only")


def _check_manifest_digest(bundle_dir: Path, raw: bytes) -> None:
    digest_path = bundle_dir / DIGEST_NAME
    if not digest_path.is_file():
        raise BundleIntegrityError(
            f"{digest_path}: missing; it holds the sha256 of bundle.json (re-export with metarl export)"
        )
    expected = digest_path.read_text(encoding="ascii", errors="replace").split()
    actual = hashlib.sha256(raw).hexdigest()
    if not expected or expected[0] != actual:
        raise BundleIntegrityError(
            f"{bundle_dir / MANIFEST_NAME}: sha256 {actual[:16]}… does not match {DIGEST_NAME}; "
            "bundle.json was changed or corrupted after export"
        )


def _check_field_kinds(path: Path, data: dict[str, Any], kinds: FieldKinds) -> None:
    for name, kind in kinds.items():
        if name not in data:
            raise BundleSchemaError(f"{path}: missing field '{name}'")
        if not isinstance(data[name], kind) or isinstance(data[name], bool):
            raise BundleSchemaError(f"{path}: field '{name}' must be {kind}, got {type(data[name]).__name__}")


def _check_names(path: Path, name: str, values: list[Any]) -> None:
    if not all(isinstance(v, str) and v for v in values):
        raise BundleSchemaError(f"{path}: field '{name}' must be a list of non-empty strings")
    if len(set(values)) != len(values):
        raise BundleSchemaError(f"{path}: field '{name}' lists a name twice")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(path: Path, name: str, values: Any) -> np.ndarray:
    """A list of finite numbers as float64; a string, bool, null or NaN names the field."""
    if not isinstance(values, list) or not all(_is_number(v) and math.isfinite(v) for v in values):
        raise BundleSchemaError(f"{path}: field '{name}' must be a list of finite numbers")
    return np.asarray(values, dtype=np.float64)


def _action_limits(path: Path, data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    low, high = _numbers(path, "action_low", data["action_low"]), _numbers(path, "action_high", data["action_high"])
    expected = len(data["joint_names"]) if data["command_interface"] != "twist" else 2
    if low.shape != (expected,) or high.shape != (expected,):
        raise BundleSchemaError(
            f"{path}: action_low/action_high have {low.size}/{high.size} entries, expected {expected} "
            f"(one per action of a '{data['command_interface']}' bundle)"
        )
    if not np.all(low < high):
        index = int(np.flatnonzero(~(low < high))[0])
        raise BundleSchemaError(
            f"{path}: action_low[{index}]={low[index]} must be < action_high[{index}]={high[index]}"
        )
    if np.any(np.abs(low) > ACTION_LIMIT_BOUND) or np.any(np.abs(high) > ACTION_LIMIT_BOUND):
        raise BundleSchemaError(f"{path}: action limits must lie within ±{ACTION_LIMIT_BOUND:g}")
    return low, high


def _optional_length(path: Path, data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if not _is_number(value) or not GEOMETRY_RANGE_M[0] <= value <= GEOMETRY_RANGE_M[1]:
        raise BundleSchemaError(f"{path}: field '{name}'={value!r} must be a length in {list(GEOMETRY_RANGE_M)} m")
    return float(value)


def _count(path: Path, data: dict[str, Any], name: str, maximum: int) -> int:
    value = data[name]
    if not 1 <= value <= maximum:
        raise BundleSchemaError(f"{path}: field '{name}'={value} must be in [1, {maximum}]")
    return value


def _statistics(path: Path, name: str, values: Any, size: int, positive: bool, layout: str = "") -> np.ndarray:
    array = _numbers(path, name, values)
    if array.shape != (size,):
        raise BundleSchemaError(f"{path}: {name} has shape {array.shape}, expected ({size},){layout}")
    if np.any(np.abs(array) > STATISTIC_BOUND) or (positive and not np.all(array > 0)):
        bound = f"in (0, {STATISTIC_BOUND:g}]" if positive else f"within ±{STATISTIC_BOUND:g}"
        raise BundleSchemaError(f"{path}: every entry of {name} must be {bound}")
    return array.astype(np.float32)


def _check_step_sizes(path: Path, step_sizes: Any) -> None:
    """A scalar inner step size must be in (0, STEP_SIZE_MAX]; learned (Meta-SGD) ones finite
    and within ±STEP_SIZE_MAX (Meta-SGD may learn a negative entry)."""
    if _is_number(step_sizes):
        if not 0.0 < step_sizes <= STEP_SIZE_MAX:
            raise BundleSchemaError(f"{path}: field 'step_sizes'={step_sizes!r} must be in (0, {STEP_SIZE_MAX:g}]")
        return
    if not isinstance(step_sizes, dict):
        raise BundleSchemaError(f"{path}: field 'step_sizes' must be a number or a mapping of parameter step sizes")
    for name, values in step_sizes.items():
        flat = np.asarray(values, dtype=object).ravel()
        if not all(_is_number(v) and math.isfinite(v) and abs(v) <= STEP_SIZE_MAX for v in flat):
            raise BundleSchemaError(
                f"{path}: field 'step_sizes.{name}' must hold finite numbers within ±{STEP_SIZE_MAX:g}"
            )


def _read_model(path: Path, data: dict[str, Any], common: dict[str, Any], action_size: int) -> BundleManifest:
    state_size = len(data["state_fields"])
    normalizer = {}
    for key, size in (("state", state_size), ("action", action_size), ("delta", state_size)):
        for stat_name in ("mean", "std"):
            name = f"{key}_{stat_name}"
            if name not in data["normalizer"]:
                raise BundleSchemaError(f"{path}: missing field 'normalizer.{name}'")
            values = data["normalizer"][name]
            normalizer[name] = _statistics(path, f"normalizer.{name}", values, size, stat_name == "std")
    window_size = _count(path, data, "window_size", WINDOW_SIZE_MAX)
    inner_steps = _count(path, data, "inner_steps", INNER_STEPS_MAX)
    if "step_sizes" in data:
        _check_step_sizes(path, data["step_sizes"])
    names, shapes = _parameters(path, data)
    try:
        planner = MPPIConfig.from_dict(data["planner"])
        planner.check_ranges(action_dim=action_size)
    except PlannerConfigError as error:
        raise BundleSchemaError(f"{path}: {error}") from None
    rls_prior_precision = data.get("rls_prior_precision")
    if data["mode"] == "rls" and not (_is_number(rls_prior_precision) and 0.0 < rls_prior_precision <= STATISTIC_BOUND):
        raise BundleSchemaError(
            f"{path}: field 'rls_prior_precision'={rls_prior_precision!r} must be a number in (0, {STATISTIC_BOUND:g}]"
        )
    return BundleManifest(
        **common,
        window_size=window_size,
        inner_steps=inner_steps,
        normalizer=normalizer,
        parameter_names=names,
        parameter_shapes=shapes,
        planner=data["planner"],
        rls_prior_precision=rls_prior_precision,
        rls_forgetting=_forgetting(path, data),
    )


def _forgetting(path: Path, data: dict[str, Any]) -> float:
    """The RLS forgetting factor, in (0, 1]; 1 (every transition alike) where a bundle from before
    the field has none."""
    value = data.get("rls_forgetting", 1.0)
    if not (_is_number(value) and 0.0 < value <= 1.0):
        raise BundleSchemaError(f"{path}: field 'rls_forgetting'={value!r} must be a number in (0, 1]")
    return float(value)


def _warm_start(path: Path, data: dict[str, Any], rule: str) -> float:
    """The gradient rule's warm start, in [0, 1); 0 (every adaptation from the meta-parameters)
    where a bundle from before the field has none. Only the gradient rule has one: a warm start
    on another rule is a bundle that does not say what it does."""
    value = data.get("gradient_warm_start", 0.0)
    if not (_is_number(value) and 0.0 <= value < 1.0):
        raise BundleSchemaError(f"{path}: field 'gradient_warm_start'={value!r} must be a number in [0, 1)")
    if value and rule != "gradient":
        raise BundleSchemaError(f"{path}: field 'gradient_warm_start'={value!r} is the gradient rule's, not {rule!r}'s")
    return float(value)


def _parameters(path: Path, data: dict[str, Any]) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]:
    """The names and shapes of ``parameters`` (the graphs' leading inputs), each checked."""
    try:
        names = tuple(p["name"] for p in data["parameters"])
        shapes = tuple(tuple(p["shape"]) for p in data["parameters"])
    except (KeyError, TypeError) as error:
        raise BundleSchemaError(f"{path}: each of 'parameters' needs a name and a shape ({error})") from None
    if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise BundleSchemaError(f"{path}: field 'parameters' must name each parameter once, by a non-empty string")
    for name, shape in zip(names, shapes, strict=True):
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 1 << 20 for d in shape):
            raise BundleSchemaError(f"{path}: field 'parameters' gives '{name}' the shape {list(shape)}")
    return names, shapes


def _read_residual(path: Path, data: dict[str, Any], common: dict[str, Any]) -> ResidualBundleManifest:
    joints = list(data["joint_names"])
    expected_state = [f"joint_states.position:{j}" for j in joints] + [f"joint_states.velocity:{j}" for j in joints]
    expected_reference = [f"reference.position:{j}" for j in joints] + [f"reference.velocity:{j}" for j in joints]
    if data["command_interface"] != "effort_forward" or data["state_fields"] != expected_state:
        raise BundleSchemaError(
            f"{path}: a 'residual' bundle drives joint efforts from joint positions then velocities "
            "(command_interface 'effort_forward', state_fields positions then velocities of joint_names)"
        )
    if data["reference_fields"] != expected_reference:
        raise BundleSchemaError(f"{path}: field 'reference_fields' must be positions then velocities of joint_names")
    rule = data["adaptation_rule"]
    if rule not in RESIDUAL_RULE_GRAPHS:
        raise BundleSchemaError(f"{path}: field 'adaptation_rule'={rule!r} is not one of {list(RESIDUAL_RULE_GRAPHS)}")
    if RESIDUAL_RULE_GRAPHS[rule] is not None and RESIDUAL_RULE_GRAPHS[rule] not in common["file_bytes"]:
        raise BundleIntegrityError(
            f"{path}: field 'files' does not list {RESIDUAL_RULE_GRAPHS[rule]!r} (rule {rule!r})"
        )
    if data["residual_inputs"] != list(RESIDUAL_INPUT_NAMES):
        raise BundleSchemaError(
            f"{path}: field 'residual_inputs'={data['residual_inputs']!r}; "
            f"this runtime computes {list(RESIDUAL_INPUT_NAMES)}"
        )
    if "step_sizes" in data:
        _check_step_sizes(path, data["step_sizes"])
    precision = data.get("rls_prior_precision")
    if not (_is_number(precision) and 0.0 < precision <= STATISTIC_BOUND):
        raise BundleSchemaError(
            f"{path}: field 'rls_prior_precision'={precision!r} must be a number in (0, {STATISTIC_BOUND:g}]"
        )
    names, shapes = _parameters(path, data)
    n = len(joints)
    width = len(RESIDUAL_INPUT_NAMES) * n
    if shapes[0][-1:] != (width,) or shapes[-2][:1] != (n,):
        raise BundleSchemaError(
            f"{path}: field 'parameters': the residual MLP must take {width} inputs and give {n} torques, "
            f"got first weight {list(shapes[0])}, last weight {list(shapes[-2])}"
        )
    arm = _nominal_arm(path, data, common)
    normalizer = {}
    for name, size in (("input_mean", width), ("input_std", width), ("target_mean", n), ("target_std", n)):
        if name not in data["residual_normalizer"]:
            raise BundleSchemaError(f"{path}: missing field 'residual_normalizer.{name}'")
        values = data["residual_normalizer"][name]
        normalizer[name] = _statistics(path, f"residual_normalizer.{name}", values, size, name.endswith("std"))
    return ResidualBundleManifest(
        **common,
        adaptation_rule=rule,
        window_size=_count(path, data, "window_size", WINDOW_SIZE_MAX),
        inner_steps=_count(path, data, "inner_steps", INNER_STEPS_MAX),
        rls_prior_precision=float(precision),
        rls_forgetting=_forgetting(path, data),
        gradient_warm_start=_warm_start(path, data, rule),
        parameter_names=names,
        parameter_shapes=shapes,
        residual_normalizer=normalizer,
        nominal_arm=arm,
        physical_prior=_physical_prior(path, data, arm.design_width),
    )


def _physical_prior(path: Path, data: dict[str, Any], width: int) -> dict[str, np.ndarray]:
    """``physical_prior``: P finite means and log precisions within ±LOG_PRECISION_BOUND."""
    prior = data.get("physical_prior")
    if not isinstance(prior, dict):
        raise BundleSchemaError(f"{path}: missing field 'physical_prior' (a mapping of 'mean' and 'log_precision')")
    values = {}
    for name in ("mean", "log_precision"):
        array = _numbers(path, f"physical_prior.{name}", prior.get(name))
        if array.shape != (width,):
            raise BundleSchemaError(f"{path}: physical_prior.{name} has {array.size} entries, expected {width}")
        bound = LOG_PRECISION_BOUND if name == "log_precision" else STATISTIC_BOUND
        if np.any(np.abs(array) > bound):
            raise BundleSchemaError(f"{path}: every entry of physical_prior.{name} must be within ±{bound:g}")
        values[name] = array
    return values


def _nominal_arm(path: Path, data: dict[str, Any], common: dict[str, Any]) -> NominalArm:
    """The bundle's nominal arm: its URDF file (listed and hashed like every file) parsed into a
    rigid-body model of ``joint_names``, with damping, friction and gains range-checked."""
    nominal = data["nominal"]
    _check_field_kinds(path, nominal, NOMINAL_FIELDS)
    n = len(data["joint_names"])
    urdf_file = nominal["urdf_file"]
    if urdf_file not in common["file_bytes"]:
        raise BundleIntegrityError(f"{path}: field 'nominal.urdf_file'={urdf_file!r} is not listed in 'files'")
    held = nominal["held_positions"]
    if not all(isinstance(k, str) and _is_number(v) and math.isfinite(v) for k, v in held.items()):
        raise BundleSchemaError(f"{path}: field 'nominal.held_positions' must map joint names to finite numbers")
    arrays = {}
    for name in ("damping_nms", "friction_nm"):
        array = _numbers(path, f"nominal.{name}", nominal[name])
        if array.shape != (n,) or np.any(array < 0) or np.any(array > GAIN_MAX):
            raise BundleSchemaError(f"{path}: field 'nominal.{name}' must hold {n} numbers in [0, {GAIN_MAX:g}]")
        arrays[name] = array
    scalars = {}
    for name in ("friction_smoothing_rad_s", "kp_per_s2", "kd_per_s"):
        value = float(nominal[name])
        if not (math.isfinite(value) and 0.0 < value <= GAIN_MAX):
            raise BundleSchemaError(f"{path}: field 'nominal.{name}'={value!r} must be in (0, {GAIN_MAX:g}]")
        scalars[name] = value
    try:
        text = common["file_bytes"][urdf_file].decode("utf-8")
        model = RigidBodyModel.from_urdf(text, data["joint_names"], held)
    except UnicodeDecodeError:
        raise BundleSchemaError(f"{path.parent / urdf_file}: not UTF-8 text") from None
    except RigidBodyModelError as error:
        raise BundleSchemaError(f"{path.parent / urdf_file}: {error}") from None
    return NominalArm(model=model, period_s=1.0 / common["control_rate_hz"], **arrays, **scalars)


def _read_recurrent(path: Path, data: dict[str, Any], common: dict[str, Any]) -> RecurrentBundleManifest:
    hidden_size = _count(path, data, "hidden_size", HIDDEN_SIZE_MAX)
    episodes_per_trial = _count(path, data, "episodes_per_trial", EPISODES_PER_TRIAL_MAX)
    action = data.get("action", "torque")
    if action not in ACTION_MODES:
        raise BundleSchemaError(f"{path}: field 'action'={action!r} is not one of {ACTION_MODES}")
    residual: dict[str, Any] = {}
    obs_dim = len(data["state_fields"]) + len(data["reference_fields"])
    if action == "residual":
        fraction = data.get("residual_torque_fraction")
        if not (_is_number(fraction) and 0.0 < fraction <= 1.0):
            raise BundleSchemaError(f"{path}: field 'residual_torque_fraction'={fraction!r} must be a number in (0, 1]")
        if not isinstance(data.get("nominal"), dict):
            raise BundleSchemaError(f"{path}: missing field 'nominal' (a mapping), which 'action: residual' needs")
        if len(data["state_fields"]) != 2 * len(data["joint_names"]) or len(data["reference_fields"]) != len(
            data["state_fields"]
        ):
            raise BundleSchemaError(
                f"{path}: 'action: residual' needs state and reference fields of joint positions then velocities"
            )
        residual = {
            "action": action,
            "residual_torque_fraction": float(fraction),
            "nominal_arm": _nominal_arm(path, data, common),
        }
        obs_dim += len(data["state_fields"])
    stats = {}
    for name in ("obs_mean", "obs_std"):
        if name not in data["obs_normalizer"]:
            raise BundleSchemaError(f"{path}: missing field 'obs_normalizer.{name}'")
        layout = " (state fields, reference fields" + (", tracking error)" if residual else ")")
        values = data["obs_normalizer"][name]
        stats[name] = _statistics(path, f"obs_normalizer.{name}", values, obs_dim, name == "obs_std", layout)
    if not isinstance(data["reward"].get("name"), str):
        raise BundleSchemaError(f"{path}: missing field 'reward.name'")
    return RecurrentBundleManifest(
        **common,
        env_id=data["env_id"],
        hidden_size=hidden_size,
        episodes_per_trial=episodes_per_trial,
        obs_mean=stats["obs_mean"],
        obs_std=stats["obs_std"],
        reward=data["reward"],
        **residual,
    )


def _read_files(bundle_dir: Path, files: dict[str, Any], mode: str) -> dict[str, bytes]:
    """Every listed file read once and checked against its sha256; the mode's required files
    must all be listed. A name must be a plain file name inside the bundle."""
    manifest_path = bundle_dir / MANIFEST_NAME
    missing = [name for name in REQUIRED_FILES[mode] if name not in files]
    if missing:
        raise BundleIntegrityError(
            f"{manifest_path}: field 'files' does not list {missing}; a '{mode}' bundle needs "
            f"{list(REQUIRED_FILES[mode])}, each with its sha256"
        )
    contents = {}
    for name, expected in files.items():
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise BundleIntegrityError(
                f"{manifest_path}: 'files' entry {name!r} is not a plain file name in the bundle"
            )
        if name == MANIFEST_NAME or name in INTEGRITY_NAMES:
            raise BundleIntegrityError(f"{manifest_path}: 'files' entry {name!r} names the manifest's own data")
        if not isinstance(expected, str) or len(expected) != 64:
            raise BundleIntegrityError(f"{manifest_path}: 'files.{name}' must be a sha256 in hex")
        file_path = bundle_dir / name
        try:
            info = file_path.lstat()
        except FileNotFoundError:
            raise BundleIntegrityError(f"{file_path}: listed in bundle.json 'files' but missing") from None
        if not stat.S_ISREG(info.st_mode):
            raise BundleIntegrityError(f"{file_path}: listed in bundle.json 'files' but not a regular file")
        if info.st_size > FILE_MAX_BYTES:
            raise BundleIntegrityError(f"{file_path}: {info.st_size} bytes, more than a bundle file's {FILE_MAX_BYTES}")
        data = file_path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise BundleIntegrityError(
                f"{file_path}: sha256 {actual[:16]}… does not match bundle.json's {expected[:16]}…; "
                "the file was changed or corrupted after export"
            )
        contents[name] = data
    return contents


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
