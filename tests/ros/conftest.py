"""ROS 2 tests: a private DDS domain per test run, discovery on localhost only, and rclpy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(20 + os.getpid() % 80))

rclpy = pytest.importorskip("rclpy")

from .ros_harness import DDS_DOMAIN_IDS  # noqa: E402  (after the skip: the harness imports rclpy)

if not (os.environ["ROS_DOMAIN_ID"].isdigit() and int(os.environ["ROS_DOMAIN_ID"]) < DDS_DOMAIN_IDS):
    pytest.exit(
        f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']!r}: Fast DDS takes domains 0-{DDS_DOMAIN_IDS - 1} "
        "and ends the process on any other; test runs use 20-99",
        returncode=pytest.ExitCode.USAGE_ERROR,
    )


@pytest.fixture()
def ros_node():
    """An initialised rclpy context and a probe node, torn down after the test."""
    rclpy.init()
    node = rclpy.create_node(f"probe_{os.getpid()}")
    yield node
    node.destroy_node()
    rclpy.shutdown()


@dataclass(frozen=True)
class InProcessController:
    """The real ``adaptive_controller`` node and a probe node, on one executor in this process."""

    node: object
    probe: object
    executor: object
    joint_states: object
    reference: object

    def stream_home(self, seconds: float) -> None:
        """For ``seconds``: the arm at rest at home on ``/joint_states`` and as ``/reference``,
        stamped in step by the node's clock, spinning the executor between them."""
        import time

        from sensor_msgs.msg import JointState

        from sim.panda_payload import HOME_RAD, PANDA

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for publisher in (self.reference, self.joint_states):
                msg = JointState(name=list(PANDA.joint_names), position=list(HOME_RAD), velocity=[0.0] * 7)
                msg.header.stamp = self.node.get_clock().now().to_msg()
                publisher.publish(msg)
            self.executor.spin_once(timeout_sec=0.01)


@pytest.fixture()
def in_process_controller(tmp_path: Path) -> Iterator[InProcessController]:
    """The node on an untrained Panda bundle (unconfigured: the test drives its lifecycle) beside a
    probe node; shut down, the hold included, and torn down after the test."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState

    from metarl_ros.adaptive_controller import AdaptiveControllerNode
    from sim.panda_payload import PANDA

    from .untrained_bundles import untrained_bundle

    bundle = untrained_bundle(PANDA, tmp_path / "panda")
    rclpy.init()
    try:
        node = AdaptiveControllerNode(parameter_overrides=[Parameter("bundle_path", value=str(bundle))])
        probe = rclpy.create_node(f"in_process_probe_{os.getpid()}")
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.add_node(probe)
        joint_states = probe.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        reference = probe.create_publisher(JointState, "/reference", 10)
        yield InProcessController(node, probe, executor, joint_states, reference)
        node.trigger_shutdown()
        executor.shutdown()
        node.destroy_node()
        probe.destroy_node()
    finally:
        rclpy.try_shutdown()


@pytest.fixture(scope="session")
def colcon_install(tmp_path_factory: pytest.TempPathFactory):
    """The workspace built once per run by ``colcon build`` at the repository root, into a temp dir."""
    from .colcon_workspace import build_from_repository_root

    return build_from_repository_root(tmp_path_factory.mktemp("colcon"))
