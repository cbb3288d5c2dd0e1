"""``metarl bench switch``: the robot's own controller through payload switches, over seeds.

Each trained run is exported as the robot's bundle and run in process through the numpy + ONNX
controller the ROS node runs (``metarl_runtime.controllers.load_controller``: the adaptive MPC of a
GrBAL run, the adaptive computed torque of a ``grbal-residual`` run), with adaptation on and off,
beside the task suite's fixed nominal controller, through every switch of ``SWITCH_SCENARIOS_KG``:
0 → 4 kg (the issue's switch; training payloads stop at 3 kg), 0 → 5 kg (the
far end of the extrap split) and 4 → 0 kg (the payload taken away again). A
figure is the mean ± std over training runs of each run's mean over ``--eval-seeds`` reference
trajectories; the headline is the recovery to the error before the switch
(``sim.scenarios.payload_switch``). ``--planner KEY=VALUE`` overrides a planner setting of every
bundle (run-time only: the learned model is the same), so settings are compared on one training.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from benchmarks.machine import describe_machine
from export.onnx_export import export_trained_dynamics
from export.residual_export import export_trained_residual
from metarl_core.model_based.checkpoint import load_checkpoint
from metarl_core.model_based.evaluate import NOMINAL, SWITCH_FIGURES, switch_table
from metarl_core.model_based.residual_model import load_residual_checkpoint
from metarl_core.run.config_loading import read_config_mapping
from metarl_core.run.run_directory import CONFIG_NAME
from metarl_runtime.controllers import load_controller
from sim.baseline_controllers import PandaPDGravityController
from sim.scenarios.payload_switch import (
    RECOVERY_NOTE,
    SWITCH_SCENARIOS_KG,
    ObservationController,
    run_payload_switch,
    summarize,
)
from sim.tasks import PandaTask

EVALUATION_SEED_BASE = 3_000_000
"""Reset seeds of the reference trajectories: far from every training and evaluation seed."""
ADAPTATION_ON = "adaptive controller (robot bundle)"
ADAPTATION_OFF = "same bundle, adaptation off"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``metarl bench switch``."""
    parser.add_argument(
        "--runs", type=Path, nargs="+", required=True, help="trained GrBAL or grbal-residual Panda run directories"
    )
    parser.add_argument("--eval-seeds", type=int, default=3, help="reference trajectories per run")
    parser.add_argument("--planner", nargs="*", default=[], metavar="KEY=VALUE", help="planner overrides (YAML values)")


def parse_overrides(items: Sequence[str]) -> dict[str, object]:
    """``["key=value", ...]`` as a dict, each value parsed as YAML; a malformed item is refused."""
    overrides: dict[str, object] = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise SystemExit(f"metarl bench switch: --planner {item!r}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)
    return overrides


def switch_figures(
    run_dir: Path, eval_seeds: int, overrides: dict[str, object], before_kg: float, after_kg: float
) -> dict[str, dict[str, list[float]]]:
    """``{controller: {figure: [one value per evaluation seed]}}`` of one run and one switch."""
    figures: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        bundle = export_run(run_dir, overrides, Path(scratch) / "bundle")
        for seed in range(eval_seeds):
            controllers = {
                ADAPTATION_ON: load_controller(bundle, "panda", adaptation_enabled=True),
                ADAPTATION_OFF: load_controller(bundle, "panda", adaptation_enabled=False),
                NOMINAL: ObservationController(PandaPDGravityController()),
            }
            rate_hz = controllers[ADAPTATION_ON].runtime.manifest.control_rate_hz
            for name, controller in controllers.items():
                errors, _ = run_payload_switch(
                    controller,
                    seed=EVALUATION_SEED_BASE + seed,
                    before=PandaTask(payload_mass_kg=before_kg),
                    payload_after_kg=after_kg,
                )
                for figure, value in summarize(errors, rate_hz).items():
                    figures.setdefault(name, {}).setdefault(figure, []).append(value)
    return figures


def export_run(run_dir: Path, overrides: dict[str, object], out_dir: Path) -> Path:
    """The run's bundle at ``out_dir``: a GrBAL run with the planner ``overrides`` applied, a
    ``grbal-residual`` run as trained (it has no planner: overrides are refused)."""
    config = run_dir / CONFIG_NAME
    algo = read_config_mapping(config).get("algo", "grbal") if config.exists() else "grbal"
    if algo == "grbal-residual":
        if overrides:
            raise SystemExit(f"metarl bench switch: {run_dir} is a grbal-residual run; --planner does not apply")
        residual, _ = load_residual_checkpoint(run_dir)
        return export_trained_residual(residual, out_dir)
    model, _ = load_checkpoint(run_dir)
    if model.robot.name != "panda":
        raise SystemExit(f"metarl bench switch: {run_dir} is a {model.robot.name} run; the switch is the Panda's")
    return export_trained_dynamics(dataclasses.replace(model, planner={**model.planner, **overrides}), out_dir)


def switch_section(
    runs: Sequence[Path],
    eval_seeds: int,
    overrides: dict[str, object],
    command: str,
    scenarios: Sequence[tuple[float, float]] = SWITCH_SCENARIOS_KG,
) -> str:
    """The markdown section: one table per switch of ``scenarios`` (kg before, after), each row a
    mean ± std over the runs."""
    if eval_seeds < 1:
        raise SystemExit(f"metarl bench switch: --eval-seeds {eval_seeds} must be >= 1")
    lines = [
        f"## Payload switch, the robot's controller (issue 14): {len(runs)} training run(s) × {eval_seeds} "
        "evaluation seed(s)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {describe_machine()} (no figure here is a timing: the machine's load does not change them).",
        "",
        "Runs: " + ", ".join(f"`{r}`" for r in runs) + ". Each run's bundle is run in process through the node's",
        "numpy + ONNX controller; a figure is the mean ± std over runs of each run's mean over evaluation seeds",
        "(`∞ (n of N never settled)`: n runs had an evaluation seed that never recovered). " + RECOVERY_NOTE,
    ]
    targets: list[str] = []
    for before_kg, after_kg in scenarios:
        per_run = [switch_figures(run, eval_seeds, overrides, before_kg, after_kg) for run in runs]
        targets += scenario_targets(per_run, before_kg, after_kg)
        table = {
            name: {figure: [float(np.mean(r[name][figure])) for r in per_run] for figure in SWITCH_FIGURES}
            for name in per_run[0]
        }
        seeds = "; ".join(
            ", ".join("∞" if np.isinf(v) else f"{v:.2f}" for v in r[ADAPTATION_ON]["recovery_s"]) for r in per_run
        )
        lines += [
            "",
            f"**{before_kg:g} → {after_kg:g} kg** (adaptive controller, recovery to before per evaluation seed, runs "
            f"separated by ';': {seeds} s; steady ÷ before per run: "
            + ", ".join(f"{float(np.mean(r[ADAPTATION_ON]['steady_ratio'])):.2f}" for r in per_run)
            + ")",
            "",
            *switch_table(table),
        ]
    lines += [
        "",
        "Issue 14's targets (every evaluation seed of every run for recovery; means over runs otherwise):",
        "",
        "| target | measured | limit | |",
        "|---|---|---|---|",
        *targets,
        "| adaptive ÷ oracle tracking RMSE, heaviest held-out tasks | not measured here: `metarl bench quality` "
        "| ≤ 1.0× | – |",
    ]
    return "\n".join(lines) + "\n"


def scenario_targets(
    per_run: Sequence[dict[str, dict[str, list[float]]]], before_kg: float, after_kg: float
) -> list[str]:
    """The issue's target rows of one switch: error before ÷ the nominal controller's (switches
    from 0 kg), steady ÷ before and the slowest recovery (switches to a payload)."""

    def row(label: str, value: float, limit: float, unit: str) -> str:
        shown = "∞ (never recovered)" if np.isinf(value) else f"{value:.2f}{unit}"
        return f"| {label} | {shown} | ≤ {limit:g}{unit} | {'✓' if value <= limit else '✗'} |"

    switch = f"{before_kg:g} → {after_kg:g} kg"
    rows = []
    if before_kg == 0.0:
        ratio = np.mean(
            [np.mean(r[ADAPTATION_ON]["before_switch"]) / np.mean(r[NOMINAL]["before_switch"]) for r in per_run]
        )
        rows.append(row(f"{switch}: error before ÷ fixed nominal controller's", float(ratio), 3.0, "×"))
    if after_kg > before_kg:
        steady = np.mean([np.mean(r[ADAPTATION_ON]["steady_ratio"]) for r in per_run])
        rows.append(row(f"{switch}: steady after ÷ before", float(steady), 1.5, "×"))
        slowest = max(max(r[ADAPTATION_ON]["recovery_s"]) for r in per_run)
        rows.append(row(f"{switch}: recovery to the error before, slowest seed", slowest, 0.3, " s"))
    return rows


def run(args: argparse.Namespace) -> str:
    """Measure and return the markdown section for BENCHMARKS.md."""
    overrides = parse_overrides(args.planner)
    command = f"metarl bench switch --runs {' '.join(str(r) for r in args.runs)} --eval-seeds {args.eval_seeds}"
    if args.planner:
        command += " --planner " + " ".join(args.planner)
    return switch_section(args.runs, args.eval_seeds, overrides, command)
