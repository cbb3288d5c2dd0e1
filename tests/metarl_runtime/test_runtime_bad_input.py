"""Every way a bundle or a window can be wrong gets its own error, naming what and where."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from metarl_runtime.bundle_manifest import sha256_of
from metarl_runtime.model_runtime import (
    AdaptiveRuntime,
    BundleCorruptError,
    BundleIntegrityError,
    BundleSchemaError,
    RobotMismatchError,
    WindowError,
)
from tests.conftest import read_manifest_data, write_manifest_data


def edit_manifest(bundle: Path, **changes: object) -> None:
    data = read_manifest_data(bundle)
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    write_manifest_data(bundle, data)


def rehash(bundle: Path, name: str) -> None:
    """Record a damaged file's new hash, as a buggy exporter would have: now only the ONNX check can catch it."""
    data = read_manifest_data(bundle)
    data["files"][name] = sha256_of(bundle / name)
    write_manifest_data(bundle, data)


def test_truncated_onnx_file_is_reported_as_corrupt(bundle_copy: Path) -> None:
    model = bundle_copy / "adapt.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    rehash(bundle_copy, "adapt.onnx")
    with pytest.raises(BundleCorruptError, match=r"adapt\.onnx: not a loadable ONNX model"):
        AdaptiveRuntime.load(bundle_copy)


def test_garbage_onnx_file_is_reported_as_corrupt(bundle_copy: Path) -> None:
    (bundle_copy / "predict.onnx").write_bytes(b"not a model at all")
    rehash(bundle_copy, "predict.onnx")
    with pytest.raises(BundleCorruptError, match=r"predict\.onnx"):
        AdaptiveRuntime.load(bundle_copy)


def test_changed_file_fails_its_sha256(bundle_copy: Path) -> None:
    model = bundle_copy / "predict.onnx"
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(BundleIntegrityError, match=r"predict\.onnx: sha256 .* does not match"):
        AdaptiveRuntime.load(bundle_copy)


@pytest.mark.parametrize("field", ["window_size", "joint_names", "normalizer", "files"])
def test_missing_manifest_field_is_named(bundle_copy: Path, field: str) -> None:
    edit_manifest(bundle_copy, **{field: None})
    with pytest.raises(BundleSchemaError, match=f"missing field '{field}'"):
        AdaptiveRuntime.load(bundle_copy)


def test_schema_version_from_the_future_is_refused(bundle_copy: Path) -> None:
    edit_manifest(bundle_copy, schema_version=99)
    with pytest.raises(BundleSchemaError, match="schema_version 99 is newer than this runtime's 1"):
        AdaptiveRuntime.load(bundle_copy)


def test_bundle_for_another_robot_is_refused(bundle_copy: Path) -> None:
    with pytest.raises(RobotMismatchError, match="bundle is for robot 'panda', this is 'husky'"):
        AdaptiveRuntime.load(bundle_copy, expected_robot="husky")


def test_bundle_commanding_missing_joints_is_refused(bundle_copy: Path) -> None:
    with pytest.raises(RobotMismatchError, match=r"joints \['panda_joint7'\] are not on this robot"):
        AdaptiveRuntime.load(bundle_copy, available_joints=[f"panda_joint{i}" for i in range(1, 7)])


def test_missing_bundle_json_is_named(tmp_path: Path) -> None:
    with pytest.raises(BundleSchemaError, match=r"bundle\.json: missing"):
        AdaptiveRuntime.load(tmp_path)


@pytest.fixture()
def runtime(bundle_copy: Path) -> AdaptiveRuntime:
    return AdaptiveRuntime.load(bundle_copy)


def window(runtime: AdaptiveRuntime, length: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    s, a = runtime.manifest.state_dim, len(runtime.manifest.action_low)
    states = rng.normal(size=(length, s))
    return [states, rng.normal(size=(length, a)), states + 0.01 * rng.normal(size=(length, s))]


def test_window_with_nan_is_refused_naming_the_row(runtime: AdaptiveRuntime) -> None:
    states, actions, next_states = window(runtime)
    actions[2, 3] = np.nan
    with pytest.raises(WindowError, match=r"window actions has NaN or inf in rows \[2\]"):
        runtime.adapt(states, actions, next_states)


def test_window_of_wrong_width_is_refused(runtime: AdaptiveRuntime) -> None:
    states, actions, next_states = window(runtime)
    with pytest.raises(WindowError, match=r"window states has shape \(4, 13\), expected \(M, 14\)"):
        runtime.adapt(states[:, :13], actions, next_states)


def test_non_finite_adaptation_returns_the_meta_parameters(runtime: AdaptiveRuntime) -> None:
    """A window far outside the training data makes the gradient step overflow float32."""
    states, actions, next_states = window(runtime)
    result = runtime.adapt(states, actions * 1e30, next_states + 1e30)
    assert not result.accepted
    assert "not finite" in result.reason
    assert all(np.array_equal(p, m) for p, m in zip(result.params, runtime.meta_params, strict=True))


def test_adaptation_that_raises_the_loss_is_rejected(tmp_path: Path) -> None:
    """An enormous step size overshoots: the runtime keeps the meta-parameters and says why."""
    import dataclasses

    from export.onnx_export import export_trained_dynamics
    from tests.conftest import tiny_model

    model = dataclasses.replace(tiny_model(1), step_sizes=5.0)
    runtime = AdaptiveRuntime.load(export_trained_dynamics(model, tmp_path / "overshoot"))
    result = runtime.adapt(*window(runtime, 6))
    assert not result.accepted
    assert "did not drop" in result.reason or "not finite" in result.reason
    assert all(np.array_equal(p, m) for p, m in zip(result.params, runtime.meta_params, strict=True))
