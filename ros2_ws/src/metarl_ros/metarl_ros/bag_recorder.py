"""``bag_recorder``: writes a run's topics to a rosbag2 directory (MCAP by default), as ``ros2 bag record``.

The sim demo has no ``ros2`` command line (ROS 2 comes as pip wheels, without rosbag2), so this
small node records what a user would record on the robot: ``/joint_states``, ``/reference``, the
command topic, ``/imu``, ``/odom``, ``/diagnostics``. It subscribes to each topic *serialized*
(``raw=True``) and hands the CDR bytes unchanged to ``rosbags``' writer, so the bag holds exactly
what went over the wire. Each message is stamped with its publication time (the
``source_timestamp`` of its message info, taken by the publisher's middleware), not the time the
executor got round to the callback, which reorders topics ready in the same wait, nor the
receive time, which lets a state that a command caused (lock-step: the bridge steps on the
command and publishes) arrive over its own DDS reader before the command does: measured on this
machine, one transition in ~250 got the previous command that way. On one machine publication
times keep cause before effect across topics, so the command hold of ``metarl eval --bag`` pairs
every transition as the session saw it. (``ros2 bag record`` on a robot stamps receive time; the
scorer accepts either.) The
result is a valid rosbag2 directory (``metadata.yaml`` + ``.mcap`` with the ROS 2 profile and
the message schemas) that ``ros2 bag info``, Foxglove and ``metarl eval --bag`` open.

Sensor topics are subscribed best effort (they match a best-effort or a reliable publisher);
the others reliable, like their publishers, with deep queues so that a recorder starved of CPU
for a while catches up instead of dropping. ``~/status`` (``std_msgs/String``, JSON, every
0.1 s) says how many messages were written and how many publishers each subscription has
matched, so a session can start the run once every topic is heard and stop the recorder once it
has drained. The writer is closed on shutdown (SIGINT), which writes the MCAP summary and
``metadata.yaml``.
"""

from __future__ import annotations

import importlib
import json
from functools import partial
from pathlib import Path

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.subscription import MessageInfo, Subscription
from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from std_msgs.msg import String

DEFAULT_TOPICS = (
    "/joint_states:sensor_msgs/msg/JointState",
    "/reference:sensor_msgs/msg/JointState",
    "/effort_controller/commands:std_msgs/msg/Float64MultiArray",
    "/diagnostics:diagnostic_msgs/msg/DiagnosticArray",
)
"""``topic:type`` pairs of a Panda run; a Husky run adds ``/imu`` and ``/odom`` and a Twist reference."""
SENSOR_TYPES = ("sensor_msgs/msg/JointState", "sensor_msgs/msg/Imu", "nav_msgs/msg/Odometry")
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
QUEUE_DEPTH = 10_000
"""Messages a subscription holds while the recorder is busy (100 s of one topic at 100 Hz)."""
STATUS_PERIOD_S = 0.1


def parse_topic(entry: str) -> tuple[str, str]:
    """``"/topic:pkg/msg/Type"`` -> ``("/topic", "pkg/msg/Type")``; ValueError naming the entry."""
    topic, _, msgtype = entry.partition(":")
    if not topic.startswith("/") or msgtype.count("/") != 2:
        raise ValueError(f"topics entry {entry!r}: expected '/topic:package/msg/Type'")
    return topic, msgtype


def message_class(msgtype: str) -> type:
    """The rclpy message class of ``pkg/msg/Type`` (ImportError/AttributeError if not installed)."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


class BagRecorderNode(Node):
    """Subscribes to the configured topics and writes every message, serialized, to one bag."""

    def __init__(self, **kwargs) -> None:
        super().__init__("bag_recorder", **kwargs)
        self.declare_parameter("bag_path", "", ParameterDescriptor(description="rosbag2 directory to create"))
        self.declare_parameter("topics", list(DEFAULT_TOPICS), ParameterDescriptor(description="'/topic:pkg/msg/Type'"))
        self.declare_parameter("storage", "mcap", ParameterDescriptor(description="|".join(STORAGES)))
        path = Path(self.get_parameter("bag_path").value)
        storage = self.get_parameter("storage").value
        if not str(path) or str(path) == ".":
            raise ValueError("bag_recorder: parameter bag_path is required")
        if storage not in STORAGES:
            raise ValueError(f"bag_recorder: storage={storage!r} is not one of {sorted(STORAGES)}")
        typestore = get_typestore(Stores.ROS2_KILTED)
        self.writer = Writer(path, version=Writer.VERSION_LATEST, storage_plugin=STORAGES[storage])
        self.writer.open()
        self.messages = 0
        self.recorded_subscriptions: dict[str, Subscription] = {}
        for entry in self.get_parameter("topics").value:
            topic, msgtype = parse_topic(entry)
            connection = self.writer.add_connection(topic, msgtype, typestore=typestore)
            reliability = ReliabilityPolicy.BEST_EFFORT if msgtype in SENSOR_TYPES else ReliabilityPolicy.RELIABLE
            qos = QoSProfile(depth=QUEUE_DEPTH, reliability=reliability)
            self.recorded_subscriptions[topic] = self.create_subscription(
                message_class(msgtype), topic, partial(self.write, connection), qos, raw=True
            )
        self.status = self.create_publisher(String, "~/status", 10)
        self.create_timer(STATUS_PERIOD_S, self.publish_status)
        self.get_logger().info(f"recording {len(self.writer.connections)} topics to {path} ({storage})")

    def write(self, connection: Connection, data: bytes, info: MessageInfo) -> None:
        """One serialized message, at its publication time (ns since the epoch)."""
        self.writer.write(connection, int(info["source_timestamp"]), data)
        self.messages += 1

    def publish_status(self) -> None:
        """``{"messages": written, "publishers": {topic: matched publishers}}`` on ``~/status``."""
        publishers = {t: s.get_publisher_count() for t, s in self.recorded_subscriptions.items()}
        self.status.publish(String(data=json.dumps({"messages": self.messages, "publishers": publishers})))

    def close(self) -> None:
        """Finish the bag (MCAP summary, ``metadata.yaml``); safe to call once at shutdown."""
        self.writer.close()
        self.get_logger().info(f"wrote {self.messages} messages")


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = BagRecorderNode()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
