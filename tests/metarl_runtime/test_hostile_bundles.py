"""``bundle.json`` and the files beside it are hostile input: every bad value, name, file or
graph is refused at load with a specific ``BundleError`` naming the field or file, never later
on a tick and never with another exception.

Each hostile bundle is written by the test from a tiny exported one. Edits of ``bundle.json``
rewrite its digest too (``write_manifest_data``), as an adversary with write access but no
signing key would, so that what is tested is the schema check, not the digest.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from export.onnx_export import export_trained_dynamics
from metarl_runtime import bundle_manifest
from metarl_runtime.bundle_manifest import BundleCorruptError, BundleError, BundleIntegrityError, BundleSchemaError
from metarl_runtime.controllers import load_controller
from tests.conftest import read_manifest_data, tiny_model, write_manifest_data

Edit = Callable[[dict[str, Any]], None]


def combined(*edits: Edit) -> Edit:
    """One edit that applies ``edits`` in order (a hostile value that needs several fields)."""

    def edit(data: dict[str, Any]) -> None:
        for each in edits:
            each(data)

    return edit


def setter(field: str, value: Any) -> Edit:
    """An edit that sets ``field`` (a dotted path into the manifest) to ``value``."""

    def edit(data: dict[str, Any]) -> None:
        *parents, leaf = field.split(".")
        target = data
        for name in parents:
            target = target[name]
        target[leaf] = value

    return edit


def first_limit(value: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        data["action_low"][0] = value

    return edit


def feedback_without_a_joint_position(data: dict[str, Any]) -> None:
    data["planner"].update(feedback_kp=[1.0] * 7, feedback_kd=[0.1] * 7)
    data["state_fields"][0] = "joint_states.effort:panda_joint1"


def reference_tracking_nothing(data: dict[str, Any]) -> None:
    data["reference_fields"] = [f"reference.unknown_{i}" for i in range(len(data["reference_fields"]))]


SCHEMA_CASES: list[tuple[str, Edit, str]] = [
    ("nan limit", first_limit(float("nan")), r"not valid JSON \(NaN is not a number a bundle may hold"),
    ("infinite limit", setter("action_high", [float("inf")] * 7), r"not valid JSON \(Infinity"),
    ("1e400 limit", first_limit("1e400"), r"field 'action_low' must be a list of finite numbers"),
    ("huge limits", setter("action_high", [1e9] * 7), r"action limits must lie within ±10000"),
    ("low above high", first_limit(100.0), r"action_low\[0\]=100\.0 must be < action_high\[0\]=87\.0"),
    ("low equals high", setter("action_low", [87.0] * 4 + [12.0] * 3), r"action_low\[0\]=87\.0 must be <"),
    ("string limit", first_limit("-87"), r"field 'action_low' must be a list of finite numbers"),
    ("bool limit", first_limit(True), r"field 'action_low' must be a list of finite numbers"),
    ("null limit", first_limit(None), r"field 'action_low' must be a list of finite numbers"),
    ("short limits", setter("action_low", [-1.0] * 3), r"action_low/action_high have 3/7 entries, expected 7"),
    ("limits not a list", setter("action_high", 87.0), r"field 'action_high' must be <class 'list'>, got float"),
    ("zero rate", setter("control_rate_hz", 0), r"field 'control_rate_hz'=0\.0 must be in \[1\.0, 2000\.0\] Hz"),
    ("negative rate", setter("control_rate_hz", -100.0), r"field 'control_rate_hz'=-100\.0 must be in"),
    ("absurd rate", setter("control_rate_hz", 1e9), r"field 'control_rate_hz'=1000000000\.0 must be in"),
    ("string rate", setter("control_rate_hz", "100"), r"field 'control_rate_hz' must be .*, got str"),
    ("bool rate", setter("control_rate_hz", True), r"field 'control_rate_hz' must be .*, got bool"),
    ("zero window", setter("window_size", 0), r"field 'window_size'=0 must be in \[1, 10000\]"),
    ("huge window", setter("window_size", 10**9), r"field 'window_size'=1000000000 must be in \[1, 10000\]"),
    ("string window", setter("window_size", "6"), r"field 'window_size' must be <class 'int'>, got str"),
    ("float window", setter("window_size", 6.5), r"field 'window_size' must be <class 'int'>, got float"),
    ("zero inner steps", setter("inner_steps", 0), r"field 'inner_steps'=0 must be in \[1, 100\]"),
    ("many inner steps", setter("inner_steps", 10**6), r"field 'inner_steps'=1000000 must be in \[1, 100\]"),
    ("negative step size", setter("step_sizes", -0.05), r"field 'step_sizes'=-0\.05 must be in \(0, 100\]"),
    ("zero step size", setter("step_sizes", 0.0), r"field 'step_sizes'=0\.0 must be in \(0, 100\]"),
    ("string step size", setter("step_sizes", "fast"), r"field 'step_sizes' must be a number or a mapping"),
    ("zero std", setter("normalizer.state_std", [0.0] * 14), r"every entry of normalizer\.state_std must be in \(0"),
    ("negative std", setter("normalizer.action_std", [-1.0] * 7), r"every entry of normalizer\.action_std must be"),
    ("huge mean", setter("normalizer.delta_mean", [1e30] * 14), r"every entry of normalizer\.delta_mean must be"),
    ("string std", setter("normalizer.delta_std", ["1"] * 14), r"field 'normalizer\.delta_std' must be a list of"),
    ("short std", setter("normalizer.state_std", [1.0] * 3), r"normalizer\.state_std has shape \(3,\), expected"),
    ("zero samples", setter("planner.samples", 0), r"field 'planner\.samples'=0 is out of range"),
    ("negative samples", setter("planner.samples", -5), r"field 'planner\.samples'=-5 is out of range"),
    ("huge samples", setter("planner.samples", 10**9), r"field 'planner\.samples'=1000000000 is out of range"),
    ("zero horizon", setter("planner.horizon", 0), r"field 'planner\.horizon'=0 is out of range"),
    ("string horizon", setter("planner.horizon", "4"), r"field 'planner\.horizon'='4' must be an integer"),
    ("planner typo", setter("planner.sampels", 64), r"unknown field 'planner\.sampels'"),
    ("zero temperature", setter("planner.temperature", 0.0), r"field 'planner\.temperature'=0\.0 is out of range"),
    ("negative noise", setter("planner.noise_fraction", -1.0), r"field 'planner\.noise_fraction'=-1\.0 is out"),
    (
        "negative integral gain",
        setter("planner.model_inverse_integral_gain", -1.0),
        r"field 'planner\.model_inverse_integral_gain'=-1\.0 is out of range",
    ),
    (
        "zero integral limit",
        setter("planner.model_inverse_integral_limit_rad_s", 0.0),
        r"field 'planner\.model_inverse_integral_limit_rad_s'=0\.0 is out of range",
    ),
    ("gains of another width", setter("planner.feedback_kp", [1.0] * 3), r"'planner\.feedback_kp' and"),
    ("negative gains", setter("planner.feedback_kp", [-1.0] * 7), r"field 'planner\.feedback_kp'=.* must be gains"),
    (
        "model inverse with zero gains",
        combined(
            setter("planner.feedback_kp", [0.0] * 7),
            setter("planner.feedback_kd", [0.0] * 7),
            setter("planner.model_inverse", True),
        ),
        r"'planner\.model_inverse'=True needs",
    ),
    ("forgetting of zero", setter("rls_forgetting", 0.0), r"field 'rls_forgetting'=0\.0 must be a number in \(0, 1\]"),
    ("forgetting above one", setter("rls_forgetting", 1.5), r"field 'rls_forgetting'=1\.5 must be a number in"),
    ("forgetting as text", setter("rls_forgetting", "0.5"), r"field 'rls_forgetting'='0\.5' must be a number in"),
    ("planner not a mapping", setter("planner", [32, 4]), r"field 'planner' must be <class 'dict'>, got list"),
    ("shape with zero", setter("parameters", [{"name": "layers.0.weight", "shape": [0, 21]}]), r"gives 'layers"),
    ("parameter without a shape", setter("parameters", [{"name": "w"}]), r"each of 'parameters' needs a name"),
    ("duplicate joints", setter("joint_names", ["panda_joint1"] * 7), r"field 'joint_names' lists a name twice"),
    ("numeric joint", setter("joint_names", [1, 2, 3, 4, 5, 6, 7]), r"field 'joint_names' must be a list of non"),
    ("string robot", setter("robot", 7), r"field 'robot' must be <class 'str'>, got int"),
    ("unknown mode", setter("mode", "magic"), r"field 'mode'='magic' is not one of"),
    ("negative wheel radius", setter("wheel_radius_m", -0.1), r"field 'wheel_radius_m'=-0\.1 must be a length"),
    ("old schema", setter("schema_version", 0), r"schema_version 0 is not a valid version"),
    ("feedback without positions", feedback_without_a_joint_position, r"field 'planner' cannot drive this bundle"),
    ("reference tracking nothing", reference_tracking_nothing, r"field 'planner' cannot drive this bundle \(no state"),
]

INTEGRITY_CASES: list[tuple[str, Edit, str]] = [
    ("files emptied", setter("files", {}), r"field 'files' does not list \['adapt\.onnx', 'predict\.onnx', 'meta"),
    ("a required file unlisted", lambda d: d["files"].pop("meta_params.npz"), r"does not list \['meta_params\.npz'\]"),
    ("parent path", lambda d: d["files"].update({"../outside.onnx": "0" * 64}), r"'\.\./outside\.onnx' is not a plain"),
    ("nested path", lambda d: d["files"].update({"sub/predict.onnx": "0" * 64}), r"'sub/predict\.onnx' is not a"),
    ("absolute path", lambda d: d["files"].update({"/etc/passwd": "0" * 64}), r"'/etc/passwd' is not a plain file"),
    ("the manifest itself", lambda d: d["files"].update({"bundle.json": "0" * 64}), r"names the manifest's own data"),
    ("hash not hex", lambda d: d["files"].update({"predict.onnx": 12}), r"'files\.predict\.onnx' must be a sha256"),
    ("listed file missing", lambda d: d["files"].update({"gone.onnx": "0" * 64}), r"gone\.onnx: listed in bundle"),
]


@pytest.mark.parametrize(("case", "edit", "message"), SCHEMA_CASES, ids=[c[0] for c in SCHEMA_CASES])
def test_hostile_manifest_value_is_refused_naming_the_field(
    bundle_copy: Path, case: str, edit: Edit, message: str
) -> None:
    data = read_manifest_data(bundle_copy)
    edit(data)
    write_manifest_data(bundle_copy, data)
    with pytest.raises(BundleSchemaError, match=message):
        load_controller(bundle_copy)


@pytest.mark.parametrize(("case", "edit", "message"), INTEGRITY_CASES, ids=[c[0] for c in INTEGRITY_CASES])
def test_hostile_file_list_is_refused_naming_the_entry(bundle_copy: Path, case: str, edit: Edit, message: str) -> None:
    data = read_manifest_data(bundle_copy)
    edit(data)
    write_manifest_data(bundle_copy, data)
    with pytest.raises(BundleIntegrityError, match=message):
        load_controller(bundle_copy)


def test_manifest_changed_without_its_digest_is_refused(bundle_copy: Path) -> None:
    text = (bundle_copy / "bundle.json").read_text().replace('"control_rate_hz": 100.0', '"control_rate_hz": 99.0')
    (bundle_copy / "bundle.json").write_text(text)
    with pytest.raises(BundleIntegrityError, match=r"bundle\.json: sha256 .* does not match bundle\.json\.sha256"):
        load_controller(bundle_copy)


def test_manifest_without_a_digest_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "bundle.json.sha256").unlink()
    with pytest.raises(BundleIntegrityError, match=r"bundle\.json\.sha256: missing"):
        load_controller(bundle_copy)


@pytest.mark.parametrize("target", ["inside", "outside"])
def test_a_listed_file_that_is_a_symlink_is_refused(bundle_copy: Path, tmp_path: Path, target: str) -> None:
    """A symlink pointing into the bundle or out of it: the file hashed could change under the reader."""
    graph = bundle_copy / "predict.onnx"
    if target == "inside":
        real = bundle_copy / "predict-copy.onnx"
    else:
        real = tmp_path / "elsewhere.onnx"
    shutil.move(graph, real)
    graph.symlink_to(real)
    with pytest.raises(BundleIntegrityError, match=r"predict\.onnx: is a symlink"):
        load_controller(bundle_copy)


def test_an_unlisted_symlink_anywhere_in_the_bundle_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "notes").symlink_to("/etc")
    with pytest.raises(BundleIntegrityError, match=r"notes: is a symlink"):
        load_controller(bundle_copy)


def test_a_symlinked_manifest_is_refused(bundle_copy: Path, tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    shutil.move(bundle_copy / "bundle.json", real)
    (bundle_copy / "bundle.json").symlink_to(real)
    with pytest.raises(BundleIntegrityError, match=r"bundle\.json: is a symlink"):
        load_controller(bundle_copy)


def rehash_file(bundle: Path, name: str) -> None:
    import hashlib

    data = read_manifest_data(bundle)
    data["files"][name] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    write_manifest_data(bundle, data)


def test_a_graph_of_another_shape_is_refused_at_load_naming_it(bundle_copy: Path, tmp_path: Path) -> None:
    """Same parameter names, other widths: only running the graph shows it does not fit."""
    import dataclasses

    from metarl_core.model_based.dynamics_model import ModelShape, init_params

    model = tiny_model(1)
    shape = ModelShape(model.shape.state_dim, model.shape.action_dim, (8, 8))
    import torch

    other = dataclasses.replace(model, shape=shape, params=init_params(shape, torch.Generator().manual_seed(0)))
    other_bundle = export_trained_dynamics(other, tmp_path / "other")
    shutil.copy(other_bundle / "predict.onnx", bundle_copy / "predict.onnx")
    rehash_file(bundle_copy, "predict.onnx")
    with pytest.raises(BundleCorruptError, match=r"predict\.onnx: dry run failed"):
        load_controller(bundle_copy)


def test_graphs_swapped_are_refused_naming_the_graph(bundle_copy: Path) -> None:
    shutil.copy(bundle_copy / "predict.onnx", bundle_copy / "adapt.onnx")
    rehash_file(bundle_copy, "adapt.onnx")
    with pytest.raises(BundleCorruptError, match=r"adapt\.onnx: graph inputs .* != expected"):
        load_controller(bundle_copy)


def test_a_recurrent_graph_of_another_width_is_refused(recurrent_bundle_copy: Path, tmp_path: Path) -> None:
    data = read_manifest_data(recurrent_bundle_copy)
    data["hidden_size"] = 16
    write_manifest_data(recurrent_bundle_copy, data)
    with pytest.raises(BundleCorruptError, match=r"policy\.onnx: graph input 'hidden' has shape"):
        load_controller(recurrent_bundle_copy)


def write_npz(bundle: Path, arrays: dict[str, np.ndarray], allow_pickle: bool = False) -> None:
    with open(bundle / "meta_params.npz", "wb") as stream:
        np.savez(stream, allow_pickle=allow_pickle, **arrays)
    rehash_file(bundle, "meta_params.npz")


def stored_params(bundle: Path) -> dict[str, np.ndarray]:
    with np.load(bundle / "meta_params.npz") as stored:
        return {k: stored[k] for k in stored.files}


def test_meta_params_that_are_not_a_zip_are_corrupt(bundle_copy: Path) -> None:
    (bundle_copy / "meta_params.npz").write_bytes(b"PK\x03\x04 not really a zip")
    rehash_file(bundle_copy, "meta_params.npz")
    with pytest.raises(BundleCorruptError, match=r"meta_params\.npz: unreadable"):
        load_controller(bundle_copy)


def test_meta_params_with_object_arrays_are_refused_unpickled(bundle_copy: Path, tmp_path: Path) -> None:
    """An object array is a pickle; ``allow_pickle=False`` refuses it before anything runs."""
    params = stored_params(bundle_copy)
    first = next(iter(params))
    params[first] = np.array([PlantedPayload(tmp_path / "ran")], dtype=object)
    write_npz(bundle_copy, params, allow_pickle=True)
    with pytest.raises(BundleCorruptError, match=r"meta_params\.npz: unreadable \(Object arrays cannot be loaded"):
        load_controller(bundle_copy)
    assert not (tmp_path / "ran").exists()


class PlantedPayload:
    """Pickles as a call that would create ``marker``: proof that nothing unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_meta_params_with_other_keys_are_refused(bundle_copy: Path) -> None:
    params = stored_params(bundle_copy)
    params["extra"] = np.zeros(3, np.float32)
    write_npz(bundle_copy, params)
    with pytest.raises(BundleCorruptError, match=r"meta_params\.npz: holds arrays .*'extra'"):
        load_controller(bundle_copy)


def test_meta_params_of_another_shape_are_refused(bundle_copy: Path) -> None:
    params = stored_params(bundle_copy)
    params["layers.0.weight"] = params["layers.0.weight"][:, :5]
    write_npz(bundle_copy, params)
    with pytest.raises(BundleCorruptError, match=r"parameter 'layers\.0\.weight' has shape \(16, 5\)"):
        load_controller(bundle_copy)


@pytest.mark.parametrize(("value", "message"), [(np.nan, "holds NaN or inf"), (None, "has dtype int64")])
def test_meta_params_that_are_not_finite_floats_are_refused(bundle_copy: Path, value: Any, message: str) -> None:
    params = stored_params(bundle_copy)
    weight = params["layers.0.weight"]
    params["layers.0.weight"] = weight.astype(np.int64) if value is None else np.full_like(weight, value)
    write_npz(bundle_copy, params)
    with pytest.raises(BundleCorruptError, match=message):
        load_controller(bundle_copy)


def test_every_hostile_bundle_fails_with_a_bundle_error_only(bundle_copy: Path, tmp_path: Path) -> None:
    """Whatever the edit, the loader raises a ``BundleError`` (what the node counts and logs),
    never an exception that would escape it as a crash."""
    crashes = []
    for case, edit, _ in SCHEMA_CASES + INTEGRITY_CASES:
        copy = Path(shutil.copytree(bundle_copy, tmp_path / case.replace(" ", "_")))
        data = read_manifest_data(copy)
        edit(data)
        write_manifest_data(copy, data)
        try:
            load_controller(copy)
            crashes.append(f"{case}: accepted")
        except BundleError:
            pass
        except Exception as error:  # what is being counted: anything but a BundleError
            crashes.append(f"{case}: {type(error).__name__}: {error}")
    assert crashes == []


def test_a_manifest_nested_too_deeply_is_a_schema_error(bundle_copy: Path) -> None:
    raw = ("[" * 100_000 + "]" * 100_000).encode()
    (bundle_copy / "bundle.json").write_bytes(raw)
    (bundle_copy / "bundle.json.sha256").write_text(hashlib.sha256(raw).hexdigest())
    with pytest.raises(BundleSchemaError, match=r"not valid JSON \(nested too deeply\)"):
        load_controller(bundle_copy)


def test_an_oversized_file_is_refused_before_it_is_read(bundle_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cap (1 GiB) is lowered for the test: writing a real 1 GiB file would only cost time."""
    monkeypatch.setattr(bundle_manifest, "FILE_MAX_BYTES", 1000)
    with pytest.raises(BundleIntegrityError, match=r"\.onnx: \d+ bytes, more than a bundle file's 1000"):
        load_controller(bundle_copy)


def test_the_bytes_loaded_are_the_bytes_hashed(bundle_copy: Path) -> None:
    """A file swapped after its hash was checked (a time-of-check/time-of-use race) changes
    nothing: the runtime runs the bytes it hashed, not what is on disk later."""
    from metarl_runtime.model_runtime import AdaptiveRuntime

    manifest = bundle_manifest.read_manifest(bundle_copy)
    original = AdaptiveRuntime.from_manifest(manifest)
    (bundle_copy / "predict.onnx").write_bytes(b"swapped after the check")
    (bundle_copy / "meta_params.npz").write_bytes(b"swapped after the check")
    runtime = AdaptiveRuntime.from_manifest(manifest)
    rng = np.random.default_rng(0)
    states, actions = rng.normal(size=(3, 14)), rng.normal(size=(3, 7))
    np.testing.assert_array_equal(
        runtime.predict(runtime.meta_params, states, actions), original.predict(original.meta_params, states, actions)
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("effort_penalty", "1e400", r"reward\.effort_penalty=inf must be a finite number >= 0"),
        ("effort_penalty", -1.0, r"reward\.effort_penalty=-1\.0 must be a finite number >= 0"),
        ("effort_penalty", "high", r"reward\.effort_penalty='high' must be a finite number"),
        ("effort_limits", [0.0] * 7, r"reward\.effort_limits must be 7 positive values"),
        ("effort_limits", ["1e400"] * 7, r"reward\.effort_limits must be 7 positive values"),
    ],
)
def test_a_hostile_reward_spec_is_refused_naming_the_field(
    recurrent_bundle_copy: Path, key: str, value: Any, message: str
) -> None:
    """The reward the policy reads back each tick: a spec that makes it inf or NaN would hold
    forever (``"1e400"`` is written as a bare 1e400, which JSON reads as inf)."""
    data = read_manifest_data(recurrent_bundle_copy)
    data["reward"][key] = value
    write_manifest_data(recurrent_bundle_copy, data)
    with pytest.raises(BundleSchemaError, match=message):
        load_controller(recurrent_bundle_copy)
