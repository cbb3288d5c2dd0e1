"""``metarl bench quality``: the evidence of issue 3 (GrBAL-style adaptation), over training seeds.

For each config: train ``--train-seeds`` runs, the config's seed plus 0, 1, ..., each in
``<runs-root>/<config name>/seed_<k>`` beside its own copy of the config (the file it was trained
from). A run whose checkpoint is complete is reused, and one that was killed is resumed, so the
command is cheap to re-run. Every run is evaluated by ``metarl_core.model_based.evaluate`` over
``--eval-seeds`` evaluation seeds (its tables and plots land in its run directory). A figure in
the section is the mean ± std over training seeds of each run's mean over evaluation seeds, and
each of the issue's targets is checked on that mean, with how many seeds meet it on their own.

Training wall time is measured when a run is trained and stored with it (``training_time.json``)
with the machine's load at the start: on a shared machine the neighbours' load is part of it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from benchmarks.machine import describe_machine
from metarl_core.model_based.checkpoint import load_checkpoint
from metarl_core.model_based.config import GrBALConfig
from metarl_core.model_based.evaluate import (
    ADAPTED,
    ADAPTIVE_MPC,
    MB,
    MB_DE,
    MPC_OFF,
    NOMINAL,
    ORACLE_MPC,
    SETTLE_S,
    SWITCH_FIGURES,
    TRACKING_UNITS,
    Evaluation,
    EvaluationSettings,
    change_table,
    control_task_table,
    evaluate_run,
    fine_tuning_note,
    mean_std,
    switch_table,
    terrain_change_note,
    write_evaluation,
)
from metarl_core.model_based.oracle import OracleSettings
from metarl_core.model_based.train import run_training
from metarl_core.run.checkpoint_io import CHECKPOINT_NAME
from sim.scenarios.payload_switch import (
    PAYLOAD_AFTER_KG,
    RECOVERY_NOTE,
)
from sim.scenarios.terrain_change import CHANGE_FIGURES

DEFAULT_CONFIGS = (Path("configs/panda.yaml"), Path("configs/panda_rls.yaml"))
TRAINING_RECORD = "training_time.json"
TRAINING_BUDGET_S = 15 * 60.0
"""The issue's limit on training the default config on a 2-core CPU."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``metarl bench quality``."""
    parser.add_argument("--configs", type=Path, nargs="+", default=list(DEFAULT_CONFIGS), help="GrBAL configs")
    parser.add_argument("--train-seeds", type=int, default=3, help="training runs per config (seed + 0, 1, ...)")
    parser.add_argument("--eval-seeds", type=int, default=3, help="evaluation seeds per training run")
    parser.add_argument("--split", choices=("interp", "extrap"), default="extrap")
    parser.add_argument("--runs-root", type=Path, default=Path("runs/quality"), help="where the seeds' runs go")
    parser.add_argument("--device", default="cpu", help="training device")
    parser.add_argument(
        "--oracle-episodes", type=int, default=None, help="exploration episodes per oracle (default: the evaluation's)"
    )
    parser.add_argument(
        "--oracle-steps", type=int, default=None, help="Adam steps per oracle (default: the evaluation's)"
    )
    parser.add_argument(
        "--section", default="quality", help="BENCHMARKS.md section to write (e.g. quality-husky for Husky configs)"
    )


@dataclass(frozen=True)
class TrainedSeed:
    """One training seed's run and how long training it took."""

    run_dir: Path
    seed: int
    wall_s: float | None
    """Wall time of the training call that finished the run; None if it was not recorded."""
    resumed: bool
    """The run was resumed from a checkpoint, so ``wall_s`` covers only its last part."""
    load_average: float | None
    """1-minute load average when training started (2 cores: above ~1 means neighbours)."""
    torch_threads: int | None = None
    """torch intra-op threads training ran with."""


def train_seed(config_path: Path, offset: int, runs_root: Path, device: str = "cpu") -> TrainedSeed:
    """Train (or reuse, or resume) the run of ``config_path`` with its seed plus ``offset``.

    A run directory trained from another config is refused rather than overwritten: its figures
    would silently belong to different settings.
    """
    base = GrBALConfig.from_yaml(config_path)
    config = dataclasses.replace(base, seed=base.seed + offset)
    run_dir = Path(runs_root) / base.name / f"seed_{offset}"
    record_path = run_dir / TRAINING_RECORD
    existing = (run_dir / CHECKPOINT_NAME).exists()
    if existing:
        model, state = load_checkpoint(run_dir)
        if model.config != config.to_dict():
            changed = sorted(k for k, v in config.to_dict().items() if model.config.get(k) != v)
            raise SystemExit(
                f"metarl bench quality: {run_dir} was trained from another config than {config_path} with seed "
                f"{config.seed} (fields {changed} differ): delete it or pass another --runs-root"
            )
        if state["iteration"] == config.iterations - 1:
            if record_path.exists():
                return TrainedSeed(run_dir, config.seed, **json.loads(record_path.read_text(encoding="utf-8")))
            return TrainedSeed(run_dir, config.seed, None, False, None)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file = run_dir / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
    load_average = os.getloadavg()[0]
    start = time.perf_counter()
    run_training(config_file, run_dir, device, resume=existing)
    record = {
        "wall_s": time.perf_counter() - start,
        "resumed": existing,
        "load_average": load_average,
        "torch_threads": torch.get_num_threads(),
    }
    record_path.write_text(json.dumps(record), encoding="utf-8")
    return TrainedSeed(run_dir, config.seed, **record)


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


@dataclass(frozen=True)
class Target:
    """One of the issue's targets, as a figure of one training seed and its limit."""

    label: str
    figure: Callable[[Evaluation, TrainedSeed], float]
    limit: float
    strict: bool = False
    """``figure < limit`` rather than ``figure <= limit``."""
    unit: str = "×"

    def met(self, value: float) -> bool:
        return value < self.limit if self.strict else value <= self.limit

    def describe(self) -> str:
        return f"{'<' if self.strict else '≤'} {self.limit:g}{self.unit}"


def _ratio(table: str, numerator: str, denominator: str) -> Callable[[Evaluation, TrainedSeed], float]:
    def figure(result: Evaluation, _: TrainedSeed) -> float:
        rows = getattr(result, table)
        return _mean(rows[numerator]) / _mean(rows[denominator])

    return figure


def _terrain_recovery_s(result: Evaluation, _: TrainedSeed) -> float:
    """The adaptive MPC's recovery after the terrain change (NaN: not run)."""
    return _mean(result.terrain_change[ADAPTIVE_MPC]["recovery_s"]) if result.terrain_change else float("nan")


def _switch_figure(figure: str) -> Callable[[Evaluation, TrainedSeed], float]:
    """The adaptive MPC's payload-switch ``figure`` averaged over evaluation seeds (NaN: not run)."""

    def value(result: Evaluation, _: TrainedSeed) -> float:
        return _mean(result.payload_switch[ADAPTIVE_MPC][figure]) if result.payload_switch else float("nan")

    return value


def _training_min(_: Evaluation, trained: TrainedSeed) -> float:
    """Minutes the training took; not known (NaN) for a resumed run, whose record covers its last part."""
    return float("nan") if trained.wall_s is None or trained.resumed else trained.wall_s / 60.0


TARGETS = (
    Target(f"prediction: {ADAPTED} ÷ {MB}", _ratio("prediction", ADAPTED, MB), 0.5),
    Target(f"prediction: {ADAPTED} ÷ {MB_DE}", _ratio("prediction", ADAPTED, MB_DE), 0.8),
    Target(f"control: {ADAPTIVE_MPC} ÷ {MPC_OFF}", _ratio("control", ADAPTIVE_MPC, MPC_OFF), 0.6),
    Target(f"control: {ADAPTIVE_MPC} ÷ {ORACLE_MPC}", _ratio("control", ADAPTIVE_MPC, ORACLE_MPC), 1.3),
    Target(f"control: {ADAPTIVE_MPC} ÷ {NOMINAL}", _ratio("control", ADAPTIVE_MPC, NOMINAL), 1.0, strict=True),
    Target(f"payload switch: {ADAPTIVE_MPC} recovery to before", _switch_figure("recovery_s"), 0.3, unit=" s"),
    Target(f"payload switch: {ADAPTIVE_MPC} steady after ÷ before", _switch_figure("steady_ratio"), 1.5),
    Target("training wall time per seed", _training_min, TRAINING_BUDGET_S / 60.0, unit=" min"),
)
HUSKY_TARGETS = (
    Target(f"prediction: {ADAPTED} ÷ {MB}", _ratio("prediction", ADAPTED, MB), 0.5),
    Target(f"prediction: {ADAPTED} ÷ {MB_DE}", _ratio("prediction", ADAPTED, MB_DE), 0.8),
    Target(f"control: {ADAPTIVE_MPC} ÷ {MPC_OFF}", _ratio("control", ADAPTIVE_MPC, MPC_OFF), 0.5),
    Target(f"control: {ADAPTIVE_MPC} ÷ {NOMINAL} (PI)", _ratio("control", ADAPTIVE_MPC, NOMINAL), 0.7),
    Target(f"control: {ADAPTIVE_MPC} ÷ {ORACLE_MPC}", _ratio("control", ADAPTIVE_MPC, ORACLE_MPC), 1.3),
    Target(f"terrain change: {ADAPTIVE_MPC} recovery to 1.5× before", _terrain_recovery_s, 0.5, unit=" s"),
    Target("training wall time per seed", _training_min, TRAINING_BUDGET_S / 60.0, unit=" min"),
)
"""Issue 13's targets for the Husky (its PI baseline is the fixed nominal controller)."""


def _over_seeds(results: Sequence[Evaluation], table: str) -> dict[str, list[float]]:
    """``{row: [each training seed's mean over its evaluation seeds]}``."""
    rows: dict[str, list[float]] = {}
    for result in results:
        for name, values in getattr(result, table).items():
            rows.setdefault(name, []).append(_mean(values))
    return rows


def config_markdown(config_path: Path, trained: Sequence[TrainedSeed], results: Sequence[Evaluation]) -> str:
    """The targets and tables of one config over its training seeds."""
    first = results[0]
    settings = first.settings
    lines = [
        f"### {first.mode} adaptation: `{config_path}`",
        "",
        "Training seeds "
        + ", ".join(f"{t.seed} (`{t.run_dir}`)" for t in trained)
        + ". Training wall time per seed: "
        + ", ".join(_training_note(t) for t in trained)
        + ".",
        "",
        "| target | measured (mean ± std over training seeds) | limit | seeds meeting it | |",
        "|---|---|---|---|---|",
    ]
    for target in HUSKY_TARGETS if first.robot == "husky" else TARGETS:
        values = [target.figure(result, seed) for result, seed in zip(results, trained, strict=True)]
        known = [v for v in values if not np.isnan(v)]
        if not known:
            lines.append(f"| {target.label} | not measured | {target.describe()} | – | – |")
            continue
        met = sum(target.met(v) for v in known)
        mark = "✓" if target.met(float(np.mean(known))) else "✗"
        lines.append(
            f"| {target.label} | {mean_std(known, 2)}{target.unit} | {target.describe()} "
            f"| {met}/{len(known)} | {mark} |"
        )
    prediction = _over_seeds(results, "prediction")
    adapted = _mean(prediction[ADAPTED])
    lines += [
        "",
        f"Prediction: normalised MSE on K={first.future_window} future transitions after adapting on "
        f"M={first.past_window}; {settings.tasks_per_seed} held-out tasks × {settings.windows_per_task} windows "
        "per evaluation seed. " + _fine_tuning_notes(trained, results),
        "",
        "| model | future-window loss | ÷ adapted |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {mean_std(v)} | {_mean(v) / adapted:.2f} |" for name, v in prediction.items()]
    control = _over_seeds(results, "control")
    adaptive = _mean(control[ADAPTIVE_MPC])
    lines += [
        "",
        f"Control: tracking RMSE over {settings.control_episode_s:g} s episodes (after {SETTLE_S:g} s settling) "
        f"on the {settings.control_tasks_per_seed} heaviest-payload tasks of each evaluation seed.",
        "",
        f"| controller | tracking RMSE ({TRACKING_UNITS[first.robot]}) | adaptive ÷ this |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {mean_std(v)} | {adaptive / _mean(v):.2f} |" for name, v in control.items()]
    lines += ["", *control_task_table([r.control_tasks for r in results])]
    if first.payload_switch:
        switch = {
            name: {figure: [_mean(r.payload_switch[name][figure]) for r in results] for figure in SWITCH_FIGURES}
            for name in first.payload_switch
        }
        lines += [
            "",
            f"Payload switch, 0 → {PAYLOAD_AFTER_KG:g} kg mid-episode (oracle: trained on the {PAYLOAD_AFTER_KG:g} kg "
            f"task). Plot of training seed {trained[0].seed}, evaluation seed 0: "
            f"`{trained[0].run_dir / 'payload_switch.png'}`.",
            "",
            *switch_table(switch),
        ]
    if first.terrain_change:
        change = {
            name: {figure: [_mean(r.terrain_change[name][figure]) for r in results] for figure in CHANGE_FIGURES}
            for name in first.terrain_change
        }
        lines += [
            "",
            terrain_change_note()
            + f" Oracle: trained on the patch's task. Plot of training seed {trained[0].seed}, evaluation seed 0: "
            f"`{trained[0].run_dir / 'terrain_change.png'}`.",
            "",
            *change_table(change),
        ]
    return "\n".join(lines)


def _fine_tuning_notes(trained: Sequence[TrainedSeed], results: Sequence[Evaluation]) -> str:
    """How MB+DE adapted: once when every training seed's is the same, else per seed."""
    notes = [fine_tuning_note(result) for result in results]
    if len(set(notes)) == 1:
        return notes[0]
    return " ".join(f"Training seed {t.seed}: {note}" for t, note in zip(trained, notes, strict=True))


def _training_note(trained: TrainedSeed) -> str:
    if trained.wall_s is None:
        return "not recorded"
    note = f"{trained.wall_s:.0f} s"
    if trained.load_average is not None:
        note += f" (load {trained.load_average:.1f}"
        note += f", {trained.torch_threads} torch threads)" if trained.torch_threads else ")"
    return note + (", resumed: last part only" if trained.resumed else "")


def quality_section(
    configs: Sequence[Path],
    train_seeds: int,
    eval_seeds: int,
    split: str,
    runs_root: Path,
    command: str,
    settings: EvaluationSettings | None = None,
    device: str = "cpu",
) -> str:
    """Train, evaluate and aggregate every config; return the markdown section."""
    if train_seeds < 1 or eval_seeds < 1:
        raise SystemExit(
            f"metarl bench quality: --train-seeds {train_seeds} and --eval-seeds {eval_seeds} must both be >= 1"
        )
    settings = settings or EvaluationSettings()
    # Every run is trained before any is evaluated: evaluation pins torch to one thread, and the
    # training times must all be measured under the same settings.
    trained = {path: [train_seed(path, k, runs_root, device) for k in range(train_seeds)] for path in configs}
    blocks, robots = [], set()
    for config_path, seeds in trained.items():
        results = []
        for seed in seeds:
            result = evaluate_run(seed.run_dir, split, eval_seeds, settings)
            write_evaluation(result)
            results.append(result)
            robots.add(result.robot)
        blocks.append(config_markdown(config_path, seeds, results))
    if robots == {"husky"}:
        intro = _husky_intro(split, train_seeds, eval_seeds, command, settings)
        return "\n".join(intro) + "\n\n" + "\n\n".join(blocks) + "\n"
    lines = [
        f"## Adaptation quality (issue 3): {split} split, {train_seeds} training seeds × {eval_seeds} evaluation seeds",
        "",
        f"Command: `{command}`  ",
        f"Machine: {describe_machine()}.",
        "",
        "A figure is the mean ± std over training seeds of each run's mean over its evaluation seeds (each",
        "evaluation seed draws its own held-out tasks, data and windows). A target is met (✓) when the mean",
        "meets it; *seeds meeting it* counts training seeds that meet it on their own. MB: one model regressed on",
        "all training tasks' data; MB+DE: MB adapted on the same window by the method's own rule (gradient: the",
        "same number of steps, its step size picked on training-task windows; RLS: the same closed form); oracle:",
        f"MB fine-tuned to convergence on {settings.oracle.episodes} exploration episodes of the evaluated task "
        "itself (`metarl_core/model_based/oracle.py`): the best predictor of that task's exploration data, but in",
        "control a reference, not an upper bound (the planner drives the arm elsewhere); MB MPC: the same planner",
        "through MB; the fixed nominal controller knows the payload-free arm only. " + RECOVERY_NOTE + " Load: the",
        "1-minute load average when a run's training started (2 cores: above 1, neighbours shared them); a resumed",
        "run's training time is not known.",
    ]
    return "\n".join(lines) + "\n\n" + "\n\n".join(blocks) + "\n"


def _husky_intro(
    split: str, train_seeds: int, eval_seeds: int, command: str, settings: EvaluationSettings
) -> list[str]:
    """The Husky section's heading and legend (issue 13): its rows, baseline and change experiment."""
    return [
        f"## Husky terrain adaptation (issue 13): {split} split, {train_seeds} training seeds × {eval_seeds} "
        "evaluation seeds",
        "",
        f"Command: `{command}`  ",
        f"Machine: {describe_machine()}.",
        "",
        "`metarl/HuskyTerrain-v0`: twist tracking by wheel-speed commands on unknown friction, slope, terrain,",
        "deck payload and motor strength; the extrap split has the held-out bump terrain, friction 0.2–0.5, slopes",
        "0.1–0.25 rad, 40–80 kg payloads and 0.3–0.6 motor strength, none of which a training task has. The model",
        "sees sensors only (odometry twist, IMU attitude and rates, wheel speeds). A figure is the mean ± std over",
        "training seeds of each run's mean over its evaluation seeds; a target is met (✓) when the mean meets it.",
        "MB, MB+DE and the oracle as in the Panda section (oracle: MB fine-tuned on "
        f"{settings.oracle.episodes} exploration episodes of the task itself); the fixed nominal controller is the",
        "task suite's PI on the body twist through the nominal diff-drive kinematics. The planner's prior is the",
        "action that, held over the horizon, brings the (adapted) model's predicted twist to the reference.",
        "Tracking error: the twist error (m/s), linear error combined with the angular error at the wheel track.",
    ]


def run(args: argparse.Namespace) -> str:
    """Measure and return the markdown section for BENCHMARKS.md."""
    command = (
        f"metarl bench quality --configs {' '.join(str(c) for c in args.configs)} --train-seeds {args.train_seeds} "
        f"--eval-seeds {args.eval_seeds} --split {args.split}"
    )
    if args.runs_root != Path("runs/quality"):
        command += f" --runs-root {args.runs_root}"
    oracle = OracleSettings()
    if args.oracle_episodes is not None:
        oracle = dataclasses.replace(oracle, episodes=args.oracle_episodes)
        command += f" --oracle-episodes {args.oracle_episodes}"
    if args.oracle_steps is not None:
        oracle = dataclasses.replace(oracle, steps=args.oracle_steps)
        command += f" --oracle-steps {args.oracle_steps}"
    if args.section != "quality":
        command += f" --section {args.section}"
    settings = EvaluationSettings(oracle=oracle)
    return quality_section(
        args.configs, args.train_seeds, args.eval_seeds, args.split, args.runs_root, command, settings, args.device
    )
