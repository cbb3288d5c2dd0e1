"""The PM QoS request behind the node's ``cpu_wake_latency_us``: a held bound is the one in force
until released; a device that is missing and a bound out of range are refused. The held case needs
the real ``/dev/cpu_dma_latency`` writable (root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from metarl_runtime.cpu_wake_latency import PM_QOS_DEVICE, CpuWakeLatencyRequest, current_bound_us

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
