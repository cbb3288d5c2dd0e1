"""The node's CPU wake-latency request (issue 17): held through the kernel's PM QoS device while
the node is active, released when it stops, and a system that does not grant it is said so and
run on. The granted cases need the real ``/dev/cpu_dma_latency`` writable (root)."""

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


@needs_the_device
def test_a_held_bound_is_in_force_until_released() -> None:
    before = current_bound_us()
    request = CpuWakeLatencyRequest()
    request.hold(0)
    assert current_bound_us() == 0 and request.held_us == 0
    request.hold(7)  # replaces this request's own bound
    assert current_bound_us() == min(before, 7)
    request.release()
    request.release()
    assert current_bound_us() == before and request.held_us is None


def test_a_missing_device_and_a_bound_out_of_range_are_refused_by_name(tmp_path: Path) -> None:
    request = CpuWakeLatencyRequest(tmp_path / "no_such_device")
    with pytest.raises(FileNotFoundError, match="no_such_device"):
        request.hold(0)
    assert request.held_us is None
    with pytest.raises(ValueError, match="-3 µs"):
        request.hold(-3)


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
