"""What every scripted ROS 2 session shares: the nodes started and stopped in order, sim time
followed from stamps, an optional bag recording, and the error per control period.

``payload_switch_session`` (Panda) and ``terrain_change_session`` (Husky) differ only in what they
start the bridge with, what they change mid-run and how they score a message; the process
plumbing below is theirs in common. Every node is a child process started as ``ros2 run`` would
(``experiments.node_processes``), so a session exercises what a robot's launch file starts.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import rclpy
from lifecycle_msgs.msg import Transition
from rclpy.node import Node
from std_msgs.msg import String

from experiments.node_processes import change_state, spin_until, start_node, stop

SessionResultT = TypeVar("SessionResultT")


def stamp_s(msg) -> float:
    """A message's header stamp in seconds."""
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def errors_on_grid(errors_by_stamp: dict[float, float], rate_hz: float) -> np.ndarray:
    """Tracking error per control period (t = 1/rate, 2/rate, ... s) from errors keyed by stamp.

    Sensor QoS is best effort, so a message can be lost; a missing tick is filled by linear
    interpolation between its neighbours rather than shifting every later tick.
    """
    stamps = sorted(s for s in errors_by_stamp if s > 0.0)
    if not stamps:
        raise RuntimeError("no sensor message had a matching reference: did the bridge publish?")
    grid = np.arange(1, round(stamps[-1] * rate_hz) + 1) / rate_hz
    return np.interp(grid, stamps, [errors_by_stamp[s] for s in stamps])


def _recorder_hears_all(status: dict[str, object]) -> bool:
    """The recorder has matched a publisher on every topic it records."""
    publishers = status.get("publishers")
    return isinstance(publishers, dict) and bool(publishers) and all(n > 0 for n in publishers.values())


def _wait_until_drained(node: Node, status: dict[str, object], timeout_s: float = 10.0) -> None:
    """Spin until the recorder's written count has not moved for half a second (its queues are
    empty once the publishers have stopped), so stopping it loses nothing."""
    last, since = status.get("messages"), time.monotonic()

    def drained() -> bool:
        nonlocal last, since
        if status.get("messages") != last:
            last, since = status.get("messages"), time.monotonic()
        return time.monotonic() - since > 0.5

    spin_until(node, drained, timeout_s)


@contextmanager
def bridge_and_controller(
    node: Node,
    log_dir: Path,
    tag: str,
    bridge_parameters: dict[str, object],
    controller_parameters: dict[str, object],
    heard_everything: Callable[[], bool],
    bag_path: Path | None = None,
    bag_topics: Sequence[str] | None = None,
) -> Iterator[None]:
    """``sim_bridge`` and ``adaptive_controller`` running, the controller configured and active.

    The controller is activated only once ``heard_everything()`` says the caller's subscriptions
    hear the bridge and the controller (it is polled while spinning; the lock-step bridge repeats
    its first state until the first command). Subscriptions match their publishers
    asynchronously, seconds late on a loaded machine, and the lock-step bridge then runs at the
    controller's pace: without the wait a caller's record could start anywhere in the run.

    With ``bag_path`` (a directory that must not exist yet) a ``bag_recorder`` writes
    ``bag_topics`` (its defaults when None) there, and the controller is activated only once the
    recorder has matched a publisher on every topic, so the bag holds the run from its first
    command. On exit (normal or not) the controller stops first (it publishes its hold), then the
    bridge, then the recorder once it has written everything it heard. Logs go to
    ``log_dir/<node>_<tag>.log``; the caller's subscriptions on ``node`` are the caller's.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    recorder = None
    recorder_status: dict[str, object] = {}
    status_subscription = None
    if bag_path is not None:
        recorder_parameters: dict[str, object] = {"bag_path": str(bag_path)}
        if bag_topics is not None:
            recorder_parameters["topics"] = "[" + ", ".join(f"'{t}'" for t in bag_topics) + "]"
        recorder = start_node("bag_recorder", recorder_parameters, log_dir / f"bag_recorder_{tag}.log")
        status_subscription = node.create_subscription(
            String, "/bag_recorder/status", lambda m: recorder_status.update(json.loads(m.data)), 10
        )
    bridge = start_node("sim_bridge", bridge_parameters, log_dir / f"sim_bridge_{tag}.log")
    controller = start_node("adaptive_controller", controller_parameters, log_dir / f"adaptive_controller_{tag}.log")
    try:
        if not change_state(node, "adaptive_controller", Transition.TRANSITION_CONFIGURE):
            raise RuntimeError(f"adaptive_controller refused to configure: see {log_dir}")
        if not spin_until(node, heard_everything, 30.0):
            raise RuntimeError(f"the session does not hear the bridge and the controller: see {log_dir}")
        if recorder is not None and not spin_until(node, lambda: _recorder_hears_all(recorder_status), 30.0):
            raise RuntimeError(f"bag_recorder does not hear every topic ({recorder_status}): see {log_dir}")
        if not change_state(node, "adaptive_controller", Transition.TRANSITION_ACTIVATE):
            raise RuntimeError(f"adaptive_controller refused to activate: see {log_dir}")
        yield
    finally:
        stop(controller)
        stop(bridge)
        if recorder is not None:
            _wait_until_drained(node, recorder_status)
            stop(recorder)
            node.destroy_subscription(status_subscription)


def spin_to_sim_time(node: Node, latest_s: Callable[[], float], until_s: float, deadline: float) -> None:
    """Spin until the latest stamp heard reaches ``until_s`` of sim time; ``TimeoutError`` (with how
    far it got) once the monotonic ``deadline`` passes."""
    if not spin_until(node, lambda: latest_s() >= until_s, deadline - time.monotonic()):
        raise TimeoutError(f"sim time reached only {latest_s():.2f} s of {until_s} s before the session's timeout")


def session_arguments(prog: str, description: str) -> argparse.ArgumentParser:
    """The console-script options every session takes (its own are added by the caller): the
    bundle, the result file, adaptation on or off, the sim's reset seed, a GIF and a bag."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="result file (.npz)")
    parser.add_argument("--adaptation", choices=("on", "off"), default="on")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--gif", type=Path, default=None, help="have the bridge record a GIF here")
    parser.add_argument("--bag", type=Path, default=None, help="record the run's topics to this new MCAP bag")
    return parser


def run_in_own_node(name: str, session: Callable[[Node], SessionResultT]) -> SessionResultT:
    """``session`` run with a fresh rclpy context and node ``name``, both gone afterwards even
    when it raises: a console script's one session."""
    rclpy.init()
    node = rclpy.create_node(name)
    try:
        return session(node)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def save_session(out: Path, diagnostics: object, **arrays: np.ndarray | float) -> None:
    """A session's result as ``out`` (.npz of ``arrays``) and the node's last diagnostics beside it
    (``<out>.diagnostics.json``), for the demo process that launched it to read."""
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    out.with_suffix(".diagnostics.json").write_text(json.dumps(diagnostics, indent=1), encoding="utf-8")
