"""``metarl demo``: train in PyBullet, export a bundle, and watch it adapt to a payload change.

The controller under test is the robot's own code path: the exported bundle run by the
torch-free runtime (``export.runtime_control``). A 4 kg payload is put into the Panda's hand
mid-episode; the same run is repeated with adaptation switched off and with the fixed nominal
controller, and the tracking error of all three is tabled, plotted and (for the adaptive run)
rendered as a GIF.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import sim
from export.onnx_export import export_bundle
from export.runtime import AdaptiveRuntime
from export.runtime_control import OnlineAdaptiveController
from metarl_core.checkpoint import CHECKPOINT_NAME
from metarl_core.training import run_training
from sim.baseline_controllers import PandaPDGravityController
from sim.tasks import PandaTask

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "panda.yaml"
EPISODE_S = 6.0
SWITCH_S = 2.0
PAYLOAD_AFTER_KG = 4.0
GIF_EVERY_N_TICKS = 4


def run_payload_switch(controller, seed: int, render: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
    """Tracking error per tick (rad, RMS over joints) with the payload switched at ``SWITCH_S``."""
    env = sim.make("metarl/PandaPayload-v0", episode_duration_s=EPISODE_S, render_mode="rgb_array" if render else None)
    env.unwrapped.set_task(PandaTask(payload_mass_kg=0.0))
    obs, _ = env.reset(seed=seed)
    state_dim = env.unwrapped.robot.state_dim
    errors, frames = [], []
    switch_tick = round(SWITCH_S * env.unwrapped.robot.control_rate_hz)
    done, tick = False, 0
    while not done:
        if tick == switch_tick:
            env.unwrapped.set_task(dataclasses.replace(env.unwrapped.get_task(), payload_mass_kg=PAYLOAD_AFTER_KG))
        action = controller(obs[:state_dim], obs[state_dim:])
        obs, _, terminated, truncated, info = env.step(action)
        errors.append(info["tracking_error"])
        if render and tick % GIF_EVERY_N_TICKS == 0:
            frames.append(env.render())
        done, tick = terminated or truncated, tick + 1
    env.close()
    return np.asarray(errors), frames


class _ObservationController:
    """Adapts an ``obs -> action`` controller to the ``(state, reference)`` signature."""

    def __init__(self, controller) -> None:
        self.controller = controller

    def __call__(self, state: np.ndarray, reference: np.ndarray) -> np.ndarray:
        return self.controller(np.concatenate([state, reference]))


def summarize(errors: np.ndarray, rate_hz: float) -> dict[str, float]:
    """RMS error before the switch, in the first second after it, and after that (steady)."""
    switch = round(SWITCH_S * rate_hz)
    one_second = round(rate_hz)
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))  # noqa: E731
    return {
        "before_switch": rms(errors[round(0.5 * rate_hz) : switch]),
        "first_second_after": rms(errors[switch : switch + one_second]),
        "steady_after": rms(errors[switch + one_second :]),
    }


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
            ("fixed nominal controller", lambda: _ObservationController(PandaPDGravityController())),
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
    _plot(runs, rate, out / "tracking.png")
    print(f"\nwrote {out / 'results.md'}, {out / 'tracking.png'}, {out / 'demo.gif'}")


def _plot(runs: dict[str, np.ndarray], rate_hz: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4))
    for name, errors in runs.items():
        axis.plot(np.arange(len(errors)) / rate_hz, errors, label=name)
    axis.axvline(SWITCH_S, color="k", linestyle="--", linewidth=1)
    axis.text(SWITCH_S + 0.05, axis.get_ylim()[1] * 0.9, f"payload 0 → {PAYLOAD_AFTER_KG:g} kg")
    axis.set_xlabel("time (s)")
    axis.set_ylabel("RMS joint tracking error (rad)")
    axis.set_title("Panda, payload switched mid-episode")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
