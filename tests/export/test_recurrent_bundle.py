"""Recurrent (RL²) bundles: ONNX agrees with torch over carried rollouts, the runtime carries and
resets the hidden state, and every way such a bundle can be wrong has its own error."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from export.recurrent_export import export_trained_policy
from metarl_core.model_based.checkpoint import TrainedDynamics
from metarl_core.policy.policy_checkpoint import TrainedPolicy
from metarl_core.policy.recurrent_policy import recurrent_step
from metarl_runtime.bundle_manifest import sha256_of
from metarl_runtime.model_runtime import (
    AdaptiveRuntime,
    BundleCorruptError,
    BundleIntegrityError,
    BundleSchemaError,
    RobotMismatchError,
)
from metarl_runtime.recurrent_runtime import PolicyInputError, RecurrentRuntime
from sim.panda_payload import PANDA
from tests.conftest import HIDDEN_SIZE, tiny_policy
from tests.metarl_runtime.test_runtime_bad_input import edit_manifest, rehash

LEVELS = [ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL]
OBS_DIM, ACTION_DIM = 28, 7


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))


@pytest.fixture()
def torch_one_thread():
    """Torch's batched matmuls on two busy cores spin their threads: ~100 ms a step instead of 50 µs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("torch_one_thread")
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("level", LEVELS, ids=["disable_all", "enable_all"])
def test_rollout_with_carried_hidden_state_matches_torch(
    recurrent_bundle: tuple[TrainedPolicy, Path], level: ort.GraphOptimizationLevel, batch: int
) -> None:
    """60 steps, each side carrying its own hidden state and feeding back its own clipped
    action, as a robot does: errors that compound through the recurrence would show here."""
    policy, path = recurrent_bundle
    runtime = RecurrentRuntime.load(path, optimization_level=level)
    runtime.reset(batch)
    rng = np.random.default_rng(batch)
    mean, std = policy.stats["obs_mean"].numpy(), policy.stats["obs_std"].numpy()
    hidden = torch.zeros(batch, HIDDEN_SIZE)
    ort_action = torch_action = np.zeros((batch, ACTION_DIM), np.float32)
    worst = 0.0
    for t in range(60):
        obs = (mean + std * rng.normal(size=(batch, OBS_DIM))).astype(np.float32)
        reward = -np.abs(rng.normal(size=(batch, 1))).astype(np.float32)
        done = np.full((batch, 1), float(t == 30), np.float32)  # an episode boundary mid-trial
        got = runtime.step(obs, np.clip(ort_action, -1, 1), reward, done)
        with torch.no_grad():
            want_action, want_value, hidden = recurrent_step(
                policy.params,
                policy.stats,
                *(torch.from_numpy(x) for x in (obs, np.clip(torch_action, -1, 1), reward, done)),
                hidden,
            )
        for ort_out, torch_out in ((got.action_mean, want_action), (got.value, want_value), (runtime.hidden, hidden)):
            worst = max(worst, relative_error(ort_out, torch_out.numpy()))
        ort_action, torch_action = got.action_mean, want_action.numpy()
    print(f"worst relative error over the rollout: {worst:.2e}")
    assert worst <= 1e-5
    assert np.abs(ort_action).max() > 0.1, "actions this small would make the parity check vacuous"


def test_hidden_state_is_carried_across_steps_and_zeroed_by_reset(
    recurrent_bundle: tuple[TrainedPolicy, Path],
) -> None:
    runtime = RecurrentRuntime.load(recurrent_bundle[1])
    inputs = (np.full((1, OBS_DIM), 0.3), np.zeros((1, ACTION_DIM)), np.full((1, 1), -0.2), np.zeros((1, 1)))
    first = runtime.step(*inputs)
    assert np.any(runtime.hidden != 0.0)
    second = runtime.step(*inputs)
    assert relative_error(second.action_mean, first.action_mean) > 1e-3, "same inputs, other hidden state"
    runtime.reset()
    assert np.array_equal(runtime.hidden, np.zeros((1, HIDDEN_SIZE), np.float32))
    again = runtime.step(*inputs)
    np.testing.assert_array_equal(again.action_mean, first.action_mean)


def test_manifest_describes_robot_policy_and_reward(recurrent_bundle: tuple[TrainedPolicy, Path]) -> None:
    policy, path = recurrent_bundle
    data = json.loads((path / "bundle.json").read_text())
    assert data["mode"] == "recurrent" and data["robot"] == "panda"
    assert data["joint_names"] == list(PANDA.joint_names)
    assert data["state_fields"] == list(PANDA.state_fields)
    assert data["reference_fields"] == list(PANDA.reference_fields)
    assert data["action_low"] == list(PANDA.action_low) and data["control_rate_hz"] == 100.0
    assert data["hidden_size"] == HIDDEN_SIZE and data["episodes_per_trial"] == 2
    np.testing.assert_allclose(data["obs_normalizer"]["obs_std"], policy.stats["obs_std"].numpy()[0], rtol=1e-7)
    assert data["reward"] == {
        "name": "joint_position_rms_effort_penalty",
        "effort_penalty": 1e-3,
        "effort_limits": [87.0] * 4 + [12.0] * 3,
    }
    assert data["files"] == {"policy.onnx": sha256_of(path / "policy.onnx")}
    assert data["provenance"]["parity_max_relative_error"] <= 1e-5
    assert data["provenance"]["config"]["algo"] == "rl2"


def test_truncated_policy_graph_is_reported_as_corrupt(recurrent_bundle_copy: Path) -> None:
    graph = recurrent_bundle_copy / "policy.onnx"
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    rehash(recurrent_bundle_copy, "policy.onnx")
    with pytest.raises(BundleCorruptError, match=r"policy\.onnx: not a loadable ONNX model"):
        RecurrentRuntime.load(recurrent_bundle_copy)


def test_changed_policy_graph_fails_its_sha256(recurrent_bundle_copy: Path) -> None:
    graph = recurrent_bundle_copy / "policy.onnx"
    graph.write_bytes(graph.read_bytes() + b"\0")
    with pytest.raises(BundleIntegrityError, match=r"policy\.onnx: sha256 .* does not match"):
        RecurrentRuntime.load(recurrent_bundle_copy)


def test_policy_graph_without_a_recorded_hash_is_refused(recurrent_bundle_copy: Path) -> None:
    edit_manifest(recurrent_bundle_copy, files={})
    with pytest.raises(BundleIntegrityError, match=r"field 'files' does not list \['policy\.onnx'\]"):
        RecurrentRuntime.load(recurrent_bundle_copy)


def test_bundle_for_another_robot_or_missing_joints_is_refused(recurrent_bundle_copy: Path) -> None:
    with pytest.raises(RobotMismatchError, match="bundle is for robot 'panda', this is 'husky'"):
        RecurrentRuntime.load(recurrent_bundle_copy, expected_robot="husky")
    with pytest.raises(RobotMismatchError, match=r"joints \['panda_joint7'\] are not on this robot"):
        RecurrentRuntime.load(recurrent_bundle_copy, available_joints=list(PANDA.joint_names[:6]))


@pytest.mark.parametrize("field", ["hidden_size", "reward", "obs_normalizer", "episodes_per_trial", "joint_names"])
def test_missing_recurrent_manifest_field_is_named(recurrent_bundle_copy: Path, field: str) -> None:
    edit_manifest(recurrent_bundle_copy, **{field: None})
    with pytest.raises(BundleSchemaError, match=f"missing field '{field}'"):
        RecurrentRuntime.load(recurrent_bundle_copy)


def test_hidden_size_that_disagrees_with_the_graph_is_refused(recurrent_bundle_copy: Path) -> None:
    edit_manifest(recurrent_bundle_copy, hidden_size=HIDDEN_SIZE + 1)
    with pytest.raises(BundleCorruptError, match=rf"'hidden' has shape \['batch', {HIDDEN_SIZE}\].*{HIDDEN_SIZE + 1}"):
        RecurrentRuntime.load(recurrent_bundle_copy)


def test_obs_statistics_of_the_wrong_width_are_refused(recurrent_bundle_copy: Path) -> None:
    edit_manifest(recurrent_bundle_copy, obs_normalizer={"obs_mean": [0.0] * 14, "obs_std": [1.0] * 14})
    with pytest.raises(BundleSchemaError, match=r"obs_normalizer\.obs_mean has shape \(14,\), expected \(28,\)"):
        RecurrentRuntime.load(recurrent_bundle_copy)


def test_unknown_reward_is_refused(recurrent_bundle_copy: Path) -> None:
    edit_manifest(recurrent_bundle_copy, reward={"name": "distance_travelled"})
    with pytest.raises(BundleSchemaError, match=r"field 'reward': reward\.name='distance_travelled' is not one of"):
        RecurrentRuntime.load(recurrent_bundle_copy)


def test_each_runtime_refuses_the_other_modes_bundle(
    recurrent_bundle: tuple[TrainedPolicy, Path], bundles: dict[int, tuple[TrainedDynamics, Path]]
) -> None:
    with pytest.raises(BundleSchemaError, match=r"mode 'recurrent' is run by metarl_runtime\.recurrent_runtime"):
        AdaptiveRuntime.load(recurrent_bundle[1])
    with pytest.raises(BundleSchemaError, match="mode 'gradient' is not 'recurrent'"):
        RecurrentRuntime.load(bundles[1][1])


def test_policy_inputs_of_the_wrong_shape_or_not_finite_are_refused(
    recurrent_bundle: tuple[TrainedPolicy, Path],
) -> None:
    runtime = RecurrentRuntime.load(recurrent_bundle[1])
    good = [np.zeros((1, OBS_DIM)), np.zeros((1, ACTION_DIM)), np.zeros((1, 1)), np.zeros((1, 1))]
    with pytest.raises(PolicyInputError, match=r"policy input obs has shape \(1, 27\), expected \(1, 28\)"):
        runtime.step(np.zeros((1, 27)), *good[1:])
    with pytest.raises(PolicyInputError, match=r"prev_action has shape \(2, 7\), expected \(1, 7\)"):
        runtime.step(good[0], np.zeros((2, ACTION_DIM)), *good[2:])
    with pytest.raises(PolicyInputError, match="policy input prev_reward has NaN or inf"):
        runtime.step(*good[:2], np.full((1, 1), np.nan), good[3])


def test_exporter_refuses_policies_a_robot_cannot_run(tmp_path: Path) -> None:
    policy = tiny_policy()
    with pytest.raises(ValueError, match="only RL² policies export"):
        export_trained_policy(dataclasses.replace(policy, algo="maml-ppo"), tmp_path / "a")
    with pytest.raises(ValueError, match="has no robot description"):
        export_trained_policy(dataclasses.replace(policy, robot=None), tmp_path / "b")
    with pytest.raises(ValueError, match="has no reward spec"):
        export_trained_policy(dataclasses.replace(policy, env_id="metarl/PointNavigation-v0"), tmp_path / "c")
    assert not any(tmp_path.iterdir()), "a refused export must leave nothing behind"
