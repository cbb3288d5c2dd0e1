"""``metarl bench tick``: the controller step as the node runs it, back to back and paced.

The step is ``metarl_runtime.controllers.OnlineAdaptiveController`` on the bundle ``metarl bench
ros`` uses (Panda-sized, adapt M=64 n=1, MPPI 96×6, one intra-op thread), with no ROS: the
difference between its paced figure and the node's tick is the node's own work. Paced: one
step per control period, idle in between, as on the robot; back to back: no idle; paced,
busy-waiting: the same period, but the wait spent spinning on the clock instead of sleeping, so the
core never idles (what it costs over back to back is then the period's pacing itself, not the
idling: the two paced rows tell the cost of an idle core apart from the step's own). Both tick
orderings are run: adaptation before the plan (the node's default) and after the command (the
node's ``adapt_after_publish``: the call returns the command, then ``after_command`` adapts for
the next tick, as the node does after publishing). *Command* is the call (what the robot waits for), *adapt* the
adaptation wherever it ran, *rest* the command minus any adaptation inside it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.machine import describe_machine
from benchmarks.runtime_bench import _model
from export.onnx_export import export_trained_dynamics
from metarl_runtime.controllers import OnlineAdaptiveController
from metarl_runtime.cpu_wake_latency import CpuWakeLatencyRequest
from metarl_runtime.model_runtime import AdaptiveRuntime
from sim.panda_payload import PANDA

ORDERINGS = {"adapt before the plan": False, "adapt after the command": True}
"""The tick orderings compared (``OnlineAdaptiveController.adapt_after_command``), the node's default first."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ticks", type=int, default=1000, help="timed steps per schedule (after 100 warm-up)")
    parser.add_argument(
        "--cpu-wake-latency-us",
        type=int,
        default=-1,
        help="hold the CPUs' wake latency at most N µs for the whole run, as the node's cpu_wake_latency_us "
        "does while active (needs /dev/cpu_dma_latency writable; default -1: the system's idle states)",
    )
    parser.add_argument("--section", default=None, help="BENCHMARKS.md section to write (default: tick)")


def _busy_wait(seconds: float) -> None:
    """Spin on the clock for ``seconds``: a wait that keeps the core running."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


def _schedule_ms(
    controller: OnlineAdaptiveController, ticks: int, pause_s: float, wait: Callable[[float], None] = time.sleep
) -> dict[str, np.ndarray]:
    """Per step: the call's wall time (the command), the adaptation (in the call or after it),
    the call minus its own adaptation, and call + adaptation after it (ms), over ``ticks`` steps
    of a seeded input stream around the normaliser's mean state, each after ``wait(pause_s)``."""
    rng = np.random.default_rng(0)
    manifest = controller.runtime.manifest
    state_mean = manifest.normalizer["state_mean"]
    reference = np.zeros(len(manifest.reference_fields))
    reference[PANDA.reference_slice("reference.position")] = state_mean[PANDA.state_slice("joint_states.position")]
    samples = np.empty((ticks, 4))
    for i in range(-100, ticks):
        state = state_mean + 0.01 * rng.standard_normal(state_mean.shape)
        wait(pause_s)
        started = time.perf_counter()
        controller(state, reference)
        commanded = time.perf_counter()
        in_call_s = controller.last_adapt_s
        controller.after_command()
        finished = time.perf_counter()
        if i >= 0:
            samples[i] = (
                commanded - started,
                controller.last_adapt_s,
                commanded - started - in_call_s,
                finished - started,
            )
    samples *= 1e3
    return {"command": samples[:, 0], "adapt": samples[:, 1], "rest": samples[:, 2], "whole": samples[:, 3]}


def run(args: argparse.Namespace) -> str:
    if args.ticks < 1:
        raise ValueError(f"--ticks={args.ticks} must be >= 1")
    rows: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    held = args.cpu_wake_latency_us >= 0
    wake_latency = CpuWakeLatencyRequest()
    if held:
        wake_latency.hold(args.cpu_wake_latency_us)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runtime = AdaptiveRuntime.load(export_trained_dynamics(_model([64, 64], 1), Path(tmp) / "bundle"))
            period_s = 1.0 / runtime.manifest.control_rate_hz
            for ordering, after in ORDERINGS.items():
                controller = OnlineAdaptiveController(runtime, adapt_after_command=after)
                rows[ordering, "back to back"] = _schedule_ms(controller, args.ticks, 0.0)
                rows[ordering, f"paced, one per {period_s * 1e3:g} ms"] = _schedule_ms(controller, args.ticks, period_s)
                rows[ordering, f"paced, busy-waiting {period_s * 1e3:g} ms"] = _schedule_ms(
                    controller, args.ticks, period_s, _busy_wait
                )
    finally:
        wake_latency.release()
    lines = [
        "## Controller step, back to back and paced (issue 17)",
        "",
        f"Command: `metarl bench tick --ticks {args.ticks}"
        f"{f' --cpu-wake-latency-us {args.cpu_wake_latency_us}' if held else ''}"
        f"{f' --section {args.section}' if args.section else ''}`  ",
        f"Machine: {describe_machine()}; one intra-op thread"
        + (f"; the CPUs' wake latency held at most {args.cpu_wake_latency_us} µs (PM QoS)." if held else "."),
        "",
        "The node's step without ROS: OnlineAdaptiveController, adapt M=64 n=1 + MPPI 96×6 (the",
        "`metarl bench ros` bundle), in both tick orderings. *Command*: the call, until the command is",
        "returned (what the robot waits for); *adapt*: the adaptation, after the command or inside the call;",
        "*rest*: the command minus an adaptation inside it (planner graph runs, numpy glue, checks and",
        "clamping); *whole*: the call and the adaptation after it (what must fit in a period). p50 / p99 in ms.",
        "",
        "| ordering | schedule | command | adapt | rest | whole |",
        "|---|---|---|---|---|---|",
    ]
    for (ordering, schedule), figures in rows.items():
        cells = " | ".join(
            f"{np.percentile(figures[k], 50):.3f} / {np.percentile(figures[k], 99):.3f}"
            for k in ("command", "adapt", "rest", "whole")
        )
        lines.append(f"| {ordering} | {schedule} | {cells} |")
    lines.append("")
    for ordering in ORDERINGS:
        back, paced, busy = (np.percentile(f["command"], 50) for (o, _), f in rows.items() if o == ordering)
        lines.append(
            f"Paced ÷ back to back (command p50), {ordering}: {paced / back:.2f}×; busy-waiting: {busy / back:.2f}×.  "
        )
    before, after = (np.percentile(f["command"], 50) for (o, s), f in rows.items() if s.startswith("paced, one"))
    lines.append(f"Paced command p50, adapt after the command ÷ adapt before the plan: {after / before:.2f}×.")
    return "\n".join(lines)
