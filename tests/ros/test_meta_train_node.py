"""``meta_train`` started as ``ros2 run`` would: trains from ROS parameters, reports progress on
``/meta_train/progress``, writes a bundle the robot's runtime loads, and exits with the status."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from std_msgs.msg import String

from metarl_runtime.model_runtime import AdaptiveRuntime

from .ros_harness import spin_until, start_node, stop

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_meta_train_reports_progress_and_writes_a_loadable_bundle(ros_node, tmp_path: Path) -> None:
    progress: list[str] = []
    ros_node.create_subscription(String, "/meta_train/progress", lambda m: progress.append(m.data), 100)
    parameters = {
        "config": str(ROOT / "configs" / "panda_tiny.yaml"),
        "run_dir": str(tmp_path / "run"),
        "bundle_out": str(tmp_path / "bundle"),
    }
    node = start_node("meta_train", parameters, tmp_path / "meta_train.log")
    try:
        assert spin_until(ros_node, lambda: node.poll() is not None, 240), "meta_train did not finish"
    finally:
        stop(node)
    assert node.returncode == 0, (tmp_path / "meta_train.log").read_text()[-2000:]
    assert any("bundle written to" in line for line in progress), progress[-5:]
    runtime = AdaptiveRuntime.load(tmp_path / "bundle", expected_robot="panda")
    assert runtime.manifest.joint_names[0] == "panda_joint1"


@pytest.mark.integration
def test_meta_train_fails_with_the_config_error(ros_node, tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text((ROOT / "configs" / "panda_tiny.yaml").read_text() + "inner_steps: 0\n")
    node = start_node(
        "meta_train",
        {"config": str(config), "run_dir": str(tmp_path / "run"), "bundle_out": str(tmp_path / "b")},
        tmp_path / "meta_train.log",
    )
    try:
        assert spin_until(ros_node, lambda: node.poll() is not None, 60), "meta_train did not stop"
    finally:
        stop(node)
    assert node.returncode != 0
    assert "inner_steps" in (tmp_path / "meta_train.log").read_text()
    assert not (tmp_path / "b").exists()


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (children of all its threads, recursively), from /proc."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = {int(c) for c in (task / "children").read_text().split()}
            except (FileNotFoundError, ProcessLookupError):
                continue
            todo.extend(children - found)
            found |= children
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is no zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_meta_train_ends_its_training_child_when_interrupted(ros_node, tmp_path: Path, signum: int) -> None:
    log = tmp_path / "meta_train.log"
    parameters = {
        "config": str(ROOT / "configs" / "panda.yaml"),  # long enough to be interrupted mid-training
        "run_dir": str(tmp_path / "run"),
        "bundle_out": str(tmp_path / "bundle"),
    }
    node = start_node("meta_train", parameters, log)
    try:
        assert spin_until(ros_node, lambda: "running:" in log.read_text() and descendants(node.pid), 60)
        children = descendants(node.pid)
        node.send_signal(signum)
        node.wait(timeout=30)
    finally:
        stop(node)
    assert [pid for pid in children if alive(pid)] == []
    assert "Traceback" not in log.read_text(), log.read_text()[-2000:]
    assert not (tmp_path / "bundle").exists()
