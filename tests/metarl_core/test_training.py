"""Training runs from a config, names bad fields, and resumes after a kill to the same checkpoint."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from metarl_core.model_based.checkpoint import load_checkpoint
from metarl_core.model_based.config import GrBALConfig
from metarl_core.model_based.train import run_training

ROOT = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((ROOT / "configs" / "panda_tiny.yaml").read_text())


def write_config(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"inner_step": 2}, "unknown field 'inner_step'"),
        ({"inner_steps": "two"}, "field 'inner_steps'='two' must be <class 'int'>"),
        ({"inner_steps": 0}, "field 'inner_steps'=0 must be >= 1"),
        ({"hidden_sizes": [32, "x"]}, "field 'hidden_sizes'"),
    ],
)
def test_config_error_names_the_field(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GrBALConfig.from_yaml(write_config(tmp_path, **changes))


def test_refuses_to_overwrite_a_run_without_resume(tmp_path: Path) -> None:
    config = write_config(tmp_path, iterations=1, gradient_steps_per_iteration=2, train_tasks=2)
    run_training(config, tmp_path / "run", "cpu", resume=False)
    with pytest.raises(FileExistsError, match="pass --resume"):
        run_training(config, tmp_path / "run", "cpu", resume=False)


@pytest.mark.slow
def test_resume_after_a_kill_reaches_the_same_checkpoint(tmp_path: Path) -> None:
    config = write_config(tmp_path, iterations=3, gradient_steps_per_iteration=40, train_tasks=3)
    reference, reference_state = load_checkpoint(run_training(config, tmp_path / "uninterrupted", "cpu", resume=False))

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "metarl.cli", "train", "--config", str(config), "--run-dir", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    _, state = load_checkpoint(killed)
    assert state["iteration"] < 2, "the kill must land before the last checkpoint for this test to mean anything"

    resumed, resumed_state = load_checkpoint(run_training(config, killed, "cpu", resume=True))
    # Wherever the SIGKILL landed: each iteration's metrics row once, in order, and no temp file.
    with open(killed / "metrics.csv", newline="", encoding="utf-8") as stream:
        assert [int(row["iteration"]) for row in csv.DictReader(stream)] == [0, 1, 2]
    assert not list(killed.glob(".*.tmp"))
    # The meta-parameters, their learned step sizes (Meta-SGD is on) and the MB baseline alike.
    assert isinstance(reference.step_sizes, dict)
    for mine, theirs in (
        (resumed.params, reference.params),
        (resumed.step_sizes, reference.step_sizes),
        (resumed_state["mb_params"], reference_state["mb_params"]),
    ):
        for key, value in theirs.items():
            torch.testing.assert_close(mine[key], value, rtol=0, atol=0)


def test_rls_adaptation_trains_and_exports(tmp_path: Path) -> None:
    """``adaptation: rls`` meta-trains through the closed form and yields an rls bundle."""
    from export.onnx_export import export_bundle
    from metarl_runtime.model_runtime import AdaptiveRuntime

    config = write_config(tmp_path, iterations=1, gradient_steps_per_iteration=5, train_tasks=2, adaptation="rls")
    run = run_training(config, tmp_path / "run", "cpu", resume=False)
    model, _ = load_checkpoint(run)
    assert model.adaptation.rule == "rls"
    runtime = AdaptiveRuntime.load(export_bundle(run, tmp_path / "bundle"), expected_robot="panda")
    assert runtime.manifest.mode == "rls"


def test_adapted_planner_episodes_join_the_replay_between_iterations(tmp_path: Path) -> None:
    """GrBAL's iterative collection: after each iteration but the last, the adapted MPC's own
    episodes are added to the training tasks' buffers (and logged with their tracking error)."""
    config = write_config(
        tmp_path, iterations=3, gradient_steps_per_iteration=2, train_tasks=2, planner_episodes_per_iteration=1
    )
    run = run_training(config, tmp_path / "run", "cpu", resume=False)
    episode_steps = round(TINY["episode_duration_s"] * 100)
    with open(run / "metrics.csv", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    transitions = [int(row["charts/transitions"]) for row in rows]
    exploration = 2 * TINY["exploration_episodes_per_task"] * episode_steps
    after_one, after_two = exploration + episode_steps, exploration + 2 * episode_steps
    assert transitions == [after_one, after_two, after_two]
    planner_rmse = [float(row["charts/planner_tracking_rmse"]) for row in rows]
    assert all(rmse > 0 for rmse in planner_rmse[:2]) and math.isnan(planner_rmse[2])
    _, state = load_checkpoint(run)
    assert sum(buffer.num_transitions for buffer in state["replay_buffers"]) == transitions[-1]


def test_resume_under_another_config_is_refused_by_field(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_training(write_config(tmp_path, iterations=1, gradient_steps_per_iteration=2, train_tasks=2), run, "cpu", False)
    changed = write_config(tmp_path, iterations=2, gradient_steps_per_iteration=2, train_tasks=2, inner_lr=0.02)
    with pytest.raises(ValueError, match=r"fields \['inner_lr'\] differ"):
        run_training(changed, run, "cpu", resume=True)
    extended = write_config(tmp_path, iterations=2, gradient_steps_per_iteration=2, train_tasks=2)
    assert load_checkpoint(run_training(extended, run, "cpu", resume=True))[1]["iteration"] == 1
