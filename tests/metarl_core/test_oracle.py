"""The oracle baseline: fitted on its own task's data, it predicts that task better than MB."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import pytest
import torch
import yaml

import sim  # noqa: F401  (registers the environment ids)
from metarl_core.model_based.checkpoint import load_checkpoint
from metarl_core.model_based.dynamics_model import window_loss
from metarl_core.model_based.exploration import exploration_controller
from metarl_core.model_based.oracle import OracleSettings, train_task_oracle
from metarl_core.model_based.replay_buffer import TaskReplayBuffer
from metarl_core.model_based.train import collect_episodes, run_training
from sim.tasks import PandaTask

ROOT = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((ROOT / "configs" / "panda_tiny.yaml").read_text())
SMALL_ORACLE = OracleSettings(episodes=4, validation_episodes=1, steps=400, validate_every=50)


@pytest.mark.slow
def test_oracle_beats_mb_on_fresh_data_of_its_own_task(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**TINY, "iterations": 1, "gradient_steps_per_iteration": 40, "train_tasks": 3}))
    model, state = load_checkpoint(run_training(config, tmp_path / "run", "cpu", resume=False))
    torch.manual_seed(0)
    stats = model.normalizer.torch()
    # Beyond the training range (heavy payload, stiff joints): MB has never seen such a task.
    task = PandaTask(payload_mass_kg=4.5, joint_damping_scale=3.0, joint_friction_scale=3.0)
    env = gymnasium.make(TINY["env_id"], episode_duration_s=TINY["episode_duration_s"])
    oracle = train_task_oracle(env, task, "panda", state["mb_params"], stats, 0.1, SMALL_ORACLE, seed=777)
    fresh = TaskReplayBuffer(model.robot.state_dim, model.robot.action_dim)
    collect_episodes(env, task, exploration_controller("panda", 0.1, 5), 2, 4242, fresh)
    env.close()
    data = [torch.from_numpy(x) for x in fresh.all_transitions()]
    with torch.no_grad():
        oracle_loss = float(window_loss(oracle, *data, stats))
        mb_loss = float(window_loss(state["mb_params"], *data, stats))
    assert oracle_loss < 0.5 * mb_loss, f"oracle {oracle_loss:.4f} vs MB {mb_loss:.4f}"


def test_oracle_settings_name_the_bad_field() -> None:
    with pytest.raises(ValueError, match=r"OracleSettings.episodes=0 must be >= 1"):
        OracleSettings(episodes=0)
    with pytest.raises(ValueError, match=r"OracleSettings.learning_rate=0.0 must be > 0"):
        OracleSettings(learning_rate=0.0)
