"""A one-line description of the machine a benchmark ran on, for its BENCHMARKS.md section."""

from __future__ import annotations

import os
import platform


def describe_machine() -> str:
    """CPU model, core count and Python version: enough to know whether two figures compare."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
