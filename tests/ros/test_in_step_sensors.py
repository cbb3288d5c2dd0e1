"""A base's state comes on three topics (wheel joint states, odometry, IMU) published together: the
node must plan on all three of one stamp, never on new wheel speeds with the previous step's
odometry. The real node on an untrained Husky bundle, its message callbacks fed in a chosen order
(no transport, so the order is the test's, not the executor's)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from sensor_msgs.msg import Imu, JointState

from metarl_ros.adaptive_controller import AdaptiveControllerNode
from metarl_ros.tick_schedule import MESSAGE_TICK_SPACING_PERIODS
from sim.husky_terrain import HUSKY

from .ros_harness import private_domain_id
from .untrained_bundles import untrained_bundle

PAST_RATE_CAP_S = 1.5 * MESSAGE_TICK_SPACING_PERIODS / HUSKY.control_rate_hz


@pytest.fixture()
def husky_node(tmp_path: Path):
    """The active node on an untrained Husky bundle (twist interface), in a private context."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=private_domain_id())
    bundle = untrained_bundle(HUSKY, tmp_path / "husky")
    overrides = [
        Parameter("bundle_path", value=str(bundle)),
        Parameter("expected_robot", value="husky"),
        Parameter("command_interface", value="twist"),
        Parameter("command_topic", value="/cmd_vel"),
    ]
    node = AdaptiveControllerNode(context=context, parameter_overrides=overrides)
    try:
        node.trigger_configure()
        node.trigger_activate()
        yield node
    finally:
        node.trigger_shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)


def _stamp(seconds: float) -> Time:
    return rclpy.time.Time(seconds=seconds).to_msg()


def _wheels(stamp_s: float, speed_rad_s: float) -> JointState:
    msg = JointState(name=list(HUSKY.joint_names), position=[0.0] * 4, velocity=[speed_rad_s] * 4)
    msg.header.stamp = _stamp(stamp_s)
    return msg


def _odom(stamp_s: float, linear_m_s: float) -> Odometry:
    msg = Odometry()
    msg.header.stamp = _stamp(stamp_s)
    msg.twist.twist.linear.x = linear_m_s
    return msg


def _imu(stamp_s: float) -> Imu:
    msg = Imu()
    msg.header.stamp = _stamp(stamp_s)
    msg.orientation.w = 1.0
    return msg


def test_a_base_state_waits_for_the_odometry_and_imu_of_its_own_stamp(husky_node: AdaptiveControllerNode) -> None:
    node, linear = husky_node, HUSKY.state_fields.index("odom.twist.linear.x")
    reference = Twist()
    reference.linear.x = 0.4
    node.on_reference_twist(reference)
    node.on_odom(_odom(1.00, 0.1))
    node.on_imu(_imu(1.00))
    node.on_joint_states(_wheels(1.00, 0.5))
    assert node.schedule.tick_count == 1, "odometry and IMU came first: the state ticks on arrival"
    time.sleep(PAST_RATE_CAP_S)
    node.on_joint_states(_wheels(1.01, 0.6))
    node.on_odom(_odom(1.01, 0.2))
    assert node.schedule.tick_count == 1, "the IMU of 1.01 s has not come: no tick on a mixed state"
    node.on_imu(_imu(1.01))
    assert node.schedule.tick_count == 2, "the last stream of 1.01 s ticks"
    assert node.sensors.state.values[linear] == pytest.approx(0.2)
