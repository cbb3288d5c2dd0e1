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
from export.runtime import AdaptiveRuntime
from export.runtime_control import OnlineAdaptiveController
from metarl_core.checkpoint import TrainedDynamics
from metarl_core.dynamics_model import ModelShape, Normalizer, init_params
from sim.panda_payload import PANDA

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
T = TYPESTORE.types
JOINT_STATE, COMMAND = "sensor_msgs/msg/JointState", "std_msgs/msg/Float64MultiArray"
PERIOD_NS = 10_000_000


def panda_model(window_size: int = 8, seed: int = 0) -> TrainedDynamics:
    """A randomly initialised Panda model with a small planner (valid, not a good model)."""
    rng = np.random.default_rng(seed)
    half_range = (np.asarray(PANDA.action_high) - np.asarray(PANDA.action_low)) / 2.0
    normalizer = Normalizer.fit(
        rng.normal(size=(64, PANDA.state_dim)).astype(np.float32),
        (rng.normal(size=(64, PANDA.action_dim)) * half_range / 3.0).astype(np.float32),
        (rng.normal(size=(64, PANDA.state_dim)) * 0.01).astype(np.float32),
    )
    shape = ModelShape(PANDA.state_dim, PANDA.action_dim, (16, 16))
    params = init_params(shape, torch.Generator().manual_seed(seed))
    return TrainedDynamics(
        PANDA, shape, params, normalizer, window_size, 1, 0.05, planner={"samples": 16, "horizon": 3}
    )


def panda_bundle(out_dir: Path, window_size: int = 8, seed: int = 0) -> Path:
    """:func:`panda_model` exported as a bundle."""
    return export_trained_dynamics(panda_model(window_size, seed), out_dir)


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
