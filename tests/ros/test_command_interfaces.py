"""The two other command interfaces over real topics: ``joint_trajectory`` for an arm's
trajectory controller, and ``twist`` for a base, with the Husky of the sim bridge behind it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import Twist
from lifecycle_msgs.msg import Transition
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from sim.husky_terrain import HUSKY
from sim.panda_payload import HOME_RAD, PANDA

from .ros_harness import change_state, spin_until, start_node, stop
from .untrained_bundles import untrained_bundle


def _stamp_s(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


@pytest.mark.integration
def test_joint_trajectory_interface_sends_bounded_efforts_for_the_bundles_joints(ros_node, tmp_path: Path) -> None:
    bundle = untrained_bundle(PANDA, tmp_path / "panda")
    topic = "/arm_controller/joint_trajectory"
    controller = start_node(
        "adaptive_controller",
        {"bundle_path": str(bundle), "command_interface": "joint_trajectory", "command_topic": topic},
        tmp_path / "c.log",
    )
    trajectories: list[JointTrajectory] = []
    ros_node.create_subscription(JointTrajectory, topic, trajectories.append, 100)
    joint_states = ros_node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
    reference = ros_node.create_publisher(JointState, "/reference", 10)
    names = list(reversed(PANDA.joint_names))  # by name, not by index
    try:
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE)
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_ACTIVATE)
        deadline, stamp_s = time.monotonic() + 1.0, 1.0
        while time.monotonic() < deadline:
            stamp_s += 0.01
            msg = JointState(name=names, position=list(reversed(HOME_RAD)), velocity=[0.0] * 7)
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), int((stamp_s % 1) * 1e9)
            ref = JointState(name=list(PANDA.joint_names), position=list(HOME_RAD), velocity=[0.0] * 7)
            ref.header.stamp = msg.header.stamp
            reference.publish(ref)
            joint_states.publish(msg)
            spin_until(ros_node, lambda: False, 0.01)
    finally:
        stop(controller)
    assert len(trajectories) > 30, len(trajectories)
    for trajectory in trajectories:
        assert list(trajectory.joint_names) == list(PANDA.joint_names)
        (point,) = trajectory.points
        efforts = np.array(point.effort)
        assert efforts.shape == (7,) and np.all(np.isfinite(efforts))
        assert np.all(efforts >= PANDA.action_low) and np.all(efforts <= PANDA.action_high)
        assert point.time_from_start.nanosec == 10_000_000  # one control period at 100 Hz


@pytest.mark.integration
def test_twist_interface_drives_the_simulated_husky_within_its_wheel_limits(ros_node, tmp_path: Path) -> None:
    bundle = untrained_bundle(HUSKY, tmp_path / "husky")
    bridge = start_node(
        "sim_bridge",
        {"env_id": "metarl/HuskyTerrain-v0", "lock_step": True, "command_topic": "/cmd_vel"},
        tmp_path / "bridge.log",
    )
    controller = start_node(
        "adaptive_controller",
        {
            "bundle_path": str(bundle),
            "expected_robot": "husky",
            "command_interface": "twist",
            "command_topic": "/cmd_vel",
            "stale_timeout_s": 1.0,
        },
        tmp_path / "controller.log",
    )
    twists: list[Twist] = []
    stamps: list[float] = []
    ros_node.create_subscription(Twist, "/cmd_vel", twists.append, 100)
    ros_node.create_subscription(
        JointState, "/joint_states", lambda m: stamps.append(_stamp_s(m)), qos_profile_sensor_data
    )
    try:
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE)
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_ACTIVATE)
        # One simulated second of driving; the bridge's clock starts one control period in.
        one_second_in_s = 1.0 + 0.5 / HUSKY.control_rate_hz
        assert spin_until(ros_node, lambda: max(stamps, default=0.0) >= one_second_in_s, 60), (
            "the Husky did not advance"
        )
    finally:
        stop(controller)
        stop(bridge)
    max_linear = HUSKY.action_high[0] * HUSKY.wheel_radius_m
    max_angular = 2.0 * max_linear / HUSKY.track_width_m
    assert len(twists) >= 100
    for twist in twists:
        assert np.isfinite(twist.linear.x) and np.isfinite(twist.angular.z)
        assert abs(twist.linear.x) <= max_linear + 1e-9 and abs(twist.angular.z) <= max_angular + 1e-9
