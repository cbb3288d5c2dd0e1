"""The node's CPU wake-latency request (issue 17): held through the kernel's PM QoS device while
the node is active, released when it stops, and a system that does not grant it is counted and
run on. The granted case needs the real ``/dev/cpu_dma_latency`` writable (root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rclpy.parameter import Parameter

from metarl_runtime.cpu_wake_latency import PM_QOS_DEVICE, CpuWakeLatencyRequest, current_bound_us

from .conftest import InProcessController

needs_the_device = pytest.mark.skipif(
    not os.access(PM_QOS_DEVICE, os.W_OK), reason=f"{PM_QOS_DEVICE} is not writable here (needs root)"
)


@pytest.mark.integration
@needs_the_device
def test_the_node_holds_the_bound_while_active_only(in_process_controller: InProcessController) -> None:
    node, before = in_process_controller.node, current_bound_us()
    node.set_parameters([Parameter("cpu_wake_latency_us", value=0)])
    node.trigger_configure()
    assert current_bound_us() == before, "configured is not active: nothing held yet"
    refused = node.set_parameters([Parameter("cpu_wake_latency_us", value=5)])[0]
    assert not refused.successful
    node.trigger_activate()
    assert current_bound_us() == 0
    node.trigger_deactivate()
    assert current_bound_us() == before


@pytest.mark.integration
def test_a_bound_the_system_does_not_grant_is_counted_and_the_node_runs_on(
    in_process_controller: InProcessController, tmp_path: Path
) -> None:
    node = in_process_controller.node
    node.wake_latency = CpuWakeLatencyRequest(tmp_path / "no_such_device")
    node.set_parameters([Parameter("cpu_wake_latency_us", value=0)])
    node.trigger_configure()
    node.trigger_activate()
    in_process_controller.stream_home(0.5)
    assert node.counters["cpu_wake_latency_refused"] == 1
    assert node.has_commanded, "the node commands without the request"
