"""``metarl bench tick``: the controller step as the node runs it, back to back and paced.

The step is ``metarl_runtime.controllers.OnlineAdaptiveController`` on the bundle ``metarl bench
ros`` uses (Panda-sized, adapt M=64 n=1, MPPI 96×6, one intra-op thread), with no ROS: the
difference between its paced figure and the node's tick is the node's own work. Paced: one
step per control period, idle in between, as on the robot; back to back: no idle. Each step
is split into its adaptation (``last_adapt_s``) and the rest (plan, glue, checks).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe_machine
from benchmarks.runtime_bench import _model
from export.onnx_export import export_trained_dynamics
from metarl_runtime.controllers import OnlineAdaptiveController
from metarl_runtime.model_runtime import AdaptiveRuntime
from sim.panda_payload import PANDA


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ticks", type=int, default=1000, help="timed steps per schedule (after 100 warm-up)")


def _schedule_ms(controller: OnlineAdaptiveController, ticks: int, pause_s: float) -> dict[str, np.ndarray]:
    """Per-step wall time, adaptation and the rest (ms) over ``ticks`` steps of a seeded input
    stream around the normaliser's mean state, each after ``pause_s`` idle."""
    rng = np.random.default_rng(0)
    manifest = controller.runtime.manifest
    state_mean = manifest.normalizer["state_mean"]
    reference = np.zeros(len(manifest.reference_fields))
    reference[PANDA.reference_slice("reference.position")] = state_mean[PANDA.state_slice("joint_states.position")]
    samples = np.empty((ticks, 2))
    for i in range(-100, ticks):
        state = state_mean + 0.01 * rng.standard_normal(state_mean.shape)
        time.sleep(pause_s)
        started = time.perf_counter()
        controller(state, reference)
        elapsed_s = time.perf_counter() - started
        if i >= 0:
            samples[i] = elapsed_s, controller.last_adapt_s
    samples *= 1e3
    return {"step": samples[:, 0], "adapt": samples[:, 1], "rest": samples[:, 0] - samples[:, 1]}


def run(args: argparse.Namespace) -> str:
    if args.ticks < 1:
        raise ValueError(f"--ticks={args.ticks} must be >= 1")
    with tempfile.TemporaryDirectory() as tmp:
        runtime = AdaptiveRuntime.load(export_trained_dynamics(_model([64, 64], 1), Path(tmp) / "bundle"))
        controller = OnlineAdaptiveController(runtime)
        period_s = 1.0 / runtime.manifest.control_rate_hz
        schedules = {
            "back to back": _schedule_ms(controller, args.ticks, 0.0),
            f"paced, one per {period_s * 1e3:g} ms": _schedule_ms(controller, args.ticks, period_s),
        }
    lines = [
        "## Controller step, back to back and paced (issue 17)",
        "",
        f"Command: `metarl bench tick --ticks {args.ticks}`  ",
        f"Machine: {describe_machine()}; one intra-op thread.",
        "",
        "The node's step without ROS: OnlineAdaptiveController, adapt M=64 n=1 + MPPI 96×6 (the",
        "`metarl bench ros` bundle). *Rest*: the step minus its adaptation (planner graph runs, numpy glue,",
        "checks and clamping). p50 / p99 in ms.",
        "",
        "| schedule | step | adapt | rest |",
        "|---|---|---|---|",
    ]
    for name, figures in schedules.items():
        cells = " | ".join(
            f"{np.percentile(figures[k], 50):.3f} / {np.percentile(figures[k], 99):.3f}"
            for k in ("step", "adapt", "rest")
        )
        lines.append(f"| {name} | {cells} |")
    back, paced = (np.percentile(f["step"], 50) for f in schedules.values())
    lines += ["", f"Paced ÷ back to back (step p50): {paced / back:.2f}×."]
    return "\n".join(lines)
