"""Small bags written with rosbags' own writer, and the bundle they are scored with.

The synthetic Panda log is closed-loop: the node's controller (``OnlineAdaptiveController``, the
code the ROS node runs) answers each state, and the "robot" moves by the bundle's own model at its
meta-parameters. So the unadapted model predicts the log exactly, and the would-be commands are
the logged ones, if and only if the scorer lines states and commands up as the node saw them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from export.onnx_export import export_trained_dynamics
from metarl_core.model_based.adaptation import Adaptation
from metarl_core.model_based.checkpoint import TrainedDynamics
from metarl_core.model_based.dynamics_model import ModelShape, Normalizer, init_params
from metarl_runtime.controllers import OnlineAdaptiveController
from metarl_runtime.model_runtime import AdaptiveRuntime
from metarl_runtime.sensor_mapping import wheel_speeds_to_twist
from sim.husky_terrain import HUSKY
from sim.panda_payload import PANDA
from sim.robot_description import RobotDescription

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
T = TYPESTORE.types
JOINT_STATE, COMMAND = "sensor_msgs/msg/JointState", "std_msgs/msg/Float64MultiArray"
PERIOD_NS = 10_000_000


def panda_model(window_size: int = 8, seed: int = 0, robot: RobotDescription = PANDA) -> TrainedDynamics:
    """A randomly initialised model of ``robot`` with a small planner (valid, not a good model)."""
    rng = np.random.default_rng(seed)
    half_range = (np.asarray(robot.action_high) - np.asarray(robot.action_low)) / 2.0
    # Roll and pitch change slowly, so a closed loop through this model keeps them where a
    # quaternion represents them (|angle| < pi/2) and the IMU mapping gives them back.
    delta_scale = np.array([1e-4 if f in ("imu.roll", "imu.pitch") else 0.01 for f in robot.state_fields])
    states = rng.normal(size=(64, robot.state_dim)).astype(np.float32)
    actions = (rng.normal(size=(64, robot.action_dim)) * half_range / 3.0).astype(np.float32)
    deltas = (rng.normal(size=(64, robot.state_dim)) * delta_scale).astype(np.float32)
    normalizer = Normalizer.fit(states, actions, states + deltas)
    shape = ModelShape(robot.state_dim, robot.action_dim, (16, 16))
    params = init_params(shape, torch.Generator().manual_seed(seed))
    planner = {"samples": 16, "horizon": 3}
    return TrainedDynamics(
        robot, shape, params, normalizer, window_size, Adaptation("gradient", 1), 0.05, planner=planner
    )


def panda_bundle(out_dir: Path, window_size: int = 8, seed: int = 0, robot: RobotDescription = PANDA) -> Path:
    """:func:`panda_model` exported as a bundle."""
    return export_trained_dynamics(panda_model(window_size, seed, robot), out_dir)


@dataclass
class Message:
    topic: str
    msgtype: str
    log_time_ns: int
    message: object


def joint_state(stamp_ns: int, names: list[str], values: np.ndarray) -> object:
    """A stamped JointState: positions then velocities in ``values``."""
    n = len(names)
    header = T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=""
    )
    return T[JOINT_STATE](
        header=header,
        name=list(names),
        position=np.asarray(values[:n], np.float64),
        velocity=np.asarray(values[n:], np.float64),
        effort=np.zeros(0),
    )


def command(values: np.ndarray) -> object:
    layout = T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    return T[COMMAND](layout=layout, data=np.asarray(values, np.float64))


@dataclass
class SyntheticLog:
    messages: list[Message]
    states: np.ndarray
    references: np.ndarray
    commands: np.ndarray


def closed_loop_log(bundle: Path, ticks: int, seed: int = 0, joint_names: list[str] | None = None) -> SyntheticLog:
    """``ticks`` control periods of the node's controller on a robot that moves by the bundle's
    model: per tick the reference, the joint state (same stamp) and 1 ms later the command."""
    runtime = AdaptiveRuntime.load(bundle)
    controller = OnlineAdaptiveController(runtime)
    names = list(joint_names or PANDA.joint_names)
    rng = np.random.default_rng(seed)
    state = (rng.normal(size=PANDA.state_dim) * 0.1).astype(np.float32)
    messages, states, references, commands = [], [], [], []
    for k in range(ticks):
        stamp = k * PERIOD_NS
        reference = np.concatenate([0.3 * np.sin(0.02 * k + np.arange(7)), 0.06 * np.cos(0.02 * k + np.arange(7))])
        messages.append(Message("/reference", JOINT_STATE, stamp + 100_000, joint_state(stamp, names, reference)))
        messages.append(Message("/joint_states", JOINT_STATE, stamp + 200_000, joint_state(stamp, names, state)))
        action = controller(state, reference)
        messages.append(Message("/effort_controller/commands", COMMAND, stamp + 1_200_000, command(action)))
        states.append(state)
        references.append(reference)
        commands.append(action)
        state = runtime.predict(runtime.meta_params, state[None], action[None].astype(np.float32))[0]
    return SyntheticLog(messages, np.array(states), np.array(references), np.array(commands))


def _stamped(msgtype: str, stamp_ns: int, **fields: object) -> object:
    header = T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=""
    )
    return T[msgtype](header=header, **fields)


def _vector(x: float = 0.0, y: float = 0.0, z: float = 0.0) -> object:
    return T["geometry_msgs/msg/Vector3"](x=float(x), y=float(y), z=float(z))


def _twist(linear_x: float, angular_z: float, linear_y: float = 0.0) -> object:
    return T["geometry_msgs/msg/Twist"](linear=_vector(linear_x, linear_y), angular=_vector(z=angular_z))


def husky_messages(stamp_ns: int, state: np.ndarray, reference: np.ndarray) -> list[Message]:
    """The bridge's Husky topics for one tick: Twist reference (no header), odometry, IMU (roll
    and pitch as a quaternion) and wheel joint states."""
    roll, pitch = float(state[3]), float(state[4])
    cr, sr, cp, sp = np.cos(roll / 2), np.sin(roll / 2), np.cos(pitch / 2), np.sin(pitch / 2)
    quaternion = T["geometry_msgs/msg/Quaternion"](x=sr * cp, y=cr * sp, z=-sr * sp, w=cr * cp)
    zeros9, zeros36 = np.zeros(9), np.zeros(36)
    imu = _stamped(
        "sensor_msgs/msg/Imu",
        stamp_ns,
        orientation=quaternion,
        orientation_covariance=zeros9,
        angular_velocity=_vector(state[5], state[6]),
        angular_velocity_covariance=zeros9,
        linear_acceleration=_vector(),
        linear_acceleration_covariance=zeros9,
    )
    pose = T["geometry_msgs/msg/Pose"](
        position=T["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0),
        orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
    )
    odom = _stamped(
        "nav_msgs/msg/Odometry",
        stamp_ns,
        child_frame_id="base_link",
        pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=zeros36),
        twist=T["geometry_msgs/msg/TwistWithCovariance"](
            twist=_twist(state[0], state[2], state[1]), covariance=zeros36
        ),
    )
    wheels = _stamped(
        JOINT_STATE,
        stamp_ns,
        name=list(HUSKY.joint_names),
        position=np.zeros(4),
        velocity=np.asarray(state[7:11], float),
        effort=np.zeros(0),
    )
    return [
        Message("/reference", "geometry_msgs/msg/Twist", stamp_ns + 50_000, _twist(reference[0], reference[1])),
        Message("/odom", "nav_msgs/msg/Odometry", stamp_ns + 100_000, odom),
        Message("/imu", "sensor_msgs/msg/Imu", stamp_ns + 150_000, imu),
        Message("/joint_states", JOINT_STATE, stamp_ns + 200_000, wheels),
    ]


def husky_closed_loop_log(bundle: Path, ticks: int, seed: int = 0) -> SyntheticLog:
    """As :func:`closed_loop_log` for the Husky: the node's wheel-speed commands go out as the body
    twist the node publishes on a twist interface."""
    runtime = AdaptiveRuntime.load(bundle)
    controller = OnlineAdaptiveController(runtime)
    rng = np.random.default_rng(seed)
    state = (rng.normal(size=HUSKY.state_dim) * 0.05).astype(np.float32)
    messages, states, references, commands = [], [], [], []
    for k in range(ticks):
        stamp = k * PERIOD_NS
        reference = np.array([0.5 + 0.2 * np.sin(0.02 * k), 0.3 * np.cos(0.02 * k)])
        messages += husky_messages(stamp, state, reference)
        action = controller(state, reference)
        v, w = wheel_speeds_to_twist(action[0], action[1], HUSKY.wheel_radius_m, HUSKY.track_width_m)
        messages.append(
            Message("/effort_controller/commands", "geometry_msgs/msg/Twist", stamp + 1_200_000, _twist(v, w))
        )
        states.append(state)
        references.append(reference)
        commands.append(action)
        state = runtime.predict(runtime.meta_params, state[None], action[None].astype(np.float32))[0]
    return SyntheticLog(messages, np.array(states), np.array(references), np.array(commands))


def write_bag(path: Path, messages: list[Message], storage: str = "mcap") -> Path:
    """A rosbag2 directory at ``path`` holding ``messages`` (written in log-time order)."""
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    with Writer(path, version=Writer.VERSION_LATEST, storage_plugin=plugin) as writer:
        connections = {}
        for m in sorted(messages, key=lambda m: m.log_time_ns):
            if m.topic not in connections:
                connections[m.topic] = writer.add_connection(m.topic, m.msgtype, typestore=TYPESTORE)
            writer.write(connections[m.topic], m.log_time_ns, TYPESTORE.serialize_cdr(m.message, m.msgtype))
    return path
