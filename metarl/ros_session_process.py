"""A scripted ROS 2 session (``experiments.*_session``) run as a child process by a demo.

The demos sit above ROS: they never import rclpy, they run the session module with the same
interpreter, on localhost discovery and a domain of their own unless ``ROS_DOMAIN_ID`` is set,
and read the ``.npz`` it writes. The Panda's payload switch and the Husky's terrain change both
go through here, so they fail the same way: one line naming the logs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

DEMO_DOMAIN_IDS = range(1, 20)
"""ROS domains the demo picks from when ``ROS_DOMAIN_ID`` is unset (tests use 20–99)."""


def fresh_bag_path(out: Path, adaptation: bool) -> Path:
    """``out/bags/adaptation_on|off``, emptied: the demo's own recording of an earlier run (the
    recorder never overwrites a bag)."""
    bag = out / "bags" / f"adaptation_{'on' if adaptation else 'off'}"
    if bag.exists():
        shutil.rmtree(bag)
    bag.parent.mkdir(parents=True, exist_ok=True)
    return bag


def run_session_process(module: str, arguments: list[str], result: Path, logs: Path) -> dict[str, np.ndarray]:
    """Run ``python -m module arguments`` (which writes ``result``) and return the arrays it saved;
    ``SystemExit`` with one line when the ROS package is missing or the session fails."""
    if importlib.util.find_spec("metarl_ros") is None:
        raise SystemExit(
            "metarl demo: the ROS package metarl_ros is not installed (pip install -e ros2_ws/src/metarl_ros "
            "with the [ros] extra) or run `metarl demo --no-ros`"
        )
    environment = {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": os.environ.get("ROS_DOMAIN_ID", str(DEMO_DOMAIN_IDS[0] + os.getpid() % len(DEMO_DOMAIN_IDS))),
    }
    command = [sys.executable, "-m", module, *arguments]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"metarl demo: the ROS session failed (logs in {logs}):\n{completed.stderr[-2000:]}")
    with np.load(result) as stored:
        return {name: stored[name] for name in stored.files}
