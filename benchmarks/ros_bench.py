"""``metarl bench ros``: the adaptive controller node's latency, rate, overruns and CPU.

The measurement runs in a subprocess (``python -m experiments.latency_probe``): metarl_core never
imports ROS. The bundle is Panda-sized with the default planner; its weights are random, which
does not change the cost of a tick. ``--bundle`` measures a given Panda bundle instead (e.g. the
demo's residual computed-torque bundle), at its own control rate.
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

import numpy as np

from benchmarks.machine import describe_machine
from benchmarks.runtime_bench import _model
from export.onnx_export import export_trained_dynamics
from metarl_runtime.bundle_manifest import CommonManifest, ResidualBundleManifest, read_manifest

STAGES = ("sensors", "adapt", "plan", "publish")
"""The node's tick stages (``metarl_ros.adaptive_controller.TICK_STAGES``, read from its diagnostics)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=None,
        help="control rates (Hz; default 100 250, with --bundle its own)",
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="a Panda bundle to measure (e.g. demo_output/bundle) instead of the random MPPI one, at its own rate",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement time per rate and repeat")
    parser.add_argument(
        "--repeats", type=int, default=5, help="probe runs per rate (fresh node each): one lucky run meets no target"
    )
    parser.add_argument(
        "--adapt-after-publish",
        action="store_true",
        help="run the node with adapt_after_publish:=true (adapt after the command, for the next tick)",
    )
    parser.add_argument(
        "--node-cpu",
        type=int,
        default=None,
        help="pin the node to this CPU, the probe to the others (issue 17: one core for the node; default: unpinned)",
    )
    parser.add_argument(
        "--cpu-wake-latency-us",
        type=int,
        default=-1,
        help="run the node with cpu_wake_latency_us:=N (no CPU idle state slower to leave while active; "
        "needs /dev/cpu_dma_latency writable; default -1: the system's idle states as they are)",
    )
    parser.add_argument(
        "--section", default=None, help="BENCHMARKS.md section to write (default: ros), e.g. ros-adapt-after-publish"
    )


def _probe(bundle: Path, rate: float, env: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    """One run of ``experiments.latency_probe`` (its own process, a fresh node) with the node
    options of ``args``, its JSON result."""
    command = [sys.executable, "-m", "experiments.latency_probe", "--bundle", str(bundle)]
    command += ["--rate-hz", str(rate), "--seconds", str(args.seconds)]
    if args.adapt_after_publish:
        command.append("--adapt-after-publish")
    if args.node_cpu is not None:
        command += ["--node-cpu", str(args.node_cpu)]
    command += ["--cpu-wake-latency-us", str(args.cpu_wake_latency_us)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.seconds + 150)
    if done.returncode != 0:
        raise RuntimeError(f"latency probe failed at {rate:g} Hz:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _bundle_description(path: Path, manifest: CommonManifest) -> str:
    """What one tick of ``path``'s bundle runs, for the section's note."""
    if isinstance(manifest, ResidualBundleManifest):
        return (
            f"the bundle `{path}`: adaptive computed torque, the nominal arm model in numpy, the residual MLP "
            f"through ONNX Runtime, and its adaptation ({manifest.adaptation_rule}) on M={manifest.window_size}"
        )
    return f"the bundle `{path}` (mode {manifest.mode})"


def run(args: argparse.Namespace) -> str:
    if args.repeats < 1:
        raise ValueError(f"--repeats={args.repeats} must be >= 1")
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env.setdefault("ROS_DOMAIN_ID", str(20 + os.getpid() % 80))
    runs: dict[float, list[dict[str, float]]] = {}
    if args.bundle is not None:
        manifest = read_manifest(args.bundle)
        rate = manifest.control_rate_hz
        if args.rates not in (None, [rate]):
            raise ValueError(f"--rates {args.rates}: the bundle {args.bundle} runs at its own {rate:g} Hz only")
        args.rates = [rate]
        runs[rate] = [_probe(args.bundle.resolve(), rate, env, args) for _ in range(args.repeats)]
        controller = _bundle_description(args.bundle, manifest)
    else:
        args.rates = args.rates or [100.0, 250.0]
        controller = "the tick's MPPI 96×6 through ONNX Runtime, and its adapt M=64 n=1"
        with tempfile.TemporaryDirectory() as tmp:
            model = _model([64, 64], 1)
            for rate in args.rates:
                # The node runs a bundle only at the bundle's own rate: one bundle per probed rate.
                at_rate = dataclasses.replace(model, robot=dataclasses.replace(model.robot, control_rate_hz=rate))
                bundle = export_trained_dynamics(at_rate, Path(tmp) / f"bundle_{rate:g}hz")
                runs[rate] = [_probe(bundle, rate, env, args) for _ in range(args.repeats)]
    load = os.getloadavg()
    rates = " ".join(f"{r:g}" for r in args.rates)
    lines = [
        "## ROS 2: adaptive_controller node, end to end",
        "",
        f"Command: `metarl bench ros {f'--bundle {args.bundle}' if args.bundle else '--rates ' + rates} "
        f"--seconds {args.seconds:g} "
        f"--repeats {args.repeats}{' --adapt-after-publish' if args.adapt_after_publish else ''}"
        f"{f' --node-cpu {args.node_cpu}' if args.node_cpu is not None else ''}"
        f"{f' --cpu-wake-latency-us {args.cpu_wake_latency_us}' if args.cpu_wake_latency_us >= 0 else ''}"
        f"{f' --section {args.section}' if args.section else ''}`  ",
        f"Machine: {describe_machine()}; Fast DDS over loopback, node and probe in separate processes"
        + (
            f" (the node and the floor's echo node pinned to CPU {args.node_cpu} alone, the probe to the others); "
            if args.node_cpu is not None
            else " (unpinned); "
        )
        + (
            f"the node holding the CPUs' wake latency at most {args.cpu_wake_latency_us} µs while active "
            "(`cpu_wake_latency_us`); "
            if args.cpu_wake_latency_us >= 0
            else ""
        )
        + f"load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min).",
        "",
        "Latency: from a JointState being published to the next command arriving (DDS both ways,",
        f"{controller} "
        + (
            "after the publish, for the next tick: `adapt_after_publish:=true`). "
            if args.adapt_after_publish
            else "before the plan, the default). "
        )
        + "Tick: the node's own",
        "time from a tick's start to its command. Achieved rate: commands per second arriving",
        "while the stream runs. Overruns: ticks longer than a period (an adaptation after the publish",
        "included). CPU: the node's user+system time over wall time (1.0 = one core). The node ticks on each new joint",
        "state (and on a watchdog timer when they are late), so its rate follows the sensor stream.",
        f"Each rate runs {args.repeats} times, each a fresh node; *median* is over the repeats, *worst* the largest.",
        "Floor: a JointState ping-pong at the same rate with a bare rclpy echo node in another process, measured",
        "in the same run just before the stream, the node already up (DDS both ways and one executor wake-up,",
        "no work).",
        "",
        "| rate (Hz) | latency p50 (ms), median | latency p99 (ms), median | latency p99 (ms), worst "
        "| p99 of each repeat (ms) | achieved rate (Hz) | tick p50 (ms) | tick p99 (ms), worst | overruns, worst "
        "| node CPU (cores), median | floor p50 / p99 (ms) | worst p99 ÷ floor p99 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rate, results in runs.items():

        def median(key: str, results=results) -> float:
            return float(np.median([r[key] for r in results]))

        def worst(key: str, results=results) -> float:
            return max(r[key] for r in results)

        each = ", ".join(f"{r['latency_p99_ms']:.2f}" for r in results)
        lines.append(
            f"| {rate:g} | {median('latency_p50_ms'):.2f} | {median('latency_p99_ms'):.2f} "
            f"| {worst('latency_p99_ms'):.2f} | {each} | {median('achieved_rate_hz'):.1f} "
            f"| {median('tick_p50_ms'):.2f} | {worst('tick_p99_ms'):.2f} | {worst('overrun_percent'):.2f} % "
            f"| {median('cpu_cores'):.2f} | {median('floor_p50_ms'):.2f} / {median('floor_p99_ms'):.2f} "
            f"| {worst('latency_p99_ms') / median('floor_p99_ms'):.1f}× |"
        )
    lines += [
        "",
        "Where a tick's time goes (the node's own stage timers, p50 / p99 in ms, median over the repeats):",
        "*sensors*: the joint-state callback's conversion and sensor mapping; *adapt*: the adapt graph",
        "and its guard (after *publish*, off the command's latency, with `--adapt-after-publish`);",
        "*plan*: the rest of the controller step (planner graph runs, numpy glue, clamping);",
        "*publish*: building and publishing the command; *outside the node's work*: end-to-end p50 minus",
        "sensors, tick p50 (DDS both ways, deserialisation, executor wake-up), next to the floor p50.",
        "",
        "| rate (Hz) | " + " | ".join(STAGES) + " | tick | outside the node's work (p50) | floor p50 |",
        "|---|" + "---|" * (len(STAGES) + 3),
    ]
    for rate, results in runs.items():

        def stage(name: str, results=results) -> str:
            p50 = np.median([r.get(f"stage.{name}_p50_ms", np.nan) for r in results])
            p99 = np.median([r.get(f"stage.{name}_p99_ms", np.nan) for r in results])
            return f"{p50:.3f} / {p99:.3f}"

        outside = np.median([r["latency_p50_ms"] - r["tick_p50_ms"] - r["stage.sensors_p50_ms"] for r in results])
        tick_p50, tick_p99 = (np.median([r[key] for r in results]) for key in ("tick_p50_ms", "tick_p99_ms"))
        tick = f"{tick_p50:.3f} / {tick_p99:.3f}"
        floor = np.median([r["floor_p50_ms"] for r in results])
        lines.append(
            f"| {rate:g} | " + " | ".join(stage(name) for name in STAGES) + f" | {tick} | {outside:.3f} | {floor:.3f} |"
        )
    return "\n".join(lines)
