"""Scoring a recorded bag offline: alignment, storages, segmentation and every refusal."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from export.mb_bundle import NoMBModelError, export_mb_bundle
from metarl.cli import main
from metarl_core.log_replay.bag_evaluation import evaluate_bag
from metarl_core.log_replay.bag_reading import (
    BagCorruptError,
    BagJointsError,
    BagTopicsError,
    NotABagError,
    read_log,
)
from metarl_core.log_replay.log_scoring import ScoredModel, score_log
from metarl_core.log_replay.log_transitions import LogTooShortError, build_segments
from metarl_core.model_based.checkpoint import save_checkpoint
from metarl_runtime.model_runtime import AdaptiveRuntime
from sim.husky_terrain import HUSKY

from .log_bags import closed_loop_log, husky_closed_loop_log, panda_bundle, panda_model, write_bag

TICKS = 120
K = 8


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return panda_bundle(tmp_path_factory.mktemp("bundle") / "bundle")


@pytest.fixture(scope="module")
def log(bundle: Path):
    return closed_loop_log(bundle, TICKS)


def _score(bundle: Path, bag: Path):
    runtime = AdaptiveRuntime.load(bundle)
    recorded = read_log(bag, runtime.manifest)
    segments, breaks = build_segments(recorded, runtime.manifest.control_rate_hz, runtime.manifest.window_size + K)
    models = [ScoredModel("adapted", runtime, True), ScoredModel("no adaptation", runtime, False)]
    return score_log(models, segments, K), breaks


def test_the_node_s_own_log_is_predicted_and_commanded_exactly(bundle: Path, log, tmp_path: Path) -> None:
    """The log's robot moves by the unadapted model and the node's controller sent its commands:
    a one-tick misalignment of states and commands would show in both figures."""
    score, breaks = _score(bundle, write_bag(tmp_path / "bag", log.messages))
    assert breaks == []
    assert len(score.segments) == 1 and score.segments[0].transitions == TICKS - 1
    assert score.mean("no adaptation") < 1e-9
    assert score.mean("adapted") > 0.0
    np.testing.assert_allclose(score.command_rms_per_joint(), 0.0, atol=1e-6)
    assert score.segments[0].adaptations == TICKS - 3  # ticks 2..118: from the second transition on


def test_mcap_sqlite3_and_a_bare_mcap_file_score_the_same(bundle: Path, log, tmp_path: Path) -> None:
    mcap = write_bag(tmp_path / "mcap", log.messages, "mcap")
    sqlite = write_bag(tmp_path / "sqlite", log.messages, "sqlite3")
    bare = next(mcap.glob("*.mcap"))
    scores = [_score(bundle, path)[0] for path in (mcap, sqlite, bare)]
    for score in scores[1:]:
        assert score.mean("adapted") == scores[0].mean("adapted")
        np.testing.assert_array_equal(score.segments[0].errors["adapted"], scores[0].segments[0].errors["adapted"])


def test_a_gap_splits_the_log_and_is_reported(bundle: Path, log, tmp_path: Path) -> None:
    lost = {f"{t}" for t in range(60, 63)}
    kept = [m for m in log.messages if not (m.topic == "/joint_states" and str(m.log_time_ns // 10_000_000) in lost)]
    score, breaks = _score(bundle, write_bag(tmp_path / "bag", kept))
    assert [(b.kind, round(b.time_s, 3), round(b.step_s, 3)) for b in breaks] == [("gap", 0.59, 0.04)]
    assert [s.transitions for s in score.segments] == [59, 56]


def test_a_stretch_at_half_the_rate_is_one_rate_change(bundle: Path, log, tmp_path: Path) -> None:
    slow = {t for t in range(61, 100, 2)}
    kept = [m for m in log.messages if not (m.topic == "/joint_states" and m.log_time_ns // 10_000_000 in slow)]
    _, breaks = _score(bundle, write_bag(tmp_path / "bag", kept))
    assert [(b.kind, round(b.time_s, 2), round(b.until_s, 2)) for b in breaks] == [("rate change", 0.6, 1.0)]


def test_a_log_slower_than_the_control_rate_is_too_short_naming_its_rate(bundle: Path, log, tmp_path: Path) -> None:
    kept = [m for m in log.messages if not (m.topic == "/joint_states" and (m.log_time_ns // 10_000_000) % 2)]
    with pytest.raises(LogTooShortError, match=r"come at 50\.0 Hz"):
        _score(bundle, write_bag(tmp_path / "bag", kept))


def test_a_bag_without_the_command_topic_is_refused_naming_it(bundle: Path, log, tmp_path: Path) -> None:
    kept = [m for m in log.messages if m.topic != "/effort_controller/commands"]
    with pytest.raises(BagTopicsError, match=r"/effort_controller/commands"):
        _score(bundle, write_bag(tmp_path / "bag", kept))


def test_joints_missing_from_the_bag_are_refused_naming_them(bundle: Path, tmp_path: Path) -> None:
    names = [f"panda_joint{i}" for i in range(1, 7)] + ["gripper"]
    log = closed_loop_log(bundle, 20, joint_names=names)
    with pytest.raises(BagJointsError, match=r"/joint_states.*panda_joint7"):
        _score(bundle, write_bag(tmp_path / "bag", log.messages))


def test_a_truncated_bag_is_refused_as_corrupt(bundle: Path, log, tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", log.messages)
    data = next(bag.glob("*.mcap"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(BagCorruptError, match=r"bag"):
        _score(bundle, bag)


@pytest.mark.parametrize("kind", ["missing", "empty directory", "text file"])
def test_a_path_that_is_no_bag_is_refused(bundle: Path, tmp_path: Path, kind: str) -> None:
    path = {"missing": tmp_path / "nothing", "empty directory": tmp_path, "text file": tmp_path / "notes.txt"}[kind]
    if kind == "text file":
        path.write_text("not a bag")
    with pytest.raises(NotABagError, match=str(path.name)):
        _score(bundle, path)


def test_cli_refuses_a_bad_bag_in_one_line(bundle: Path, log, tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", [m for m in log.messages if m.topic != "/reference"])
    with pytest.raises(SystemExit) as refused:
        main(["eval", "--bag", str(bag), "--bundle", str(bundle)])
    message = str(refused.value)
    assert message.startswith("metarl eval --bag: ") and "/reference" in message and "\n" not in message


def test_eval_bag_writes_a_table_and_plot_with_a_comparison_bundle(bundle: Path, log, tmp_path: Path) -> None:
    other = panda_bundle(tmp_path / "other", seed=1)
    bag = write_bag(tmp_path / "bag", log.messages)
    result = evaluate_bag(bag, bundle, tmp_path / "out", compare_bundle=other, future_window=K)
    table = result.table_path.read_text()
    assert "compare bundle, adapted" in table and "panda_joint7" in table
    assert result.plot_path.stat().st_size > 0
    assert result.score.rows == ["bundle, adapted", "bundle, no adaptation", "compare bundle, adapted"]
    shutil.rmtree(tmp_path / "out")


def test_a_run_s_mb_model_is_scored_as_a_row(bundle: Path, log, tmp_path: Path) -> None:
    """A run whose MB parameters are the bundle's meta-parameters: the MB row is the unadapted row."""
    model = panda_model()
    save_checkpoint(tmp_path / "run" / "checkpoint.pt", model, {"mb_params": model.params})
    bag = write_bag(tmp_path / "bag", log.messages)
    mb_bundle = export_mb_bundle(tmp_path / "run", tmp_path / "mb")
    result = evaluate_bag(bag, bundle, tmp_path / "out", mb_bundle=mb_bundle, future_window=K)
    assert result.score.rows[-1] == "MB (run)"
    assert result.score.mean("MB (run)") == pytest.approx(result.score.mean("bundle, no adaptation"), abs=1e-9)


def test_a_run_without_an_mb_model_is_refused(bundle: Path, log, tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "run" / "checkpoint.pt", panda_model(), {})
    with pytest.raises(NoMBModelError, match="mb_params"):
        export_mb_bundle(tmp_path / "run", tmp_path / "mb")


def test_a_base_s_odometry_imu_and_twist_commands_map_as_the_node_maps_them(tmp_path: Path) -> None:
    """Husky: state from odometry, IMU (quaternion -> roll, pitch) and wheel joint states, a Twist
    reference without a header (held from its log time), Twist commands back to wheel speeds."""
    bundle = panda_bundle(tmp_path / "husky", robot=HUSKY)
    log = husky_closed_loop_log(bundle, 60)
    score, breaks = _score(bundle, write_bag(tmp_path / "bag", log.messages))
    assert breaks == [] and score.segments[0].transitions == 59
    assert score.mean("no adaptation") < 1e-9
    np.testing.assert_allclose(score.command_rms_per_joint(), 0.0, atol=1e-6)
