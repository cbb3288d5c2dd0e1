"""``metarl bench ros``: the adaptive controller node's latency, rate, overruns and CPU.

The measurement runs in a subprocess (``python -m metarl_ros.latency_probe``): metarl_core never
imports ROS. The bundle is Panda-sized with the default planner; its weights are random, which
does not change the cost of a tick.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from export.onnx_export import export_trained_dynamics
from metarl_core.bench.machine import describe_machine
from metarl_core.bench.runtime_bench import _model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 250.0], help="control rates (Hz)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement time per rate")


def run(args: argparse.Namespace) -> str:
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env.setdefault("ROS_DOMAIN_ID", str(20 + os.getpid() % 80))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = _model([64, 64], 1)
        for rate in args.rates:
            # The node runs a bundle only at the bundle's own rate: one bundle per probed rate.
            at_rate = dataclasses.replace(model, robot=dataclasses.replace(model.robot, control_rate_hz=rate))
            bundle = export_trained_dynamics(at_rate, Path(tmp) / f"bundle_{rate:g}hz")
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "metarl_ros.latency_probe",
                    "--bundle",
                    str(bundle),
                    "--rate-hz",
                    str(rate),
                    "--seconds",
                    str(args.seconds),
                ],
                capture_output=True,
                text=True,
                env=env,
                timeout=args.seconds + 120,
            )
            if done.returncode != 0:
                raise RuntimeError(f"latency probe failed at {rate} Hz:\n{done.stderr[-2000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    lines = [
        "## ROS 2: adaptive_controller node, end to end",
        "",
        f"Command: `metarl bench ros --rates {' '.join(f'{r:g}' for r in args.rates)} --seconds {args.seconds:g}`  ",
        f"Machine: {describe_machine()}; Fast DDS over loopback, node and probe in separate processes.",
        "",
        "Latency: from a JointState being published to the next command arriving (DDS both ways, the",
        "tick's adapt M=64 n=1 + MPPI 96×6 through ONNX Runtime). Achieved rate: commands per second arriving",
        "while the stream runs. Overruns: ticks longer than a period. CPU: the",
        "node's user+system time over wall time (1.0 = one core). The node ticks on each new joint",
        "state (and on a watchdog timer when they are late), so its rate follows the sensor stream.",
        "",
        "| rate (Hz) | latency p50 (ms) | latency p99 (ms) | achieved rate (Hz) | tick p50 (ms) | tick p99 (ms) "
        "| overruns | sensor rate (Hz) | node CPU (cores) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rate_hz']:g} | {r['latency_p50_ms']:.2f} | {r['latency_p99_ms']:.2f} | {r['achieved_rate_hz']:.1f} "
            f"| {r['tick_p50_ms']:.2f} | {r['tick_p99_ms']:.2f} | {r['overrun_percent']:.2f} % "
            f"| {r['sensor_rate_hz']:.1f} | {r['cpu_cores']:.2f} |"
        )
    return "\n".join(lines)
