"""``meta_train``: meta-training from ROS parameters, reporting progress, writing a bundle.

Training is torch work and the ROS package reaches learning only through the bundle runtime,
so this node runs ``metarl train`` and ``metarl export`` as child processes and relays their
progress lines to the log and to ``~/progress`` (std_msgs/String).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import deque

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import String

FAILURE_TAIL_LINES = 20
"""Lines of a failed step's output logged as the error (the traceback and its message)."""


class MetaTrainNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("meta_train", **kwargs)
        self.declare_parameter("config", "configs/panda.yaml", ParameterDescriptor(description="training YAML"))
        self.declare_parameter("run_dir", "runs/panda", ParameterDescriptor(description="checkpoints and metrics"))
        self.declare_parameter("bundle_out", "bundles/panda", ParameterDescriptor(description="bundle directory"))
        self.declare_parameter("device", "cpu", ParameterDescriptor(description="cpu or cuda"))
        self.declare_parameter("resume", False, ParameterDescriptor(description="continue an interrupted run"))
        self.progress = self.create_publisher(String, "~/progress", 10)
        self.done = threading.Event()
        self.returncode = 0
        threading.Thread(target=self.run, daemon=True).start()

    def _run_step(self, command: list[str]) -> int:
        self.get_logger().info("running: " + " ".join(command))
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        tail: deque[str] = deque(maxlen=FAILURE_TAIL_LINES)
        for line in process.stdout:
            # tqdm redraws with carriage returns: report the latest state of each line.
            text = line.strip().split("\r")[-1]
            if text:
                tail.append(text)
                self.progress.publish(String(data=text))
                self.get_logger().info(text, throttle_duration_sec=2.0)
        returncode = process.wait()
        if returncode != 0:  # the progress log is throttled: show why it failed in full
            self.get_logger().error("\n".join(tail))
        return returncode

    def run(self) -> None:
        p = self.get_parameter
        train = [
            sys.executable,
            "-m",
            "metarl_core.cli",
            "train",
            "--config",
            p("config").value,
            "--run-dir",
            p("run_dir").value,
            "--device",
            p("device").value,
        ]
        if p("resume").value:
            train.append("--resume")
        export = [
            sys.executable,
            "-m",
            "metarl_core.cli",
            "export",
            "--run",
            p("run_dir").value,
            "--out",
            p("bundle_out").value,
        ]
        for step in (train, export):
            self.returncode = self._run_step(step)
            if self.returncode != 0:
                self.get_logger().error(f"step failed with exit code {self.returncode}: {' '.join(step)}")
                break
        else:
            self.get_logger().info(f"bundle written to {p('bundle_out').value}")
        self.done.set()


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = MetaTrainNode()
    try:
        while rclpy.ok() and not node.done.is_set():
            rclpy.spin_once(node, timeout_sec=0.2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        code = node.returncode
        node.destroy_node()
        rclpy.try_shutdown()
    sys.exit(code)


if __name__ == "__main__":
    main()
