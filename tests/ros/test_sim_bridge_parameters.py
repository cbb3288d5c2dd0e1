"""sim_bridge's float parameters take integers (``payload_mass_kg:=4`` from a launch file or
``-p``), start-up values are the task from the first step, and non-numbers are refused by name."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import rclpy
import rclpy.executors
from rclpy.parameter import Parameter

from metarl_ros.sim_bridge import SimBridgeNode

from .ros_harness import private_domain_id


@pytest.fixture()
def bridge_with():
    """Build SimBridgeNodes in a private context with the given start-up parameters."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=private_domain_id())
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


def test_the_terrain_change_scenario_puts_the_patch_down_in_the_bridge_and_announces_it(bridge_with) -> None:
    """``scenario: terrain_change``: the bridge steps the simulator's TerrainChange wrapper; the
    crossing reaches the harness on ``/sim_bridge/scenario_events`` (latched), stamped with the last
    state on the old ground, and the payload given at start-up stays."""
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import String

    bridge = bridge_with(
        env_id="metarl/HuskyTerrain-v0",
        scenario="terrain_change",
        terrain_patch_start_m=0.05,
        terrain_patch_ground_friction=1.5,
        payload_mass_kg=20,
    )
    bridge.command = np.full(2, 4.0)  # straight ahead at 0.7 m/s: 5 cm within the first 0.2 s
    stamps = []
    for _ in range(40):
        stamps.append(bridge.sim_time_s)
        bridge.step_and_publish()
    task = bridge.env.unwrapped.get_task()
    assert task.ground_friction == 1.5 and task.payload_mass_kg == 20.0
    probe = rclpy.create_node("scenario_probe", context=bridge.context)
    events: list[dict] = []
    qos = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    probe.create_subscription(String, "/sim_bridge/scenario_events", lambda m: events.append(json.loads(m.data)), qos)
    executor = rclpy.executors.SingleThreadedExecutor(context=bridge.context)
    executor.add_node(probe)
    deadline = time.monotonic() + 5.0
    while not events and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    probe.destroy_node()
    [event] = events
    crossing_tick = bridge.env.crossing_tick
    assert event == {"event": "terrain_patch", "sim_time_s": stamps[crossing_tick], "ground_friction": 1.5}
    assert 0 < crossing_tick < 40


def test_a_scenario_on_a_robot_it_is_not_for_is_refused_by_name(bridge_with) -> None:
    with pytest.raises(ValueError, match="scenario='terrain_change' on env_id='metarl/PandaPayload-v0'"):
        bridge_with(scenario="terrain_change")
    with pytest.raises(ValueError, match="scenario='ice_rink'"):
        bridge_with(env_id="metarl/HuskyTerrain-v0", scenario="ice_rink")
