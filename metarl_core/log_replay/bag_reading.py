"""A recorded bag -> the node's inputs at each control tick, and the commands it sent.

The messages are replayed in log order through the node's own ``SensorAssembler`` (the same
field-by-name mapping, the same refusals), and a tick is taken where the node takes one: at each
joint state with a newer stamp. When the reference is stamped in step with the joint states (a
simulator, a trajectory generator on the robot's clock) the tick waits for the reference of its
own stamp, at most ``REFERENCE_WAIT_S`` of log time, as the node does (``reference_wait_s``).
Commands are ``Float64MultiArray`` (no header), so they are kept with their log time (the
recorder's receive time) and held from there (``log_transitions``).

Every way a bag can be unusable raises a :class:`LogReplayError` subclass whose message names
the path, topic or joint, so that ``metarl eval --bag`` refuses it in one line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from metarl_runtime.bundle_manifest import CommonManifest
from metarl_runtime.sensor_mapping import SensorAssembler, SensorRejected, twist_to_wheel_speeds

REFERENCE_WAIT_S = 0.01
"""The node's default ``reference_wait_s``: how long a tick waits for the reference of its stamp."""
JOINT_STATE = "sensor_msgs/msg/JointState"
TWIST = "geometry_msgs/msg/Twist"
COMMAND_TYPES = ("std_msgs/msg/Float64MultiArray", TWIST)


class LogReplayError(ValueError):
    """A log that cannot be scored; the message names the file, topic or joint and what was expected."""


class NotABagError(LogReplayError):
    """The path is neither a rosbag2 directory (with ``metadata.yaml``) nor a ``.mcap`` file."""


class BagCorruptError(LogReplayError):
    """The bag's files cannot be read to the end (truncated, damaged, undecodable messages)."""


class BagTopicsError(LogReplayError):
    """A topic the bundle needs is absent from the bag, or holds another message type."""


class BagJointsError(LogReplayError):
    """The bag's joint states (or references) never carry all the joints the bundle needs."""


@dataclass(frozen=True)
class LogTopics:
    """Where the node's inputs and output were published (the node's parameter defaults)."""

    joint_states: str = "/joint_states"
    reference: str = "/reference"
    command: str = "/effort_controller/commands"
    imu: str = "/imu"
    odom: str = "/odom"


@dataclass
class RecordedLog:
    """The node's view of a log: a state and reference per tick, and every command sent."""

    path: Path
    stamps_s: np.ndarray
    """Header stamp of each tick's joint state (s)."""
    log_times_s: np.ndarray
    """Log (receive) time of each tick's joint state (s since the bag's first message)."""
    states: np.ndarray
    references: np.ndarray
    command_log_times_s: np.ndarray
    commands: np.ndarray
    """Commands in the bundle's action units (wheel speeds for a twist command), ``(C, A)``."""
    messages: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    """Messages the node's mapping refused, by diagnostics reason."""


def open_reader(path: Path) -> AnyReader:
    """An opened reader over ``path``; :class:`NotABagError` or :class:`BagCorruptError` otherwise.

    A directory must hold ``metadata.yaml`` (rosbag2); a file must be ``.mcap`` (a bare MCAP).
    Bags without stored schemas (sqlite3) are decoded with the ROS 2 Kilted type store, whose
    common messages are those of Humble and Jazzy."""
    path = Path(path)
    if not path.exists():
        raise NotABagError(f"{path}: no such file or directory")
    if path.is_dir() and not (path / "metadata.yaml").exists():
        raise NotABagError(f"{path}: a directory without metadata.yaml is not a rosbag2 bag")
    if path.is_file() and path.suffix != ".mcap":
        raise NotABagError(f"{path}: expected a rosbag2 directory or a .mcap file, got a '{path.suffix}' file")
    reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED))
    try:
        reader.open()
    except Exception as error:  # rosbags raises its own and the storage's (sqlite3, zstd, struct) errors
        raise BagCorruptError(f"{path}: cannot open the bag ({type(error).__name__}: {error})") from None
    return reader


def _topic_types(reader: AnyReader) -> dict[str, str]:
    return {c.topic: c.msgtype for c in reader.connections}


def needed_topics(manifest: CommonManifest, topics: LogTopics) -> dict[str, tuple[str, ...]]:
    """``{topic: accepted message types}`` that scoring ``manifest`` on a log requires."""
    fields = (*manifest.state_fields, *manifest.reference_fields)
    needed: dict[str, tuple[str, ...]] = {topics.command: COMMAND_TYPES}
    if any(f.startswith("joint_states.") for f in fields):
        needed[topics.joint_states] = (JOINT_STATE,)
    if any(f.startswith("imu.") for f in fields):
        needed[topics.imu] = ("sensor_msgs/msg/Imu",)
    if any(f.startswith("odom.") for f in fields):
        needed[topics.odom] = ("nav_msgs/msg/Odometry",)
    twist_reference = any(f.startswith("reference.twist") for f in manifest.reference_fields)
    needed[topics.reference] = (TWIST,) if twist_reference else (JOINT_STATE,)
    return needed


def check_topics(path: Path, available: dict[str, str], needed: dict[str, tuple[str, ...]]) -> None:
    """Refuse a bag that lacks a needed topic or holds it with another type, naming them all."""
    missing = sorted(t for t in needed if t not in available)
    if missing:
        present = ", ".join(f"{t} [{m}]" for t, m in sorted(available.items())) or "none"
        raise BagTopicsError(f"{path}: needed topics {missing} are not in the bag (it has: {present})")
    for topic, types in needed.items():
        if available[topic] not in types:
            raise BagTopicsError(f"{path}: topic {topic} holds {available[topic]}, expected one of {list(types)}")


def _stamp_s(message: Any) -> float:
    return message.header.stamp.sec + message.header.stamp.nanosec * 1e-9


class _TickRecorder:
    """The node's sensor callbacks and tick timing, replayed in log order."""

    def __init__(self, manifest: CommonManifest, topics: LogTopics) -> None:
        self.manifest = manifest
        self.topics = topics
        self.sensors = SensorAssembler(manifest.state_fields, manifest.reference_fields, manifest.joint_names)
        self.refused: Counter[str] = Counter()
        self.last_refusal: dict[str, str] = {}
        self.last_state_stamp_s = float("-inf")
        self.pending: tuple[float, float] | None = None
        """(stamp, log time) of a state waiting for the reference of its own stamp."""
        self.untreated: tuple[float, float] | None = None
        """(stamp, log time) of the newest state, not ticked for want of a complete reference."""
        self.ticks: list[tuple[float, float, np.ndarray, np.ndarray]] = []
        self.commands: list[tuple[float, np.ndarray]] = []

    def _accept(self, topic: str, update: Any, *args: Any) -> bool:
        try:
            update(*args)
        except SensorRejected as error:
            self.refused[error.reason] += 1
            self.last_refusal[topic] = str(error)
            return False
        return True

    def _tick(self, stamp_s: float, log_time_s: float) -> None:
        """A tick on the newest state; until state and reference are complete it stays untreated
        and is taken as soon as they are (the node's watchdog does the same)."""
        self.pending = None
        if self.sensors.state.complete() and self.sensors.reference.complete():
            self.untreated = None
            self.ticks.append(
                (stamp_s, log_time_s, self.sensors.state.values.copy(), self.sensors.reference.values.copy())
            )
        else:
            self.untreated = (stamp_s, log_time_s)

    def message(self, topic: str, message: Any, log_time_s: float) -> None:
        """Apply one message as the node's callback would."""
        if self.pending is not None and log_time_s - self.pending[1] > REFERENCE_WAIT_S:
            self._tick(*self.pending)  # the watchdog's tick: the awaited reference did not come in time
        t = self.topics
        if topic == t.command:
            self._command(message, log_time_s)
        elif topic == t.joint_states:
            stamp_s = _stamp_s(message)
            if not self._accept(
                topic, self.sensors.update_joint_states, message.name, message.position, message.velocity, stamp_s
            ):
                return
            if stamp_s <= self.last_state_stamp_s:
                return
            previous, self.last_state_stamp_s = self.last_state_stamp_s, stamp_s
            if self.sensors.last_stamp_s.get("reference") == previous:
                self.pending = (stamp_s, log_time_s)
            else:
                self._tick(stamp_s, log_time_s)
        elif topic == t.reference:
            if hasattr(message, "header"):
                stamp_s = _stamp_s(message)
                update = self.sensors.update_reference_joints
                if self._accept(topic, update, message.name, message.position, message.velocity, stamp_s):
                    if self.pending is not None and stamp_s == self.pending[0]:
                        self._tick(*self.pending)
            else:
                self._accept(topic, self.sensors.update_reference_twist, message.linear.x, message.angular.z)
        elif topic == t.imu:
            q, w = message.orientation, message.angular_velocity
            self._accept(topic, self.sensors.update_imu, (q.x, q.y, q.z, q.w), (w.x, w.y, w.z), _stamp_s(message))
        elif topic == t.odom:
            tw = message.twist.twist
            linear, angular = (tw.linear.x, tw.linear.y, tw.linear.z), (tw.angular.x, tw.angular.y, tw.angular.z)
            self._accept(topic, self.sensors.update_odom_twist, linear, angular, _stamp_s(message))
        if self.untreated is not None and self.pending is None and self.untreated[0] == self.last_state_stamp_s:
            self._tick(*self.untreated)

    def _command(self, message: Any, log_time_s: float) -> None:
        m = self.manifest
        if hasattr(message, "linear"):
            command = twist_to_wheel_speeds(message.linear.x, message.angular.z, m.wheel_radius_m, m.track_width_m)
        else:
            command = np.asarray(message.data, dtype=np.float64)
        if command.shape != (len(m.action_low),) or not np.all(np.isfinite(command)):
            self.refused["bad_command"] += 1
            self.last_refusal[self.topics.command] = (
                f"command of shape {command.shape}, expected ({len(m.action_low)},)"
            )
            return
        self.commands.append((log_time_s, command))

    def finish(self) -> None:
        if self.pending is not None:
            self._tick(*self.pending)


def read_log(path: Path, manifest: CommonManifest, topics: LogTopics | None = None) -> RecordedLog:
    """Replay ``path`` through the node's sensor mapping for ``manifest``; see the module docstring."""
    path = Path(path)
    topics = topics or LogTopics()
    reader = open_reader(path)
    try:
        needed = needed_topics(manifest, topics)
        check_topics(path, _topic_types(reader), needed)
        recorder = _TickRecorder(manifest, topics)
        connections = [c for c in reader.connections if c.topic in needed]
        start_ns: int | None = None
        messages = 0
        try:
            for connection, log_time_ns, raw in reader.messages(connections=connections):
                start_ns = log_time_ns if start_ns is None else start_ns
                message = reader.deserialize(raw, connection.msgtype)
                recorder.message(connection.topic, message, (log_time_ns - start_ns) * 1e-9)
                messages += 1
        except Exception as error:  # a truncated chunk or record surfaces as the storage's own error
            raise BagCorruptError(
                f"{path}: unreadable after {messages} messages ({type(error).__name__}: {error})"
            ) from None
    finally:
        reader.close()
    recorder.finish()
    _check_joints(path, recorder, topics)
    if not recorder.commands:
        raise BagTopicsError(f"{path}: topic {topics.command} holds no usable command ({recorder.refused})")
    stamps, log_times, states, references = zip(*recorder.ticks, strict=True)
    command_times, commands = zip(*recorder.commands, strict=True)
    return RecordedLog(
        path,
        np.asarray(stamps),
        np.asarray(log_times),
        np.stack(states),
        np.stack(references),
        np.asarray(command_times),
        np.stack(commands),
        messages,
        recorder.refused,
    )


def _check_joints(path: Path, recorder: _TickRecorder, topics: LogTopics) -> None:
    """No tick at all: say which joints or fields never arrived, naming the topic."""
    if recorder.ticks:
        return
    for topic in (topics.joint_states, topics.reference, topics.imu, topics.odom):
        if topic in recorder.last_refusal:
            raise BagJointsError(f"{path}: every message on {topic} was refused: {recorder.last_refusal[topic]}")
    missing = recorder.sensors.state.missing() + recorder.sensors.reference.missing()
    raise BagJointsError(f"{path}: the bag never gives the fields {missing}")
