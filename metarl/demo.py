"""``metarl demo``: train in PyBullet, export a bundle, and watch it adapt to a payload change.

The controller under test is the robot's own: the ``adaptive_controller`` ROS 2 node running the
exported bundle, talking over real topics to ``sim_bridge`` (the Panda in PyBullet), each in its
own process, while a 4 kg payload is put into the hand mid-run by setting a ROS parameter. The
run is repeated with adaptation switched off, and the task suite's fixed nominal controller is run
beside them in sim; the tracking errors are tabled, plotted and (adaptive run) rendered as a GIF.
Each ROS run is also recorded as an MCAP bag (``bags/adaptation_on|off``), which ``metarl eval
--bag`` scores offline as it would a robot's log.

``metarl_core`` never imports ROS: the ROS side is the ``payload_switch_session`` console script
of the ``metarl_ros`` package, run as a subprocess. ``--no-ros`` runs the same bundle through the
same numpy controller in-process, for machines without ROS 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from export.onnx_export import export_bundle
from export.residual_export import export_residual_bundle
from metarl.ros_session_process import fresh_bag_path, run_session_process
from metarl_core.model_based.residual_train import run_residual_training
from metarl_core.model_based.train import run_training
from metarl_core.run.checkpoint_io import CHECKPOINT_NAME
from metarl_core.run.config_loading import read_config_mapping
from metarl_runtime.controllers import load_controller
from metarl_runtime.model_runtime import AdaptiveRuntime
from sim.baseline_controllers import PandaPDGravityController
from sim.scenarios.payload_switch import (
    EPISODE_S,
    GIF_EVERY_N_TICKS,
    PAYLOAD_AFTER_KG,
    RECOVERY_NOTE,
    SWITCH_HEADER,
    SWITCH_RULE,
    SWITCH_S,
    SWITCH_SCENARIOS_KG,
    ObservationController,
    plot_switch,
    run_payload_switch,
    summarize,
    switch_row,
)
from sim.tasks import PandaTask

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "panda_residual.yaml"
DEFAULT_MODE_REASON = (
    "adaptive computed torque, RLS with forgetting (configs/panda_residual.yaml: the Panda's rigid-body model plus a "
    "meta-learned residual torque MLP whose output layer is re-solved on the last 8 transitions every tick, the "
    "newest weighted most; 50 rad/s gains). By BENCHMARKS.md (switch: 3 training × 3 evaluation seeds) its error "
    "before a switch is 0.10× the fixed nominal controller's (the GrBAL dynamics-model MPPI of configs/panda_rls.yaml: "
    "7.1×), its steady error after 0 → 4 / 0 → 5 kg 0.99× / 1.01× that level, and its tracking error on the heaviest "
    "held-out tasks 0.73× the oracle computed torque's. The gradient variant (one warm-started SGD step a tick) "
    "also settles back (1.14× / 1.33×) but recovers in up to 1.73 / 2.21 s and tracks the held-out tasks at 2.53× "
    "the oracle's (switch-gradient); the physical one settles at 1.9× / 2.3× (switch-physical). The RLS controller "
    "recovers to its error before within 0.3 s on every seed at 4 kg (slowest 0.24 s) and on 5 of 9 at 5 kg "
    "(slowest 0.45 s, on a trajectory where an oracle told the payload one tick after it lands needs 0.35 s: "
    "joint 6 holds it within 1 N·m of its limit)"
)
"""Why the demo trains ``DEFAULT_CONFIG``: printed with the results (``--config`` picks another)."""
EXTRA_SWITCHES_KG = SWITCH_SCENARIOS_KG[1:]
"""Switches run in process after the main one: beyond the 3 kg training range, and the payload taken away."""
DEMO_SEED = 3
"""Reset seed of the sim (its reference trajectory), the same for every controller."""


def train_and_export(args: argparse.Namespace, default_config: Path, robot: str) -> tuple[Path, AdaptiveRuntime]:
    """Steps 1 and 2 of a GrBAL demo (:func:`train_and_export_bundle`); returns the bundle and its
    loaded runtime (refused if it is not ``robot``'s)."""
    bundle = train_and_export_bundle(args, default_config)
    return bundle, AdaptiveRuntime.load(bundle, expected_robot=robot)


def train_and_export_bundle(args: argparse.Namespace, default_config: Path) -> Path:
    """Steps 1 and 2 of a demo: meta-train ``args.config`` (or ``default_config``) into
    ``args.out/run`` with the trainer its ``algo`` names (GrBAL or the residual torque model), or
    reuse the run already there, and export it to ``args.out/bundle``; returns the bundle."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    run_dir = out / "run"
    config = Path(args.config) if args.config else default_config
    residual = read_config_mapping(config).get("algo") == "grbal-residual"
    if (run_dir / CHECKPOINT_NAME).exists():
        print(f"[1/4] reusing the trained model in {run_dir} (delete it to retrain)")
    else:
        print(f"[1/4] meta-training on {config} ...")
        if residual:
            run_residual_training(config, run_dir, args.device, resume=False)
        else:
            run_training(config, run_dir, args.device, resume=False)
    print("[2/4] exporting the ONNX bundle (adaptation step inside the graph or in closed form) ...")
    if residual:
        return export_residual_bundle(run_dir, out / "bundle")
    return export_bundle(run_dir, out / "bundle")


def run_demo(args: argparse.Namespace) -> None:
    out: Path = Path(args.out)
    bundle = train_and_export_bundle(args, DEFAULT_CONFIG)
    manifest = load_controller(bundle, "panda").runtime.manifest
    rate = manifest.control_rate_hz

    where = "in-process (--no-ros)" if args.no_ros else "over ROS 2: sim_bridge + adaptive_controller"
    print(f"[3/4] payload 0 -> {PAYLOAD_AFTER_KG} kg at t = {SWITCH_S} s, {where} ...")
    runs: dict[str, np.ndarray] = {}
    for adaptation in tqdm((True, False), unit="run"):
        name = f"adaptive controller, adaptation {'on' if adaptation else 'off'}"
        gif = out / "demo.gif" if adaptation else None
        if args.no_ros:
            runs[name] = _run_in_process(bundle, adaptation, gif)
        else:
            runs[name] = _run_over_ros(bundle, out, adaptation, gif)
    runs["fixed nominal controller (sim)"], _ = run_payload_switch(
        ObservationController(PandaPDGravityController()), seed=DEMO_SEED
    )

    print("[4/4] results\n")
    summaries = {n: summarize(e, rate) for n, e in runs.items()}
    table = [SWITCH_HEADER, SWITCH_RULE] + [
        switch_row(f"0 → {PAYLOAD_AFTER_KG:g} kg: {n}", summary) for n, summary in summaries.items()
    ]
    adaptive = {PAYLOAD_AFTER_KG: summaries["adaptive controller, adaptation on"]}
    for before_kg, after_kg in EXTRA_SWITCHES_KG:
        for name, controller in (
            ("adaptive controller (in process)", load_controller(bundle, "panda")),
            ("fixed nominal controller (sim)", ObservationController(PandaPDGravityController())),
        ):
            errors, _ = run_payload_switch(
                controller, DEMO_SEED, before=PandaTask(payload_mass_kg=before_kg), payload_after_kg=after_kg
            )
            summary = summarize(errors, rate)
            table.append(switch_row(f"{before_kg:g} → {after_kg:g} kg: {name}", summary))
            if name.startswith("adaptive") and before_kg == 0.0:
                adaptive[after_kg] = summary
    chosen = (args.config is None or Path(args.config) == DEFAULT_CONFIG) and manifest.mode == "residual"
    mode = DEFAULT_MODE_REASON if chosen else f"{manifest.mode} (the model in {out / 'run'})"
    nominal_before = summaries["fixed nominal controller (sim)"]["before_switch"]
    table += ["", f"Adaptation mode: {mode}.", "", RECOVERY_NOTE, "", *target_lines(adaptive, nominal_before)]
    text = "\n".join(table)
    print(text)
    (out / "results.md").write_text(text + "\n", encoding="utf-8")
    plot_switch(runs, rate, out / "tracking.png", "Panda, payload switched mid-run")
    print(f"\nwrote {out / 'results.md'}, {out / 'tracking.png'}, {out / 'demo.gif'}")
    if not args.no_ros:
        print(f"recorded both runs as MCAP bags in {out / 'bags'}: score one offline with")
        print(f"  metarl eval --bag {out / 'bags' / 'adaptation_on'} --bundle {bundle}")


def target_lines(adaptive: dict[float, dict[str, float]], nominal_before_rad: float) -> list[str]:
    """Issue 14's targets on this demo's runs (one evaluation seed; 3 × 3 seeds: BENCHMARKS.md,
    switch), each met or not with its figure: ``adaptive`` maps the payload after a switch from
    0 kg to the adaptive controller's figures."""

    def line(label: str, value: float, limit: float, unit: str) -> str:
        shown = "∞" if np.isinf(value) else f"{value:.2f}{unit}"
        return f"- {label}: {shown} (≤ {limit:g}{unit}): {'met' if value <= limit else 'NOT met'}"

    first = adaptive[min(adaptive)]
    lines = ["Targets (issue 14; this demo's seed only):"]
    lines.append(
        line("error before the switch ÷ nominal controller's", first["before_switch"] / nominal_before_rad, 3.0, "×")
    )
    for after_kg, summary in sorted(adaptive.items()):
        lines.append(line(f"0 → {after_kg:g} kg: steady after ÷ before", summary["steady_ratio"], 1.5, "×"))
        lines.append(line(f"0 → {after_kg:g} kg: recovery to the error before", summary["recovery_s"], 0.3, " s"))
    lines.append(
        "- adaptive ÷ oracle tracking RMSE, heaviest held-out tasks: measured by `metarl bench switch` (BENCHMARKS.md)"
    )
    return lines


def _run_over_ros(bundle: Path, out: Path, adaptation: bool, gif: Path | None) -> np.ndarray:
    """One ``payload_switch_session`` (the nodes in their own processes); its error per tick."""
    result = out / f"ros_adaptation_{'on' if adaptation else 'off'}.npz"
    command = ["--bundle", str(bundle), "--out", str(result), "--seed", str(DEMO_SEED)]
    command += ["--bag", str(fresh_bag_path(out, adaptation))]
    command += ["--adaptation", "on" if adaptation else "off", "--switch-s", str(SWITCH_S)]
    command += ["--duration-s", str(EPISODE_S), "--payload-kg", str(PAYLOAD_AFTER_KG)]
    if gif is not None:
        command += ["--gif", str(gif)]
    return run_session_process("experiments.payload_switch_session", command, result, out / "logs")["errors"]


def _run_in_process(bundle: Path, adaptation: bool, gif: Path | None) -> np.ndarray:
    """The same bundle and numpy controller as the node (``load_controller``), called directly on the sim."""
    controller = load_controller(bundle, "panda", adaptation_enabled=adaptation)
    errors, frames = run_payload_switch(controller, seed=DEMO_SEED, render=gif is not None)
    if gif is not None:
        import imageio.v2 as imageio

        rate = controller.runtime.manifest.control_rate_hz
        imageio.mimsave(gif, frames, duration=GIF_EVERY_N_TICKS / rate, loop=0)
    return errors
