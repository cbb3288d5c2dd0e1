"""``metarl bench replay``: how fast ``metarl eval --bag`` gets through a robot log.

A synthetic Panda log (reference, joint state and command per 10 ms tick, as the node's topics
carry them) is written with rosbags' MCAP writer, then timed in the scorer's stages: reading
(decode CDR + the node's sensor mapping + tick timing), segmenting, and scoring (adapt every tick
with M = 64, n = 1, predict K = 16 per row for 2 rows, and the would-be command: one MPPI plan
96 × 6 per tick). The model is Panda-sized with random weights, which does not change the cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from benchmarks.machine import describe_machine
from benchmarks.runtime_bench import _model
from export.onnx_export import export_trained_dynamics
from metarl_core.log_replay.bag_reading import read_log
from metarl_core.log_replay.log_scoring import ScoredModel, score_log
from metarl_core.log_replay.log_transitions import build_segments
from metarl_runtime.model_runtime import AdaptiveRuntime
from sim.panda_payload import PANDA

FUTURE_WINDOW = 16
PERIOD_NS = 10_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ticks", type=int, default=3000, help="control ticks in the log (100 Hz: 30 s)")


def write_synthetic_log(path: Path, ticks: int, seed: int = 0) -> int:
    """A Panda log of ``ticks`` ticks at ``path`` (MCAP rosbag2); returns its message count."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = store.types
    names = list(PANDA.joint_names)
    rng = np.random.default_rng(seed)
    state = np.zeros(PANDA.state_dim)

    def joint_state(stamp_ns: int, values: np.ndarray) -> bytes:
        stamp = types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
        message = types["sensor_msgs/msg/JointState"](
            header=types["std_msgs/msg/Header"](stamp=stamp, frame_id=""),
            name=names,
            position=values[:7].copy(),
            velocity=values[7:].copy(),
            effort=np.zeros(0),
        )
        return store.serialize_cdr(message, "sensor_msgs/msg/JointState")

    with Writer(path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as writer:
        reference_c = writer.add_connection("/reference", "sensor_msgs/msg/JointState", typestore=store)
        state_c = writer.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=store)
        command_c = writer.add_connection(
            "/effort_controller/commands", "std_msgs/msg/Float64MultiArray", typestore=store
        )
        layout = types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
        for k in range(ticks):
            stamp = k * PERIOD_NS
            reference = np.concatenate([0.3 * np.sin(0.01 * k + np.arange(7)), 0.03 * np.cos(0.01 * k + np.arange(7))])
            command = rng.normal(size=7) * 5.0
            writer.write(reference_c, stamp + 100_000, joint_state(stamp, reference))
            writer.write(state_c, stamp + 200_000, joint_state(stamp, state))
            data = types["std_msgs/msg/Float64MultiArray"](layout=layout, data=command)
            writer.write(command_c, stamp + 1_200_000, store.serialize_cdr(data, "std_msgs/msg/Float64MultiArray"))
            state = state + np.concatenate([state[7:] * 0.01, rng.normal(size=7) * 0.01])
    return 3 * ticks


def run(args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        bundle = export_trained_dynamics(_model([64, 64], 1), Path(tmp) / "bundle")
        runtime = AdaptiveRuntime.load(bundle)
        bag = Path(tmp) / "log"
        messages = write_synthetic_log(bag, args.ticks)
        started = time.perf_counter()
        log = read_log(bag, runtime.manifest)
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        segments, _ = build_segments(
            log, runtime.manifest.control_rate_hz, runtime.manifest.window_size + FUTURE_WINDOW
        )
        segment_s = time.perf_counter() - started
        models = [ScoredModel("adapted", runtime, True), ScoredModel("no adaptation", runtime, False)]
        started = time.perf_counter()
        score_log(models, segments, FUTURE_WINDOW)
        score_s = time.perf_counter() - started
    total_s = read_s + segment_s + score_s
    ticks = len(log.stamps_s)
    lines = [
        "## Log replay: `metarl eval --bag` speed",
        "",
        f"Command: `metarl bench replay --ticks {args.ticks}`  ",
        f"Machine: {describe_machine()}; shared with other jobs while measured, so treat the figures as rough.",
        "",
        f"A synthetic Panda log of {args.ticks} ticks at 100 Hz ({messages} messages: reference, joint state and",
        "command per tick) in an MCAP rosbag2 written by rosbags. Read = decode CDR + the node's sensor mapping +",
        "tick timing; score = the node's adaptation every tick (M = 64, n = 1, through adapt.onnx), K = 16",
        "predictions for 2 rows, and the would-be command (MPPI 96 × 6) per tick.",
        "",
        "| stage | time (s) | messages/s | log seconds per wall second |",
        "|---|---|---|---|",
        f"| read | {read_s:.2f} | {messages / read_s:,.0f} | {ticks / PANDA.control_rate_hz / read_s:.1f} |",
        f"| segment | {segment_s:.3f} | {messages / max(segment_s, 1e-9):,.0f} | |",
        f"| score | {score_s:.2f} | {messages / score_s:,.0f} | {ticks / PANDA.control_rate_hz / score_s:.1f} |",
        f"| all | {total_s:.2f} | {messages / total_s:,.0f} | {ticks / PANDA.control_rate_hz / total_s:.1f} |",
    ]
    return "\n".join(lines)
