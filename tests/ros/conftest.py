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


@pytest.fixture()
def in_process_controller(tmp_path: Path) -> Iterator[InProcessController]:
    """The node on an untrained Panda bundle (unconfigured: the test drives its lifecycle) beside a
    probe node; shut down, the hold included, and torn down after the test."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

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
        yield InProcessController(node, probe, executor)
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
