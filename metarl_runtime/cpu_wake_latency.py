"""A bound on how long a CPU may take to wake, held while the controller is active (Linux PM QoS).

Why: a control loop idles for most of each period, and a core that idles drops into a halt state
(on a virtual machine, the hypervisor deschedules the vCPU) that costs time to leave on every
tick; ``metarl bench tick`` measures that against a wait that keeps the core busy (BENCHMARKS.md).
Writing a bound in microseconds to ``/dev/cpu_dma_latency`` is the kernel's interface for it,
the one real-time Linux set-ups use: idle states slower to leave than the bound are not entered
while the file stays open, and the request ends when it is closed, also by the kernel when the
process dies, so a crashed node cannot leave it behind. Opening the file needs root, or a udev
rule that grants it to the robot's user.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

PM_QOS_DEVICE = Path("/dev/cpu_dma_latency")


class CpuWakeLatencyRequest:
    """One PM QoS request on ``device``: :meth:`hold` a bound, :meth:`release` it (idempotent)."""

    def __init__(self, device: Path = PM_QOS_DEVICE) -> None:
        self.device = device
        self.held_us: int | None = None
        """The bound held now, or None."""
        self._fd: int | None = None

    def hold(self, microseconds: int) -> None:
        """Request ``microseconds`` (replacing any bound this request holds); raises ``OSError``
        (with the device and the reason) where the device is missing or not writable."""
        if not 0 <= microseconds < 2**31:
            raise ValueError(f"a wake latency bound of {microseconds} µs is not in [0, 2^31)")
        self.release()
        fd = os.open(self.device, os.O_WRONLY)
        try:
            os.write(fd, struct.pack("=i", microseconds))
        except OSError:
            os.close(fd)
            raise
        self._fd, self.held_us = fd, microseconds

    def release(self) -> None:
        """End the request: the CPUs may idle as the system's other requests allow."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self.held_us = None


def current_bound_us(device: Path = PM_QOS_DEVICE) -> int:
    """The bound in force, the smallest of every process's requests (reading the device tells it)."""
    return struct.unpack("=i", device.read_bytes()[:4])[0]
