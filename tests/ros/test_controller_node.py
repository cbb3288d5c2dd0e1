"""adaptive_controller as a process: its lifecycle, and bad input it must survive and count."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from metarl_runtime.controllers import load_controller
from sim.panda_payload import HOME_RAD, PANDA

from .ros_harness import change_state, spin_until, start_node, stop
from .untrained_bundles import untrained_bundle

JOINTS = list(PANDA.joint_names)


@pytest.fixture(scope="module")
def untrained_panda_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_bundle(PANDA, tmp_path_factory.mktemp("bundle") / "panda")


class Probe:
    """Publishes joint states and references like a robot; records commands and diagnostics."""

    def __init__(self, node) -> None:
        self.node = node
        self.joint_states = node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        self.reference = node.create_publisher(JointState, "/reference", 10)
        self.commands: list[tuple[float, np.ndarray]] = []
        self.diagnostics: dict[str, str] = {}
        node.create_subscription(
            Float64MultiArray,
            "/effort_controller/commands",
            lambda m: self.commands.append((time.monotonic(), np.array(m.data))),
            100,
        )
        node.create_subscription(
            DiagnosticArray,
            "/diagnostics",
            lambda m: self.diagnostics.update({kv.key: kv.value for kv in m.status[0].values}),
            10,
        )
        self.stamp_s = 1.0

    def publish(self, names=JOINTS, positions=None, velocities=None, stamp_s=None) -> None:
        self.stamp_s += 0.01
        msg = JointState(
            name=list(names),
            position=list(HOME_RAD) if positions is None else list(positions),
            velocity=[0.0] * 7 if velocities is None else list(velocities),
        )
        stamp = self.stamp_s if stamp_s is None else stamp_s
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int((stamp % 1) * 1e9)
        self.joint_states.publish(msg)
        reference = JointState(name=JOINTS, position=list(HOME_RAD), velocity=[0.0] * 7)
        reference.header.stamp = msg.header.stamp
        self.reference.publish(reference)

    def stream(self, seconds: float, until: Callable[[], bool] | None = None) -> None:
        """Publish good data at ~100 Hz while spinning, for ``seconds`` or, with ``until``, till it
        holds (at most ``seconds``): a count of answers then does not depend on the machine's load."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until is not None and until()):
            self.publish()
            spin_until(self.node, lambda: False, 0.01)


@pytest.mark.integration
def test_lifecycle_commands_only_while_active(ros_node, untrained_panda_bundle: Path, tmp_path: Path) -> None:
    controller = start_node(
        "adaptive_controller",
        {"bundle_path": str(untrained_panda_bundle), "expected_robot": "panda"},
        tmp_path / "c.log",
    )
    probe = Probe(ros_node)
    try:
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE)
        probe.stream(1.0)
        assert probe.commands == [], "an inactive (configured) node must not command"
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_ACTIVATE)
        probe.stream(1.5)
        assert len(probe.commands) > 50
        assert all(np.all(np.isfinite(c)) and np.all(np.abs(c) <= PANDA.action_high) for _, c in probe.commands)
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_DEACTIVATE)
        stopped_at = time.monotonic()
        probe.stream(1.0)
        assert not [t for t, _ in probe.commands if t > stopped_at + 0.2], "commands continued after deactivate"
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CLEANUP)
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    finally:
        stop(controller)


@pytest.mark.integration
def test_a_state_heard_before_its_reference_is_answered_once_the_reference_arrives(
    ros_node, untrained_panda_bundle: Path, tmp_path: Path
) -> None:
    """A lock-step robot repeats one state (one stamp) until it is answered; if that state came
    before the first reference, the node must still answer it once the reference is in."""
    controller = start_node("adaptive_controller", {"bundle_path": str(untrained_panda_bundle)}, tmp_path / "c.log")
    probe = Probe(ros_node)
    state = JointState(name=JOINTS, position=list(HOME_RAD), velocity=[0.0] * 7)
    state.header.stamp.sec = 1
    try:
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE)
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_ACTIVATE)
        for _ in range(20):  # the same state, and no reference yet
            probe.joint_states.publish(state)
            spin_until(ros_node, lambda: False, 0.05)
        assert probe.commands == [], "no command without a reference"
        reference = JointState(name=JOINTS, position=list(HOME_RAD), velocity=[0.0] * 7)
        reference.header.stamp = state.header.stamp
        probe.reference.publish(reference)
        for _ in range(20):  # still that same state: only the reference is new
            probe.joint_states.publish(state)
            if spin_until(ros_node, lambda: bool(probe.commands), 0.05):
                break
        assert len(probe.commands) == 1, "the waiting state must get exactly one command"
    finally:
        stop(controller)


@pytest.mark.integration
def test_a_state_is_answered_with_the_reference_of_its_own_stamp(
    ros_node, untrained_panda_bundle: Path, tmp_path: Path
) -> None:
    """A simulator publishes each state with its reference, stamped alike; when the state is
    heard first, the node waits for that reference instead of planning for the previous one
    (which made the lock-step loop depend on message timing)."""
    controller = start_node(
        "adaptive_controller",
        {"bundle_path": str(untrained_panda_bundle), "stale_timeout_s": 5.0, "reference_wait_s": 0.5},
        tmp_path / "c.log",
    )
    probe = Probe(ros_node)
    state = list(HOME_RAD)
    first_reference, second_reference = np.array(HOME_RAD), np.array(HOME_RAD) + 0.3

    def joint_state(positions, stamp_s: float) -> JointState:
        msg = JointState(name=JOINTS, position=list(positions), velocity=[0.0] * 7)
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), round((stamp_s % 1) * 1e9)
        return msg

    try:
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE)
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_ACTIVATE)
        time.sleep(1.0)  # discovery: both streams matched before the exchange starts
        probe.reference.publish(joint_state(first_reference, 1.0))
        probe.joint_states.publish(joint_state(state, 1.0))
        assert spin_until(ros_node, lambda: len(probe.commands) == 1, 5.0)
        probe.joint_states.publish(joint_state(state, 1.01))  # the state first, its reference 50 ms after
        time.sleep(0.05)
        probe.reference.publish(joint_state(second_reference, 1.01))
        assert spin_until(ros_node, lambda: len(probe.commands) == 2, 5.0)
    finally:
        stop(controller)
    # The same two ticks in-process, with this stamp's reference and with the previous one.
    expected = _second_command(untrained_panda_bundle, state, first_reference, second_reference)
    with_previous_reference = _second_command(untrained_panda_bundle, state, first_reference, first_reference)
    np.testing.assert_allclose(probe.commands[1][1], expected, rtol=0, atol=1e-4)
    assert not np.allclose(probe.commands[1][1], with_previous_reference, atol=1e-2)


def _second_command(bundle: Path, positions, first_reference, second_reference) -> np.ndarray:
    """The command an in-process controller gives at its second tick, at rest (zero velocities)."""
    controller = load_controller(bundle)
    state = np.concatenate([positions, np.zeros(7)])
    controller(state, np.concatenate([first_reference, np.zeros(7)]))
    return controller(state, np.concatenate([second_reference, np.zeros(7)]))


@pytest.mark.integration
def test_bad_input_is_counted_and_never_reaches_the_command(
    ros_node, untrained_panda_bundle: Path, tmp_path: Path
) -> None:
    controller = start_node(
        "adaptive_controller",
        {"bundle_path": str(untrained_panda_bundle), "stale_timeout_s": 0.2},
        tmp_path / "c.log",
    )
    probe = Probe(ros_node)
    try:
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE)
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_ACTIVATE)
        probe.stream(1.0)
        probe.publish(positions=[0.0] * 6)  # mismatched lengths
        spin_until(ros_node, lambda: False, 0.1)  # sensor QoS keeps only the last few: deliver each
        probe.publish(positions=[math.nan] * 7)  # NaN
        spin_until(ros_node, lambda: False, 0.1)  # sensor QoS keeps only the last few: deliver each
        probe.publish(velocities=[math.inf] * 7)  # inf
        spin_until(ros_node, lambda: False, 0.1)  # sensor QoS keeps only the last few: deliver each
        probe.publish(names=JOINTS[:6], positions=[0.0] * 6, velocities=[0.0] * 6)  # missing joint
        spin_until(ros_node, lambda: False, 0.1)  # sensor QoS keeps only the last few: deliver each
        probe.publish(names=[*JOINTS, "gripper"], positions=[*HOME_RAD, 0.0], velocities=[0.0] * 8)  # unknown
        spin_until(ros_node, lambda: False, 0.1)
        probe.publish(stamp_s=probe.stamp_s - 0.3)  # out of order (a jump back over clock_restart_s is a restart)
        spin_until(ros_node, lambda: False, 0.1)  # sensor QoS keeps only the last few: deliver each
        for _ in range(10_000):  # a burst
            probe.publish()
        probe.stream(1.0)
        silent_from = time.monotonic()
        spin_until(ros_node, lambda: False, 1.5)  # the stream goes stale
        assert spin_until(ros_node, lambda: "count.stale_hold" in probe.diagnostics, 3)
        counts = probe.diagnostics
        for reason in (
            "length_mismatch",
            "non_finite",
            "missing_joint",
            "unknown_joint",
            "out_of_order_stamp",
            "stale_hold",
        ):
            assert int(counts.get(f"count.{reason}", 0)) >= 1, (reason, counts)
        assert controller.poll() is None, "the node must stay up"
        held = [c for t, c in probe.commands if t > silent_from + 0.5]
        assert held and all(np.all(c == 0.0) for c in held), "stale sensors must give the safe hold"
        assert all(np.all(np.isfinite(c)) for _, c in probe.commands)
    finally:
        stop(controller)


@pytest.mark.integration
def test_bundle_for_another_robot_is_refused_at_configure(
    ros_node, untrained_panda_bundle: Path, tmp_path: Path
) -> None:
    log = tmp_path / "c.log"
    controller = start_node(
        "adaptive_controller", {"bundle_path": str(untrained_panda_bundle), "expected_robot": "husky"}, log
    )
    try:
        assert not change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE)
        assert controller.poll() is None
        assert "bundle is for robot 'panda', this is 'husky'" in log.read_text()
    finally:
        stop(controller)
