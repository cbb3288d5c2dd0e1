"""What the robot starts imports no training stack: the controller node and the helpers it and the
launch-driven sessions use load without torch, PyBullet, gymnasium, ``sim`` or ``metarl_core``
(only ``sim_bridge`` and ``meta_train``'s children, which are simulation and training, need them)."""

from __future__ import annotations

import subprocess
import sys

import pytest

ROBOT_MODULES = (
    "metarl_runtime.model_runtime",
    "metarl_runtime.controllers",
    "metarl_ros.adaptive_controller",
    "metarl_ros.node_lifetime",
    "metarl_runtime.sensor_mapping",
    "metarl_ros.meta_train",
)
TRAINING_STACK = ("torch", "pybullet", "gymnasium", "sim", "metarl_core", "matplotlib", "onnx")


@pytest.mark.parametrize("module", ROBOT_MODULES)
def test_robot_module_pulls_in_no_training_stack(module: str) -> None:
    script = f"import sys, {module}; print(sorted(m for m in {TRAINING_STACK!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
