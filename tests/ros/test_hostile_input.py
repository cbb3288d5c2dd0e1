"""A hostile publisher over real topics: the node never publishes NaN or beyond the robot's
limits, holds within each stream's timeout, counts every fault, keeps running and recovers;
its lifecycle and parameters do what they say; sim_bridge survives a 1e300 command."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from lifecycle_msgs.msg import Transition
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from sim.husky_terrain import HUSKY
from sim.panda_payload import HOME_RAD, PANDA

from .hostile_campaign import (
    FAULTS,
    HOLD_SLACK_S,
    JOINT_STATES_TIMEOUT_S,
    PANDA_URDF,
    REFERENCE_TIMEOUT_S,
    HostileProbe,
    _good,
    joint_state,
    run_campaign,
    set_string,
    urdf_effort_limits,
)
from .ros_harness import call, change_state, spin_until, start_node, stop
from .untrained_bundles import untrained_bundle

JOINTS = list(PANDA.joint_names)
LIMITS = urdf_effort_limits(PANDA_URDF.read_text(), JOINTS)
NODE = "adaptive_controller"


@pytest.fixture(scope="module")
def panda_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_bundle(PANDA, tmp_path_factory.mktemp("bundle") / "panda")


@pytest.fixture(scope="module")
def campaign(panda_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    rclpy.init()  # a context of its own, shut down before the other tests' ``ros_node`` starts one
    try:
        return run_campaign(panda_bundle, tmp_path_factory.mktemp("campaign") / "controller.log")
    finally:
        rclpy.try_shutdown()


@pytest.mark.integration
@pytest.mark.parametrize("fault", [f.name for f in FAULTS])
def test_each_fault_is_survived_counted_and_recovered_from(campaign, fault: str) -> None:
    (result,) = [r for r in campaign.faults if r.fault.name == fault]
    assert result.alive, "the node must stay up"
    assert result.commands > 0 and result.bad_commands == 0, "no NaN/inf or beyond the URDF's limits, ever"
    assert result.counted >= 1, f"count.{result.fault.counter} must count the fault"
    assert result.recovered, "valid data again: the node commands again"
    if result.fault.holds_stream is None:
        assert result.holds_during_fault == 0 and result.commanded_during_fault > 0, "must keep commanding"
    else:
        timeout_s = JOINT_STATES_TIMEOUT_S if result.fault.holds_stream == "joint_states" else REFERENCE_TIMEOUT_S
        assert result.hold_latency_s is not None and result.hold_latency_s <= timeout_s + HOLD_SLACK_S, result
        assert result.commanded_during_fault == 0, "after the timeout, nothing but the hold"


@pytest.mark.integration
def test_node_memory_stays_bounded_under_the_campaign(campaign) -> None:
    assert campaign.node_rss_kb_after - campaign.node_rss_kb_before < 20 * 1024, campaign
    assert campaign.log_bytes < 200_000, "logs are throttled"


def _set(ros_node, name: str, value) -> bool:
    kind = {bool: ParameterType.PARAMETER_BOOL, float: ParameterType.PARAMETER_DOUBLE}[type(value)]
    field = {bool: "bool_value", float: "double_value"}[type(value)]
    parameter = Parameter(name=name, value=ParameterValue(type=kind, **{field: value}))
    client = ros_node.create_client(SetParameters, f"/{NODE}/set_parameters")
    return call(ros_node, client, SetParameters.Request(parameters=[parameter])).results[0].successful


@pytest.mark.integration
def test_shutdown_from_active_holds_once_then_stops_commanding_and_frees_everything(
    ros_node, panda_bundle: Path, tmp_path: Path
) -> None:
    controller = start_node(NODE, {"bundle_path": str(panda_bundle)}, tmp_path / "c.log")
    probe = HostileProbe(ros_node, LIMITS)
    try:
        assert change_state(ros_node, NODE, Transition.TRANSITION_CONFIGURE)
        assert change_state(ros_node, NODE, Transition.TRANSITION_ACTIVATE)
        probe.run(1.0, _good, _good)
        assert probe.commands and not np.all(probe.commands[-1][1] == 0.0)
        assert change_state(ros_node, NODE, Transition.TRANSITION_ACTIVE_SHUTDOWN)
        # Commands already in flight land first (a loaded machine delivers them late); the last
        # one to arrive must be the hold, and none may follow it.
        assert spin_until(ros_node, lambda: np.all(probe.commands[-1][1] == 0.0), 2.0), "no hold after shutdown"
        spin_until(ros_node, lambda: False, 0.2)
        shut_at, count = time.monotonic(), len(probe.commands)
        probe.run(1.0, _good, _good)
        assert len(probe.commands) == count, "a finalized node must not command"
        assert np.all(probe.commands[-1][1] == 0.0), "the last command is the hold, not the last torque"
        assert controller.poll() is None and shut_at
        # The graph learns of destroyed entities by discovery, which lags under load.
        assert spin_until(ros_node, lambda: ros_node.count_subscribers("/joint_states") == 0, 2.0)
        assert spin_until(ros_node, lambda: ros_node.count_publishers("/effort_controller/commands") == 0, 2.0)
    finally:
        stop(controller)


@pytest.mark.integration
def test_an_empty_command_topic_fails_configure_loudly_and_leaves_nothing_behind(
    ros_node, panda_bundle: Path, tmp_path: Path
) -> None:
    log = tmp_path / "c.log"
    controller = start_node(NODE, {"bundle_path": str(panda_bundle)}, log)
    try:
        assert set_string(ros_node, NODE, "command_topic", "")
        assert not change_state(ros_node, NODE, Transition.TRANSITION_CONFIGURE)
        assert "empty topic name for ['command_topic']" in log.read_text()
        spin_until(ros_node, lambda: False, 0.5)
        assert ros_node.count_subscribers("/joint_states") == 0, "no subscription left behind"
        assert set_string(ros_node, NODE, "command_topic", "/effort_controller/commands")
        assert change_state(ros_node, NODE, Transition.TRANSITION_CONFIGURE)
        assert spin_until(ros_node, lambda: ros_node.count_subscribers("/joint_states") == 1, 2.0)
    finally:
        stop(controller)


@pytest.mark.integration
def test_run_time_parameter_changes_take_effect_or_are_refused(ros_node, panda_bundle: Path, tmp_path: Path) -> None:
    controller = start_node(NODE, {"bundle_path": str(panda_bundle), "stale_timeout_s": 0.5}, tmp_path / "c.log")
    probe = HostileProbe(ros_node, LIMITS)
    try:
        assert change_state(ros_node, NODE, Transition.TRANSITION_CONFIGURE)
        assert not set_string(ros_node, NODE, "command_topic", "/elsewhere"), "configure-time: refused"
        assert change_state(ros_node, NODE, Transition.TRANSITION_ACTIVATE)
        assert _set(ros_node, "enable_adaptation", False)
        assert _set(ros_node, "joint_states_timeout_s", 3.0)
        probe.run(1.0, _good, _good)
        count = len(probe.commands)
        probe.run(1.2, lambda i, t: None, _good)  # joint states stop: past 0.5 s, within the new 3 s: no hold
        assert not [c for _, c in probe.commands[count:] if np.all(c == 0.0)]
        assert spin_until(ros_node, lambda: probe.diagnostics.get("adaptation_enabled") == "False", 3.0)
        reset = call(ros_node, ros_node.create_client(Trigger, f"/{NODE}/reset_adaptation"), Trigger.Request())
        assert reset.success, reset.message
        count = len(probe.commands)
        probe.run(0.5, lambda i, t: joint_state(t - 0.5), lambda i, t: joint_state(t - 0.5))  # stamps stepped back
        assert any(not np.all(c == 0.0) for _, c in probe.commands[count:]), "reset: stamp history starts again"
    finally:
        stop(controller)


@pytest.mark.integration
def test_a_bundle_wider_than_the_urdf_is_refused_naming_the_joint(ros_node, panda_bundle: Path, tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    controller = start_node(NODE, {"bundle_path": str(panda_bundle)}, log)
    narrowed = PANDA_URDF.read_text().replace('effort="87"', 'effort="50"', 1)
    try:
        assert set_string(ros_node, NODE, "robot_description", narrowed)
        assert not change_state(ros_node, NODE, Transition.TRANSITION_CONFIGURE)
        assert "joint 'panda_joint1' are wider than the robot's effort limit ±50" in log.read_text()
        assert set_string(ros_node, NODE, "robot_description", "<!DOCTYPE x [<!ENTITY a 'a'>]><robot/>")
        assert not change_state(ros_node, NODE, Transition.TRANSITION_CONFIGURE)
        assert "declares a DOCTYPE" in log.read_text()
        assert controller.poll() is None
    finally:
        stop(controller)


@pytest.mark.integration
def test_joint_trajectory_hold_is_the_measured_position(ros_node, panda_bundle: Path, tmp_path: Path) -> None:
    topic = "/arm_controller/joint_trajectory"
    controller = start_node(
        NODE,
        {"bundle_path": str(panda_bundle), "command_interface": "joint_trajectory", "command_topic": topic},
        tmp_path / "c.log",
    )
    trajectories: list[JointTrajectory] = []
    ros_node.create_subscription(JointTrajectory, topic, trajectories.append, 100)
    probe = HostileProbe(ros_node, LIMITS)
    measured = [p + 0.1 for p in HOME_RAD]
    try:
        assert change_state(ros_node, NODE, Transition.TRANSITION_CONFIGURE)
        assert change_state(ros_node, NODE, Transition.TRANSITION_ACTIVATE)
        probe.run(1.0, lambda i, t: joint_state(t, measured), _good)
        probe.run(0.5, lambda i, t: joint_state(t, [math.nan] * 7), _good)
    finally:
        stop(controller)
    holds = [t.points[0] for t in trajectories if t.points[0].positions]
    assert holds, "the hold of a trajectory interface is a position"
    for point in holds:
        np.testing.assert_allclose(point.positions, measured)
        assert list(point.velocities) == [0.0] * 7 and not point.effort


@pytest.mark.integration
def test_sim_bridge_survives_huge_and_malformed_commands(ros_node, tmp_path: Path) -> None:
    bridge = start_node("sim_bridge", {"env_id": "metarl/PandaPayload-v0"}, tmp_path / "b.log")
    states: list[JointState] = []
    ros_node.create_subscription(JointState, "/joint_states", states.append, qos_profile_sensor_data)
    commands = ros_node.create_publisher(Float64MultiArray, "/effort_controller/commands", 10)
    try:
        assert spin_until(ros_node, lambda: len(states) > 5, 30.0), "the bridge publishes"
        for data in ([1e300] * 7, [-1e300] * 7, [math.nan] * 7, [1.0] * 3, [1e308] * 7):
            commands.publish(Float64MultiArray(data=data))
            spin_until(ros_node, lambda: False, 0.2)
        count = len(states)
        assert spin_until(ros_node, lambda: len(states) > count + 10, 5.0), "still stepping"
        assert bridge.poll() is None
        assert all(np.all(np.isfinite(s.position)) and np.all(np.isfinite(s.velocity)) for s in states[count:])
    finally:
        stop(bridge)


@pytest.mark.integration
def test_a_base_holds_when_odom_stops_or_the_imu_turns_nan(ros_node, tmp_path: Path) -> None:
    """The Husky's four streams, each watched: one that fails gives the zero twist within its
    timeout, named in diagnostics, while the others keep coming."""
    bundle = untrained_bundle(HUSKY, tmp_path / "husky")
    controller = start_node(
        NODE,
        {"bundle_path": str(bundle), "command_interface": "twist", "command_topic": "/cmd_vel", "odom_timeout_s": 0.2},
        tmp_path / "c.log",
    )
    twists: list[tuple[float, Twist]] = []
    ros_node.create_subscription(Twist, "/cmd_vel", lambda m: twists.append((time.monotonic(), m)), 100)
    diagnostics: dict[str, str] = {}
    stale_seen: list[tuple[float, str]] = []

    def on_diagnostics(msg: DiagnosticArray) -> None:
        diagnostics.update({kv.key: kv.value for kv in msg.status[0].values})
        stale_seen.append((time.monotonic(), diagnostics.get("stale_stream", "")))

    ros_node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    wheels = ros_node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
    imu_publisher = ros_node.create_publisher(Imu, "/imu", qos_profile_sensor_data)
    odom_publisher = ros_node.create_publisher(Odometry, "/odom", qos_profile_sensor_data)
    reference = ros_node.create_publisher(Twist, "/reference", 10)

    def run(seconds: float, odom_on: bool = True, imu_nan: bool = False) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            stamp = ros_node.get_clock().now().to_msg()
            target = Twist()
            target.linear.x = 0.5
            reference.publish(target)
            imu = Imu()
            imu.header.stamp, imu.orientation.w = stamp, 1.0
            imu.angular_velocity.x = math.nan if imu_nan else 0.0
            imu_publisher.publish(imu)
            if odom_on:
                odom = Odometry()
                odom.header.stamp = stamp
                odom_publisher.publish(odom)
            msg = JointState(name=list(HUSKY.joint_names), position=[0.0] * 4, velocity=[0.0] * 4)
            msg.header.stamp = stamp
            wheels.publish(msg)
            spin_until(ros_node, lambda: False, 0.01)

    def is_zero(twist: Twist) -> bool:
        return twist.linear.x == 0.0 and twist.angular.z == 0.0

    try:
        assert change_state(ros_node, NODE, Transition.TRANSITION_CONFIGURE)
        assert change_state(ros_node, NODE, Transition.TRANSITION_ACTIVATE)
        run(1.0)
        assert twists and not is_zero(twists[-1][1])
        for fault, timeout_s, stream in (({"odom_on": False}, 0.2, "odom"), ({"imu_nan": True}, 0.1, "imu")):
            started = time.monotonic()
            run(1.2, **fault)
            holds = [t for t, m in twists if t > started and is_zero(m)]
            assert holds and holds[0] - started <= timeout_s + HOLD_SLACK_S, (stream, holds[:1])
            assert stream in [name for t, name in stale_seen if t > started], stale_seen[-3:]
            assert int(diagnostics.get(f"count.stale_hold.{stream}", 0)) >= 1
            recovered_from = time.monotonic()
            run(0.6)
            assert any(not is_zero(m) for t, m in twists if t > recovered_from), f"recovers after {stream}"
        assert all(math.isfinite(m.linear.x) and math.isfinite(m.angular.z) for _, m in twists)
        assert controller.poll() is None
    finally:
        stop(controller)
