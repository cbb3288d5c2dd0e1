"""``metarl demo --robot husky``: train the Husky, export its bundle, and watch it meet a terrain change.

The Husky's counterpart of the Panda demo (``metarl.demo``): meta-train on
``metarl/HuskyTerrain-v0`` with ``configs/husky_rls.yaml`` unless ``--config`` says otherwise
(or reuse the trained run), export the ONNX bundle, then drive the terrain-change experiment
(``sim.scenarios.terrain_change``: ordinary ground onto a high-grip patch) with adaptation on and
off, beside the task suite's PI baseline in sim. Outputs, as the Panda's: ``results.md``,
``tracking.png`` and ``demo.gif`` (the adaptive run).

By default the controller is the robot's own: the ``adaptive_controller`` node on the bundle,
commanding a body twist over real ROS 2 topics to ``sim_bridge`` (the Husky in PyBullet, the patch
applied by the bridge's ``terrain_change`` scenario), each in its own process
(``experiments.terrain_change_session``, run as a child), each run also recorded as an MCAP bag
(``bags/adaptation_on|off``). ``--no-ros`` runs the same bundle through the same numpy controller
in-process. The figures are ``terrain_change.summarize``'s either way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from metarl.demo import train_and_export
from metarl.ros_session_process import fresh_bag_path, run_session_process
from metarl_runtime.controllers import OnlineAdaptiveController
from metarl_runtime.model_runtime import AdaptiveRuntime
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
    """Train (or reuse), export, run the terrain change adaptation on/off (over ROS 2 unless
    ``args.no_ros``) and PI; write and return the figures per controller
    (``sim.scenarios.terrain_change.summarize``)."""
    out = Path(args.out)
    bundle, runtime = train_and_export(args, DEFAULT_CONFIG, "husky")
    rate = runtime.manifest.control_rate_hz

    where = "in-process (--no-ros)" if args.no_ros else "over ROS 2: sim_bridge + adaptive_controller"
    print(f"[3/4] onto a friction-{PATCH.ground_friction:g} patch {PATCH_START_M:g} m from the start, {where} ...")
    runs: dict[str, np.ndarray] = {}
    crossings: dict[str, float] = {}
    for adaptation in (True, False):
        name = f"adaptive controller, adaptation {'on' if adaptation else 'off'}"
        gif = out / "demo.gif" if adaptation else None
        if args.no_ros:
            runs[name], crossings[name] = _run_in_process(runtime, adaptation, gif)
        else:
            runs[name], crossings[name] = _run_over_ros(bundle, out, adaptation, gif)
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
    table += ["", f"Adaptive runs {where}; seed {DEMO_SEED}; adaptation mode {runtime.manifest.mode}."]
    text = "\n".join(table)
    print(text)
    (out / "results.md").write_text(text + "\n", encoding="utf-8")
    plot_terrain_change(runs, crossings, rate, out / "tracking.png")
    print(f"\nwrote {out / 'results.md'}, {out / 'tracking.png'}, {out / 'demo.gif'}")
    if not args.no_ros:
        print(f"recorded both runs as MCAP bags in {out / 'bags'}")
    return figures


def _run_over_ros(bundle: Path, out: Path, adaptation: bool, gif: Path | None) -> tuple[np.ndarray, float]:
    """One ``terrain_change_session`` (the nodes in their own processes): error per tick, crossing (s)."""
    result = out / f"ros_adaptation_{'on' if adaptation else 'off'}.npz"
    command = ["--bundle", str(bundle), "--out", str(result), "--seed", str(DEMO_SEED)]
    command += ["--adaptation", "on" if adaptation else "off", "--bag", str(fresh_bag_path(out, adaptation))]
    if gif is not None:
        command += ["--gif", str(gif)]
    stored = run_session_process("experiments.terrain_change_session", command, result, out / "logs")
    return stored["errors"], float(stored["crossing_s"])


def _run_in_process(runtime: AdaptiveRuntime, adaptation: bool, gif: Path | None) -> tuple[np.ndarray, float]:
    """The same bundle and numpy controller as the node, called directly on the sim."""
    controller = OnlineAdaptiveController(runtime, adaptation_enabled=adaptation)
    errors, crossing_s, frames = run_terrain_change(controller, seed=DEMO_SEED, render=gif is not None)
    if gif is not None:
        import imageio.v2 as imageio

        imageio.mimsave(gif, frames, duration=GIF_EVERY_N_TICKS / runtime.manifest.control_rate_hz, loop=0)
    return errors, crossing_s
