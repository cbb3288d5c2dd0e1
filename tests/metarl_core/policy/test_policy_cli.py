"""``metarl train`` and ``metarl eval`` for policy runs: tiny configs end to end through the CLI,
resume to the same parameters, seeds that decide everything, and config errors that name the field."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml

from metarl.cli import main
from metarl_core.policy.policy_checkpoint import load_policy_checkpoint
from metarl_core.policy.train import CONFIG_TYPES, TRAINERS, load_policy_config
from metarl_core.run.algorithms import POLICY_ALGOS

ROOT = Path(__file__).resolve().parents[3]
TINY = {
    "maml-ppo": ROOT / "configs" / "point_nav_maml_ppo_tiny.yaml",
    "rl2": ROOT / "configs" / "point_nav_rl2_tiny.yaml",
}


def write_config(tmp_path: Path, tiny: str, name: str = "config.yaml", **changes: object) -> Path:
    """The tiny config of algorithm ``tiny`` with ``changes``, written to ``tmp_path / name``."""
    data = yaml.safe_load(TINY[tiny].read_text(encoding="utf-8"))
    path = tmp_path / name
    path.write_text(yaml.safe_dump({**data, **changes}), encoding="utf-8")
    return path


def params_of(run: Path) -> dict[str, torch.Tensor]:
    return load_policy_checkpoint(run)[0].params


@pytest.mark.parametrize("algo", ["maml-ppo", "rl2"])
def test_tiny_run_trains_resumes_to_the_same_parameters_and_evaluates(tmp_path: Path, algo: str) -> None:
    full = write_config(tmp_path, algo, "full.yaml", iterations=2)
    main(["train", "--config", str(full), "--run-dir", str(tmp_path / "full")])

    # The same run stopped after one iteration, then resumed (with its RNG and optimiser state).
    main(
        [
            "train",
            "--config",
            str(write_config(tmp_path, algo, "one.yaml", iterations=1)),
            "--run-dir",
            str(tmp_path / "split"),
        ]
    )
    assert load_policy_checkpoint(tmp_path / "split")[1]["iteration"] == 0
    main(["train", "--config", str(full), "--run-dir", str(tmp_path / "split"), "--resume"])
    reference, resumed = params_of(tmp_path / "full"), params_of(tmp_path / "split")
    for key, value in reference.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=0)

    rows = (tmp_path / "split" / "metrics.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("iteration,") and [r.split(",")[0] for r in rows[1:]] == ["0", "1"]
    assert (tmp_path / "full" / "config.yaml").exists() and (tmp_path / "full" / "tensorboard").is_dir()

    main(["eval", "--run", str(tmp_path / "full"), "--split", "interp", "--seeds", "2"])
    table = (tmp_path / "full" / "eval_interp.md").read_text(encoding="utf-8")
    assert "± " in table and (tmp_path / "full" / "eval_interp.png").stat().st_size > 0


def test_every_policy_algo_of_the_table_has_its_config_and_trainer() -> None:
    assert sorted(CONFIG_TYPES) == sorted(TRAINERS) == sorted(POLICY_ALGOS)


def test_existing_run_is_not_overwritten_without_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "rl2", iterations=1)
    main(["train", "--config", str(config), "--run-dir", str(tmp_path / "run")])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["train", "--config", str(config), "--run-dir", str(tmp_path / "run")])
    assert "pass --resume" in capsys.readouterr().err


def test_the_seed_decides_the_run(tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        config = write_config(tmp_path, "maml-ppo", f"{name}.yaml", iterations=1, seed=seed)
        main(["train", "--config", str(config), "--run-dir", str(tmp_path / name)])
        runs[name] = params_of(tmp_path / name)
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert not all(torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


@pytest.mark.parametrize(
    ("algo", "changes", "message"),
    [
        ("maml-ppo", {"inner_lr": "fast"}, "field 'inner_lr'='fast' must be <class 'float'>"),
        ("maml-ppo", {"inner_steps": -1}, "field 'inner_steps'=-1 must be >= 0"),
        ("maml-ppo", {"ppo": {"clip_coef": -0.1}}, r"field 'ppo.clip_coef'=-0.1 is out of range"),
        ("rl2", {"ppo": {"clipcoef": 0.1}}, "unknown field 'ppo.clipcoef'"),
        ("rl2", {"episodes_per_trial": 0}, "field 'episodes_per_trial'=0 must be >= 1"),
        ("rl2", {"eval_split": "test"}, "field 'eval_split'='test'"),
        ("rl2", {"algo": "dqn"}, "field 'algo'='dqn'"),
        ("rl2", {"reward_scale": float("inf")}, "field 'reward_scale'=inf must be a finite number"),
        ("maml-ppo", {"episode_duration_s": float("nan")}, "field 'episode_duration_s'=nan must be a finite number"),
        ("maml-ppo", {"inner_steps": 0, "learn_inner_lr": True}, "'learn_inner_lr'=True needs inner_steps >= 1"),
    ],
)
def test_config_error_names_the_field(tmp_path: Path, algo: str, changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_policy_config(write_config(tmp_path, algo, **changes))


def test_locomotion_config_trains_on_the_pybullet_cheetah(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "configs" / "half_cheetah_maml_ppo.yaml").read_text(encoding="utf-8"))
    data.update(iterations=1, meta_batch_size=2, episodes_per_task=2, episode_duration_s=1.0, hidden_size=8)
    config = tmp_path / "cheetah.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    main(["train", "--config", str(config), "--run-dir", str(tmp_path / "run")])
    policy, state = load_policy_checkpoint(tmp_path / "run")
    assert policy.robot is not None and policy.robot.name == "half_cheetah"
    assert policy.action_high == (120.0, 90.0, 60.0, 120.0, 60.0, 30.0)
    # Observation statistics come from the initial rollouts (normalize_observations: true).
    assert not torch.equal(policy.stats["obs_std"], torch.ones_like(policy.stats["obs_std"]))
    assert state["env_steps"] == 3 * 2 * 2 * 20  # statistics rollouts, support and query: 20-step episodes


def test_maml_held_out_score_is_logged_on_schedule_and_leaves_training_unchanged(tmp_path: Path) -> None:
    """The sample-efficiency curve: a held-out score (after adaptation) every ``eval_interval``
    iterations and after the last, taken with its own noise so training is the same as without."""
    for name, interval in (("scored", 2), ("unscored", 0)):
        config = write_config(tmp_path, "maml-ppo", f"{name}.yaml", iterations=3, eval_interval=interval, eval_tasks=2)
        main(["train", "--config", str(config), "--run-dir", str(tmp_path / name)])
    with open(tmp_path / "scored" / "metrics.csv", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    scores = [float(row["charts/heldout_episode_return"]) for row in rows]
    assert math.isnan(scores[0]) and all(math.isfinite(s) and s < 0 for s in scores[1:]), scores
    assert all(math.isfinite(float(rows[i]["charts/heldout_pre_update_return"])) for i in (1, 2))
    for key, value in params_of(tmp_path / "unscored").items():
        torch.testing.assert_close(params_of(tmp_path / "scored")[key], value, rtol=0, atol=0)


def test_resume_under_another_config_is_refused_by_field_and_config_yaml_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    main(["train", "--config", str(write_config(tmp_path, "rl2", "a.yaml", iterations=1)), "--run-dir", str(run)])
    saved = (run / "config.yaml").read_text(encoding="utf-8")
    changed = write_config(tmp_path, "rl2", "b.yaml", iterations=2, hidden_size=9)
    with pytest.raises(SystemExit):
        main(["train", "--config", str(changed), "--run-dir", str(run), "--resume"])
    assert "fields ['hidden_size'] differ" in capsys.readouterr().err
    assert (run / "config.yaml").read_text(encoding="utf-8") == saved, "a refused resume must not rewrite the run"
    main(
        [
            "train",
            "--config",
            str(write_config(tmp_path, "rl2", "c.yaml", iterations=2)),
            "--run-dir",
            str(run),
            "--resume",
        ]
    )
    assert load_policy_checkpoint(run)[1]["iteration"] == 1, "more iterations is a resumable change"
