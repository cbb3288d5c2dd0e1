"""``metarl demo``: train in PyBullet, export a bundle, and watch it adapt to a payload change.

The controller under test is the robot's own code path: the exported bundle run by the
torch-free runtime (``export.runtime_control``). A 4 kg payload is put into the Panda's hand
mid-episode; the same run is repeated with adaptation switched off and with the fixed nominal
controller, and the tracking error of all three is tabled, plotted and (for the adaptive run)
rendered as a GIF.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tqdm import tqdm

from export.onnx_export import export_bundle
from export.runtime import AdaptiveRuntime
from export.runtime_control import OnlineAdaptiveController
from metarl_core.checkpoint import CHECKPOINT_NAME
from metarl_core.payload_switch import (
    GIF_EVERY_N_TICKS,
    PAYLOAD_AFTER_KG,
    SWITCH_S,
    ObservationController,
    plot_switch,
    run_payload_switch,
    summarize,
)
from metarl_core.training import run_training
from sim.baseline_controllers import PandaPDGravityController

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "panda.yaml"


def run_demo(args: argparse.Namespace) -> None:
    out: Path = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    run_dir = out / "run"
    config = Path(args.config) if args.config else DEFAULT_CONFIG
    if (run_dir / CHECKPOINT_NAME).exists():
        print(f"[1/4] reusing the trained model in {run_dir} (delete it to retrain)")
    else:
        print(f"[1/4] meta-training on {config} ...")
        run_training(config, run_dir, args.device, resume=False)
    print("[2/4] exporting the ONNX bundle (adaptation step inside the graph) ...")
    bundle = export_bundle(run_dir, out / "bundle")
    runtime = AdaptiveRuntime.load(bundle, expected_robot="panda")
    rate = runtime.manifest.control_rate_hz

    print(f"[3/4] payload 0 -> {PAYLOAD_AFTER_KG} kg at t = {SWITCH_S} s, three controllers ...")
    runs = {}
    for name, make in tqdm(
        [
            ("adaptive (bundle, adaptation on)", lambda: OnlineAdaptiveController(runtime, adaptation_enabled=True)),
            ("same bundle, adaptation off", lambda: OnlineAdaptiveController(runtime, adaptation_enabled=False)),
            ("fixed nominal controller", lambda: ObservationController(PandaPDGravityController())),
        ],
        unit="run",
    ):
        errors, frames = run_payload_switch(make(), seed=0, render=name.startswith("adaptive"))
        runs[name] = errors
        if frames:
            import imageio.v2 as imageio

            imageio.mimsave(out / "demo.gif", frames, duration=GIF_EVERY_N_TICKS / rate, loop=0)

    print("[4/4] results\n")
    table = [
        "| controller | RMS error before switch (rad) | first 1 s after (rad) | steady after (rad) |",
        "|---|---|---|---|",
    ]
    for name, errors in runs.items():
        s = summarize(errors, rate)
        table.append(f"| {name} | {s['before_switch']:.4f} | {s['first_second_after']:.4f} | {s['steady_after']:.4f} |")
    text = "\n".join(table)
    print(text)
    (out / "results.md").write_text(text + "\n", encoding="utf-8")
    plot_switch(runs, rate, out / "tracking.png", "Panda, payload switched mid-episode")
    print(f"\nwrote {out / 'results.md'}, {out / 'tracking.png'}, {out / 'demo.gif'}")
