"""``meta_train``: meta-training from ROS parameters, reporting progress, writing a bundle.

Training is torch work and the ROS package reaches learning only through the bundle runtime,
so this node runs ``metarl train`` and ``metarl export`` as child processes and relays their
progress lines to the log and to ``~/progress`` (std_msgs/String).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections import deque

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from std_msgs.msg import String

from metarl_ros.node_lifetime import spin_until_shutdown

FAILURE_TAIL_LINES = 20
"""Lines of a failed step's output logged as the error (the traceback and its message)."""
CHILD_STOP_TIMEOUT_S = 10.0
"""How long a training child has to exit after SIGTERM before it is killed (checkpoints are atomic)."""


class TrainingSteps:
    """``metarl train`` then ``metarl export`` as child processes, stoppable at any moment.

    A worker thread runs the steps and only reads their output into ``events``; every ROS call
    stays in the node's own thread. Each child leads a process group of its own, so stopping it
    also ends the collection workers it started, and a Ctrl-C at the terminal reaches it only
    through ``stop``.
    """

    def __init__(self, steps: list[list[str]]) -> None:
        self.events: queue.Queue[tuple[str, object]] = queue.Queue()
        """("line", text), ("start", command), ("failed", (command, code, tail)), ("done", code)."""
        self._steps = steps
        self._lock = threading.Lock()
        self._stopping = False
        self._process: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Begin the first step in the background."""
        self._thread.start()

    def stop(self) -> None:
        """End the running child (SIGTERM to its group, SIGKILL after ``CHILD_STOP_TIMEOUT_S``), start
        no further step, and wait for the worker thread; idempotent."""
        with self._lock:
            self._stopping = True
            process = self._process
        if process is not None and process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=CHILD_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        code = 0
        for command in self._steps:
            with self._lock:
                if self._stopping:
                    return
                self.events.put(("start", command))
                self._process = subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    bufsize=1,
                    start_new_session=True,
                )
            code = self._relay(self._process)
            with self._lock:
                if self._stopping:
                    return
            if code != 0:
                break
        self.events.put(("done", code))

    def _relay(self, process: subprocess.Popen) -> int:
        tail: deque[str] = deque(maxlen=FAILURE_TAIL_LINES)
        for line in process.stdout:
            # tqdm redraws with carriage returns: report the latest state of each line.
            text = line.strip().split("\r")[-1]
            if text:
                tail.append(text)
                self.events.put(("line", text))
        code = process.wait()
        if code != 0:
            self.events.put(("failed", (process.args, code, list(tail))))
        return code


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:  # it has just exited by itself
        pass


class MetaTrainNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("meta_train", **kwargs)
        self.declare_parameter("config", "configs/panda.yaml", ParameterDescriptor(description="training YAML"))
        self.declare_parameter("run_dir", "runs/panda", ParameterDescriptor(description="checkpoints and metrics"))
        self.declare_parameter("bundle_out", "bundles/panda", ParameterDescriptor(description="bundle directory"))
        self.declare_parameter("device", "cpu", ParameterDescriptor(description="cpu or cuda"))
        self.declare_parameter("resume", False, ParameterDescriptor(description="continue an interrupted run"))
        self.progress = self.create_publisher(String, "~/progress", 10)
        self.returncode: int | None = None
        """The exit status once both steps ran or one failed; None while training."""
        self.steps = TrainingSteps(self._commands())
        self.steps.start()

    def _commands(self) -> list[list[str]]:
        p = self.get_parameter
        cli = [sys.executable, "-m", "metarl.cli"]
        train = [*cli, "train", "--config", p("config").value, "--run-dir", p("run_dir").value]
        train += ["--device", p("device").value] + (["--resume"] if p("resume").value else [])
        export = [*cli, "export", "--run", p("run_dir").value, "--out", p("bundle_out").value]
        return [train, export]

    def report(self) -> None:
        """Publish and log what the steps printed since the last call; set ``returncode`` at the end."""
        while True:
            try:
                kind, value = self.steps.events.get_nowait()
            except queue.Empty:
                return
            if kind == "start":
                self.get_logger().info("running: " + " ".join(value))
            elif kind == "line":
                self.progress.publish(String(data=value))
                self.get_logger().info(value, throttle_duration_sec=2.0)
            elif kind == "failed":  # the progress log is throttled: show why it failed in full
                command, code, tail = value
                self.get_logger().error("\n".join(tail))
                self.get_logger().error(f"step failed with exit code {code}: {' '.join(command)}")
            elif kind == "done":
                if value == 0:
                    self.get_logger().info(f"bundle written to {self.get_parameter('bundle_out').value}")
                self.returncode = value


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = MetaTrainNode()

    def spin() -> None:
        while node.returncode is None:
            rclpy.spin_once(node, timeout_sec=0.2)
            node.report()

    interrupted_run_dir = node.get_parameter("run_dir").value
    spin_until_shutdown(node, spin, node.steps.stop)
    if node.returncode is None:
        # Asked to stop, and stopped cleanly: exit 0, as the other nodes do (launch would call
        # anything else a death). The checkpoint is atomic, so the run can go on.
        print(f"meta_train: training stopped; continue with resume:=true (run_dir {interrupted_run_dir})")
    sys.exit(node.returncode or 0)


if __name__ == "__main__":
    main()
