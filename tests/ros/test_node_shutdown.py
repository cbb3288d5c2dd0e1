"""A Ctrl-C at the terminal of ``ros2 launch`` reaches every node twice (the terminal's SIGINT to
the process group, then launch's own): each node ends cleanly, with no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lifecycle_msgs.msg import Transition
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState

from sim.panda_payload import PANDA

from .ros_harness import change_state, spin_until
from .untrained_bundles import untrained_bundle

SECOND_SIGINT_DELAY_S = 0.05
"""Gap between the two SIGINTs: launch forwards its own while the node is still shutting down."""


def start_in_own_group(executable: str, arguments: list[str], log_path: Path) -> subprocess.Popen:
    """The console script beside this interpreter, leading a process group as a launched node would."""
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / executable), *arguments],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def interrupt_group_twice(process: subprocess.Popen) -> int:
    """Ctrl-C to the group, again a moment later; the exit status (killed after 20 s)."""
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(SECOND_SIGINT_DELAY_S)
    try:
        os.killpg(process.pid, signal.SIGINT)
    except ProcessLookupError:  # already gone: the clean-up was quicker than the second signal
        pass
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.mark.integration
def test_sim_bridge_stepping_ends_quietly_on_a_group_ctrl_c(ros_node, tmp_path: Path) -> None:
    log = tmp_path / "sim_bridge.log"
    bridge = start_in_own_group("sim_bridge", [], log)
    joint_states: list[object] = []
    ros_node.create_subscription(JointState, "/joint_states", joint_states.append, qos_profile_sensor_data)
    assert spin_until(ros_node, lambda: len(joint_states) > 20, 60), log.read_text()
    assert interrupt_group_twice(bridge) == 0, log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.mark.integration
def test_an_active_adaptive_controller_ends_quietly_on_a_group_ctrl_c(ros_node, tmp_path: Path) -> None:
    bundle = untrained_bundle(PANDA, tmp_path / "bundle")
    log = tmp_path / "adaptive_controller.log"
    controller = start_in_own_group("adaptive_controller", ["--ros-args", "-p", f"bundle_path:={bundle}"], log)
    assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE), log.read_text()
    assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_ACTIVATE), log.read_text()
    assert interrupt_group_twice(controller) == 0, log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()
