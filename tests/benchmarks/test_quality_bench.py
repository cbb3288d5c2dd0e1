"""``metarl bench quality``: seeds trained once and reused, every figure and target in its section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks.quality_bench import TARGETS, Target, TrainedSeed, config_markdown, quality_section, train_seed
from benchmarks.report import write_section
from metarl_core.model_based.evaluate import (
    ADAPTED,
    ADAPTIVE_MPC,
    MB,
    MB_DE,
    MPC_OFF,
    NO_ADAPTATION,
    NOMINAL,
    ORACLE,
    ORACLE_MPC,
    ControlTask,
    Evaluation,
    EvaluationSettings,
    change_table,
    control_task_table,
    mean_std,
)
from metarl_core.model_based.oracle import OracleSettings

ROOT = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((ROOT / "configs" / "panda_tiny.yaml").read_text())
SMALL = EvaluationSettings(
    tasks_per_seed=2,
    windows_per_task=4,
    control_tasks_per_seed=1,
    control_episode_s=1.0,
    oracle=OracleSettings(episodes=2, validation_episodes=1, steps=50, validate_every=25),
)


@pytest.mark.slow
def test_section_holds_every_row_of_both_training_seeds_and_reuses_them(tmp_path: Path) -> None:
    config = tmp_path / "panda_tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "iterations": 1, "train_tasks": 3}))
    runs = tmp_path / "runs"
    section = quality_section([config], 2, 1, "extrap", runs, "metarl bench quality (test)", SMALL)
    benchmarks = tmp_path / "BENCHMARKS.md"
    write_section(benchmarks, "quality", section)
    text = benchmarks.read_text(encoding="utf-8")

    for target in TARGETS:
        row = next((line for line in text.splitlines() if line.startswith(f"| {target.label} |")), None)
        assert row is not None, f"no row for target {target.label!r}"
        assert row.rstrip().endswith(("| ✓ |", "| ✗ |")), row
    for name in (ADAPTED, NO_ADAPTATION, MB, MB_DE, ORACLE, ADAPTIVE_MPC, MPC_OFF, ORACLE_MPC, NOMINAL):
        assert f"| {name} | " in text, f"no row for {name!r}"
    assert sum(line.startswith(f"| {ADAPTIVE_MPC} | ") for line in text.splitlines()) == 2, "control and switch rows"
    assert "0 (`" in text and "1 (`" in text, "both training seeds are named"
    assert (runs / "panda_tiny" / "seed_1" / "payload_switch.png").exists()

    record = runs / "panda_tiny" / "seed_0" / "training_time.json"
    before = json.loads(record.read_text())
    assert before["wall_s"] > 0 and not before["resumed"]
    reused = train_seed(config, 0, runs)
    assert reused.wall_s == before["wall_s"], "a finished run is reused, not retrained"
    assert reused.seed == TINY["seed"]
    assert train_seed(config, 1, runs).seed == TINY["seed"] + 1


@pytest.mark.slow
def test_a_run_of_another_config_is_refused_by_field(tmp_path: Path) -> None:
    config = tmp_path / "panda_tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "iterations": 1, "gradient_steps_per_iteration": 2, "train_tasks": 2}))
    train_seed(config, 0, tmp_path)
    config.write_text(yaml.safe_dump({**TINY, "iterations": 1, "gradient_steps_per_iteration": 3, "train_tasks": 2}))
    with pytest.raises(SystemExit, match=r"fields \['gradient_steps_per_iteration'\] differ"):
        train_seed(config, 0, tmp_path)


def test_strict_and_inclusive_targets() -> None:
    inclusive = Target("x", lambda *_: 0.0, 0.5)
    strict = Target("y", lambda *_: 0.0, 1.0, strict=True)
    assert inclusive.met(0.5) and not inclusive.met(0.51)
    assert strict.met(0.99) and not strict.met(1.0)


def test_a_run_that_never_settled_is_counted_not_averaged() -> None:
    assert mean_std([0.1, float("inf"), 0.2], 2) == "∞ (1 of 3 never settled)"
    assert mean_std([0.1, 0.3], 2) == "0.20 ± 0.10"


def test_a_robot_that_never_reached_the_patch_is_counted_in_the_error_columns() -> None:
    nan, inf = float("nan"), float("inf")
    figures = {
        "before_change": [0.01, nan, 0.03],
        "first_second_after": [0.02, nan, 0.04],
        "steady_after": [0.01, nan, 0.01],
        "recovery_s": [0.2, inf, 0.4],
        "crossing_s": [2.5, inf, 2.7],
    }
    row = change_table({"oracle MPC": figures})[-1]
    assert row == (
        "| oracle MPC | 0.0200 ± 0.0100 (1 of 3 never reached the patch) "
        "| 0.0300 ± 0.0100 (1 of 3 never reached the patch) | 0.0100 ± 0.0000 (1 of 3 never reached the patch) "
        "| ∞ (1 of 3 never settled) | 2.60 ± 0.10 (1 of 3 never reached the patch) |"
    )
    nowhere = {name: [nan] for name in figures} | {"recovery_s": [inf], "crossing_s": [inf]}
    assert "– (1 of 1 never reached the patch)" in change_table({"x": nowhere})[-1]


def synthetic_evaluation(run_dir: Path, adapted: float, mb: float) -> Evaluation:
    """An evaluation with known figures: MB+DE and the no-adaptation row at 2× MB, control
    rows from which every control target's ratio is known."""
    result = Evaluation(run_dir, "extrap", 1, "gradient", 16, 16, EvaluationSettings(), fine_tuning_step_size=0.03)
    result.prediction = {ADAPTED: [adapted], NO_ADAPTATION: [2 * mb], MB: [mb], MB_DE: [2 * mb], ORACLE: [0.01]}
    result.control = {ADAPTIVE_MPC: [0.01], MPC_OFF: [0.04], ORACLE_MPC: [0.02], NOMINAL: [0.1]}
    return result


def test_targets_are_the_ratios_of_the_right_rows_and_a_resumed_run_has_no_training_time(tmp_path: Path) -> None:
    results = [synthetic_evaluation(tmp_path / "a", 0.02, 0.05), synthetic_evaluation(tmp_path / "b", 0.03, 0.05)]
    trained = [TrainedSeed(tmp_path / "a", 0, 60.0, False, 0.5), TrainedSeed(tmp_path / "b", 1, 30.0, True, 0.5)]
    text = config_markdown(Path("configs/panda.yaml"), trained, results)
    rows = {line.split(" | ")[0][2:]: line for line in text.splitlines() if line.startswith("| ")}
    assert "| 0.50 ± 0.10× | ≤ 0.5× | 1/2 | ✓ |" in rows[f"prediction: {ADAPTED} ÷ {MB}"]
    assert "| 0.25 ± 0.05× | ≤ 0.8× | 2/2 | ✓ |" in rows[f"prediction: {ADAPTED} ÷ {MB_DE}"]
    assert "| 0.25 ± 0.00× | ≤ 0.6× | 2/2 | ✓ |" in rows[f"control: {ADAPTIVE_MPC} ÷ {MPC_OFF}"]
    assert "| 0.50 ± 0.00× | ≤ 1.3× | 2/2 | ✓ |" in rows[f"control: {ADAPTIVE_MPC} ÷ {ORACLE_MPC}"]
    assert "| 0.10 ± 0.00× | < 1× | 2/2 | ✓ |" in rows[f"control: {ADAPTIVE_MPC} ÷ {NOMINAL}"]
    assert "| 1.00 ± 0.00 min | ≤ 15 min | 1/1 | ✓ |" in rows["training wall time per seed"], "resumed: unknown"
    assert "step size 0.03 (the best of" in text


def test_the_per_task_table_averages_over_training_seeds_and_names_the_adaptive_ratio() -> None:
    """Each task's cells are the mean ± std over training seeds of that task's RMSE, and the last
    column is the adaptive MPC over the best other controller on that task: here the PI on the
    first task (0.2 / 0.1) and adaptation off on the second (0.3 / 0.6)."""
    runs = [
        [
            ControlTask(0, "flat, slope +0.00 rad", {ADAPTIVE_MPC: 0.1, MPC_OFF: 0.4, NOMINAL: 0.1}),
            ControlTask(1, "bumps, slope +0.20 rad", {ADAPTIVE_MPC: 0.2, MPC_OFF: 0.5, NOMINAL: 0.9}),
        ],
        [
            ControlTask(0, "flat, slope +0.00 rad", {ADAPTIVE_MPC: 0.3, MPC_OFF: 0.4, NOMINAL: 0.1}),
            ControlTask(1, "bumps, slope +0.20 rad", {ADAPTIVE_MPC: 0.4, MPC_OFF: 0.7, NOMINAL: 0.9}),
        ],
    ]
    lines = control_task_table(runs)
    assert lines[2] == f"| seed | task | {ADAPTIVE_MPC} | {MPC_OFF} | {NOMINAL} | adaptive ÷ best other |"
    assert lines[4] == "| 0 | flat, slope +0.00 rad | 0.200 ± 0.100 | 0.400 ± 0.000 | 0.100 ± 0.000 | 2.00 |"
    assert lines[5] == "| 1 | bumps, slope +0.20 rad | 0.300 ± 0.100 | 0.600 ± 0.100 | 0.900 ± 0.000 | 0.50 |"
    assert control_task_table([runs[0][:1]])[-1] == "| 0 | flat, slope +0.00 rad | 0.100 | 0.400 | 0.100 | 1.00 |"
    with pytest.raises(ValueError, match="different control tasks"):
        control_task_table([runs[0], runs[1][::-1]])
    assert control_task_table([[]]) == []
    diverged = ControlTask(0, "flat", {ADAPTIVE_MPC: 0.1, NOMINAL: float("nan"), MPC_OFF: 0.2})
    assert control_task_table([[diverged]])[-1].endswith("| 0.50 |"), "a NaN row is not the best one"
    perfect = ControlTask(0, "flat", {ADAPTIVE_MPC: 0.1, MPC_OFF: 0.0, NOMINAL: float("nan")})
    assert control_task_table([[perfect]])[-1].endswith("| – |"), "no ratio to a zero error, and no crash"
