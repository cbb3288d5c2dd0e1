"""``metarl demo --robot husky``: train the Husky, export its bundle, and watch it meet a terrain change.

The Husky's counterpart of the Panda demo (``metarl.demo``): meta-train on
``metarl/HuskyTerrain-v0`` with ``configs/husky_rls.yaml`` unless ``--config`` says otherwise
(or reuse the trained run), export the ONNX bundle, then drive the terrain-change experiment
(``sim.scenarios.terrain_change``: ordinary ground onto a high-grip patch) with the robot's own
numpy controller over that bundle, adaptation on and off, beside the task suite's PI baseline.
Outputs, as the Panda's: ``results.md``, ``tracking.png`` and ``demo.gif`` (the adaptive run).

Runs in-process: the bundle runtime and controller are exactly those the ROS node wraps, but the
ROS 2 session for the Husky (sim_bridge and node as processes) is not part of this demo yet.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from metarl.demo import train_and_export
from metarl_runtime.controllers import OnlineAdaptiveController
from sim.baseline_controllers import HuskyPIController
from sim.scenarios.payload_switch import GIF_EVERY_N_TICKS, ObservationController
from sim.scenarios.terrain_change import (
    PATCH,
    PATCH_START_M,
    plot_terrain_change,
    run_terrain_change,
    summarize,
)

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "husky_rls.yaml"
"""RLS: on the extrap split its adapted prediction is 0.5× MB, where gradient adaptation gains nothing
(BENCHMARKS.md, quality-husky and quality-husky-rls)."""
DEMO_SEED = 3
"""Reset seed of the sim, the same for every controller."""


def run_husky_demo(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Train (or reuse), export, run the terrain change adaptation on/off and PI; write and return
    the figures per controller (``sim.scenarios.terrain_change.summarize``)."""
    if not args.no_ros:
        raise SystemExit(
            "metarl demo --robot husky: the Husky demo runs the bundle in-process; pass --no-ros "
            "(its ROS 2 session is not written yet)"
        )
    out = Path(args.out)
    _, runtime = train_and_export(args, DEFAULT_CONFIG, "husky")
    rate = runtime.manifest.control_rate_hz

    print(f"[3/4] onto a friction-{PATCH.ground_friction:g} patch {PATCH_START_M:g} m from the start, in-process ...")
    runs: dict[str, np.ndarray] = {}
    crossings: dict[str, float] = {}
    for adaptation in (True, False):
        name = f"adaptive controller, adaptation {'on' if adaptation else 'off'}"
        controller = OnlineAdaptiveController(runtime, adaptation_enabled=adaptation)
        runs[name], crossings[name], frames = run_terrain_change(controller, seed=DEMO_SEED, render=adaptation)
        if adaptation:
            import imageio.v2 as imageio

            imageio.mimsave(out / "demo.gif", frames, duration=GIF_EVERY_N_TICKS / rate, loop=0)
    baseline = "PI baseline (sim)"
    runs[baseline], crossings[baseline], _ = run_terrain_change(
        ObservationController(HuskyPIController()), seed=DEMO_SEED
    )

    print("[4/4] results\n")
    figures = {name: summarize(errors, rate, crossings[name]) for name, errors in runs.items()}
    table = [
        "| controller | RMS error before change (m/s) | first 1 s after (m/s) | steady after (m/s) "
        "| recovery to 1.5× before (s) | crossed at (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in figures.items():
        table.append(
            f"| {name} | {s['before_change']:.4f} | {s['first_second_after']:.4f} | {s['steady_after']:.4f} "
            f"| {s['recovery_s']:.2f} | {s['crossing_s']:.2f} |"
        )
    text = "\n".join(table)
    print(text)
    (out / "results.md").write_text(text + "\n", encoding="utf-8")
    plot_terrain_change(runs, crossings, rate, out / "tracking.png")
    print(f"\nwrote {out / 'results.md'}, {out / 'tracking.png'}, {out / 'demo.gif'}")
    return figures
