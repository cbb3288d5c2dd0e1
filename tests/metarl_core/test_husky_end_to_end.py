"""The Husky end to end on its tiny config: meta-train, evaluate (with the terrain change), export
and demo in-process. Real PyBullet, torch and onnxruntime throughout; figures are not asserted
(a tiny model is no evidence), their presence and units are."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from metarl.husky_demo import run_husky_demo
from metarl_core.model_based.evaluate import (
    ADAPTIVE_MPC,
    MPC_OFF,
    NOMINAL,
    EvaluationSettings,
    evaluate_run,
    evaluation_markdown,
    write_evaluation,
)
from metarl_core.model_based.oracle import OracleSettings
from metarl_core.model_based.train import run_training
from sim.scenarios.terrain_change import CHANGE_FIGURES

pytestmark = [pytest.mark.slow, pytest.mark.integration]
TINY = Path(__file__).resolve().parents[2] / "configs" / "husky_tiny.yaml"
SMALL = EvaluationSettings(
    tasks_per_seed=1,
    windows_per_task=4,
    control_tasks_per_seed=1,
    control_episode_s=1.0,
    oracle=OracleSettings(episodes=1, validation_episodes=1, steps=20, validate_every=10),
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return run_training(TINY, tmp_path_factory.mktemp("husky") / "run", "cpu", resume=False)


def test_evaluation_runs_the_terrain_change_for_every_controller(tiny_run: Path) -> None:
    result = evaluate_run(tiny_run, "extrap", 1, SMALL)
    assert result.robot == "husky" and not result.payload_switch
    assert {ADAPTIVE_MPC, MPC_OFF, NOMINAL} <= set(result.terrain_change)
    for figures in result.terrain_change.values():
        assert set(figures) == set(CHANGE_FIGURES)
        assert np.isfinite(figures["crossing_s"][0]) and figures["before_change"][0] > 0.0
    text = evaluation_markdown(result)
    assert "tracking RMSE (m/s)" in text and "Terrain change" in text and "(rad)" not in text
    # One per-task row for each control episode, naming the task the seed drew.
    assert len(result.control_tasks) == SMALL.control_tasks_per_seed
    for task in result.control_tasks:
        assert task.seed == 0 and set(task.rmse) == set(result.control)
        assert all(np.isfinite(v) and v >= 0.0 for v in task.rmse.values())
        assert f"| 0 | {task.task} | " in text and "slope" in task.task
    write_evaluation(result)
    assert (tiny_run / "terrain_change.png").stat().st_size > 0


def test_demo_writes_results_plot_and_gif(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    (out / "run").parent.mkdir(parents=True, exist_ok=True)
    (out / "run").symlink_to(tiny_run, target_is_directory=True)
    args = argparse.Namespace(out=out, config=None, device="cpu", no_ros=True, robot="husky")
    figures = run_husky_demo(args)
    assert len(figures) == 3 and all(np.isfinite(f["crossing_s"]) for f in figures.values())
    assert (out / "results.md").read_text(encoding="utf-8").count("\n| ") == 3  # one row per controller
    assert (out / "tracking.png").stat().st_size > 0 and (out / "demo.gif").stat().st_size > 0
