"""sim_bridge's float parameters take integers (``payload_mass_kg:=4`` from a launch file or
``-p``), start-up values are the task from the first step, and non-numbers are refused by name."""

from __future__ import annotations

import os

import pytest
import rclpy
from rclpy.parameter import Parameter

from metarl_ros.sim_bridge import SimBridgeNode

INSPECTION_DOMAIN_OFFSET = 100
"""As in test_launch_files: in-process nodes live in a domain of their own, 100 above the run's,
so that their lingering participants never stand in the graph of later tests."""


@pytest.fixture()
def bridge_with():
    """Build SimBridgeNodes in a private context with the given start-up parameters."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=INSPECTION_DOMAIN_OFFSET + int(os.environ.get("ROS_DOMAIN_ID", "0")))
    built: list[SimBridgeNode] = []

    def build(**parameters: object) -> SimBridgeNode:
        overrides = [Parameter(name, value=value) for name, value in parameters.items()]
        node = SimBridgeNode(context=context, parameter_overrides=overrides)
        built.append(node)
        return node

    try:
        yield build
    finally:
        for node in built:
            node.env.close()
            node.destroy_node()
        rclpy.shutdown(context=context)


def test_an_integer_payload_at_start_up_is_the_task(bridge_with) -> None:
    bridge = bridge_with(payload_mass_kg=4, episode_duration_s=60)
    assert bridge.env.unwrapped.get_task().payload_mass_kg == 4.0
    assert bridge.env.unwrapped.episode_duration_s == 60.0


def test_an_integer_payload_at_run_time_changes_the_task(bridge_with) -> None:
    bridge = bridge_with()
    [result] = bridge.set_parameters([Parameter("payload_mass_kg", value=2)])
    assert result.successful, result.reason
    assert bridge.env.unwrapped.get_task().payload_mass_kg == 2.0


def test_a_payload_that_is_no_number_is_refused_by_name(bridge_with) -> None:
    bridge = bridge_with()
    [result] = bridge.set_parameters([Parameter("payload_mass_kg", value="heavy")])
    assert not result.successful
    assert "payload_mass_kg='heavy': expected a number" in result.reason
    assert bridge.env.unwrapped.get_task().payload_mass_kg == 0.0


def test_a_payload_that_is_no_number_at_start_up_names_the_parameter(bridge_with) -> None:
    with pytest.raises(ValueError, match="payload_mass_kg='heavy': expected a number"):
        bridge_with(payload_mass_kg="heavy")
