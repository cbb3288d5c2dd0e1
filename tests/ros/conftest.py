"""ROS 2 tests: a private DDS domain per test run, discovery on localhost only, and rclpy."""

from __future__ import annotations

import os

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


@pytest.fixture(scope="session")
def colcon_install(tmp_path_factory: pytest.TempPathFactory):
    """The workspace built once per run by ``colcon build`` at the repository root, into a temp dir."""
    from .colcon_workspace import build_from_repository_root

    return build_from_repository_root(tmp_path_factory.mktemp("colcon"))
