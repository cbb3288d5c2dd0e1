"""Nodes as child processes, and the lifecycle and parameter calls that drive them.

The demo session and the integration tests start ``sim_bridge`` and ``adaptive_controller``
exactly as ``ros2 run`` would (console script plus ``--ros-args -p``) and talk to them only
through their services, so what they exercise is what a robot's launch file starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node


def start_node(executable: str, parameters: dict[str, object], log_path: Path) -> subprocess.Popen:
    """Start a console script the way ``ros2 run`` does, with ``--ros-args -p`` parameters.

    The script is looked up beside the running interpreter, so a virtual environment works
    without being on ``PATH``; its output goes to ``log_path``."""
    args = [executable, "--ros-args"]
    for name, value in parameters.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ["-p", f"{name}:={text}"]
    bin_dir = Path(sys.executable).parent
    with open(log_path, "w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [str(bin_dir / args[0]), *args[1:]], stdout=log, stderr=subprocess.STDOUT, env=os.environ
        )


def stop(process: subprocess.Popen) -> None:
    """SIGINT (the node's clean shutdown path), then SIGKILL after 10 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def spin_until(node: Node, condition: Callable[[], bool], timeout_s: float) -> bool:
    """Spin ``node`` until ``condition()`` holds; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.02)
        if condition():
            return True
    return False


def call(node: Node, client, request, timeout_s: float = 10.0):
    """A service call that raises ``TimeoutError`` naming the service instead of hanging."""
    if not client.wait_for_service(timeout_sec=timeout_s):
        raise TimeoutError(f"service {client.srv_name} not available")
    future = client.call_async(request)
    if not spin_until(node, future.done, timeout_s):
        raise TimeoutError(f"service {client.srv_name} did not answer")
    return future.result()


def change_state(node: Node, target: str, transition_id: int) -> bool:
    """Ask lifecycle node ``target`` for a transition; True when it succeeded."""
    client = node.create_client(ChangeState, f"/{target}/change_state")
    return call(node, client, ChangeState.Request(transition=Transition(id=transition_id))).success


def set_double(node: Node, target: str, name: str, value: float) -> bool:
    """Set a double parameter of node ``target``; True when the node accepted it."""
    client = node.create_client(SetParameters, f"/{target}/set_parameters")
    parameter = Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value))
    return call(node, client, SetParameters.Request(parameters=[parameter])).results[0].successful
