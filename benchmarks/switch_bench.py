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
``--adapt-after-command`` runs the controller with the adaptation after the command, for the next
tick (issue 17's option ``adapt_after_publish``: parameters one control period older).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import gymnasium
import numpy as np
import yaml

from benchmarks.machine import describe_machine
from export.onnx_export import export_trained_dynamics
from export.residual_export import NOMINAL_URDF_NAME, export_trained_residual
from metarl_core.model_based.checkpoint import load_checkpoint
from metarl_core.model_based.evaluate import NOMINAL, SWITCH_FIGURES, switch_table
from metarl_core.model_based.residual_model import load_residual_checkpoint
from metarl_core.run.config_loading import read_config_mapping
from metarl_core.run.run_directory import CONFIG_NAME
from metarl_runtime.bundle_manifest import MANIFEST_NAME
from metarl_runtime.controllers import ResidualComputedTorqueController, load_controller
from metarl_runtime.rigid_body import RigidBodyModel
from sim.baseline_controllers import PandaPDGravityController
from sim.panda_payload import GRASP_OFFSET_M, HAND_LINK_NAME, PAYLOAD_RADIUS_M
from sim.scenarios.payload_switch import (
    RECOVERY_NOTE,
    SETTLE_S,
    SWITCH_S,
    SWITCH_SCENARIOS_KG,
    ObservationController,
    run_payload_switch,
    run_tracking_episode,
    summarize,
)
from sim.tasks import PandaTask

EVALUATION_SEED_BASE = 3_000_000
"""Reset seeds of the reference trajectories: far from every training and evaluation seed."""
ORACLE_TASK_SEED = 3_100_000
"""Seed of the held-out (extrap) tasks the oracle comparison samples."""
ORACLE_SAMPLED_TASKS = 16
ORACLE_HEAVIEST = 3
"""The comparison runs the heaviest ``ORACLE_HEAVIEST`` of ``ORACLE_SAMPLED_TASKS`` extrap tasks."""
ORACLE_EPISODE_S = 4.0
ADAPTATION_ON = "adaptive controller (robot bundle)"
ADAPTATION_OFF = "same bundle, adaptation off"
ORACLE = "oracle computed torque (told the payload)"
LATE_ORACLE = "same oracle, told one tick late"
"""The oracle told the new payload one control period after it lands: the soonest a controller
that learns the payload from its sensors can know it (the first reading that shows it arrives
with the tick after the switch), so its recovery is the floor of every such controller's."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``metarl bench switch``."""
    parser.add_argument(
        "--runs", type=Path, nargs="+", required=True, help="trained GrBAL or grbal-residual Panda run directories"
    )
    parser.add_argument("--eval-seeds", type=int, default=3, help="reference trajectories per run")
    parser.add_argument("--planner", nargs="*", default=[], metavar="KEY=VALUE", help="planner overrides (YAML values)")
    parser.add_argument(
        "--adapt-after-command",
        action="store_true",
        help="adapt after each command, for the next tick (the node's adapt_after_publish; default: before the plan)",
    )
    parser.add_argument(
        "--section", default=None, help="BENCHMARKS.md section to write (default: switch), e.g. switch-gradient"
    )


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
    run_dir: Path,
    eval_seeds: int,
    overrides: dict[str, object],
    before_kg: float,
    after_kg: float,
    adapt_after_command: bool = False,
) -> dict[str, dict[str, list[float]]]:
    """``{controller: {figure: [one value per evaluation seed]}}`` of one run and one switch."""
    figures: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        bundle = export_run(run_dir, overrides, Path(scratch) / "bundle")
        for seed in range(eval_seeds):
            controllers = {
                ADAPTATION_ON: load_controller(
                    bundle, "panda", adaptation_enabled=True, adapt_after_command=adapt_after_command
                ),
                ADAPTATION_OFF: load_controller(bundle, "panda", adaptation_enabled=False),
                NOMINAL: ObservationController(PandaPDGravityController()),
            }
            rate_hz = controllers[ADAPTATION_ON].runtime.manifest.control_rate_hz
            if _algo(run_dir) == "grbal-residual":
                after = PandaTask(payload_mass_kg=after_kg)
                for name, delay_ticks in ((ORACLE, 0), (LATE_ORACLE, 1)):
                    oracle = bundle_oracle(bundle, controllers[ADAPTATION_ON], PandaTask(payload_mass_kg=before_kg))
                    controllers[name] = SwitchingOracle(oracle, after, round(SWITCH_S * rate_hz) + delay_ticks)
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


def _algo(run_dir: Path) -> str:
    config = run_dir / CONFIG_NAME
    return read_config_mapping(config).get("algo", "grbal") if config.exists() else "grbal"


def export_run(run_dir: Path, overrides: dict[str, object], out_dir: Path) -> Path:
    """The run's bundle at ``out_dir``: a GrBAL run with the planner ``overrides`` applied, a
    ``grbal-residual`` run as trained (it has no planner: overrides are refused)."""
    if _algo(run_dir) == "grbal-residual":
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
    adapt_after_command: bool = False,
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
        per_run = [switch_figures(run, eval_seeds, overrides, before_kg, after_kg, adapt_after_command) for run in runs]
        targets += scenario_targets(per_run, before_kg, after_kg)
        table = {
            name: {figure: [float(np.mean(r[name][figure])) for r in per_run] for figure in SWITCH_FIGURES}
            for name in per_run[0]
        }
        oracle = ""
        if ORACLE in per_run[0]:
            late = _per_seed(per_run, LATE_ORACLE)
            oracle = f"; the oracle's: {_per_seed(per_run, ORACLE)} s; told one tick late: {late} s"
        lines += [
            "",
            f"**{before_kg:g} → {after_kg:g} kg** (adaptive controller, recovery to before per evaluation seed, runs "
            f"separated by ';': {_per_seed(per_run, ADAPTATION_ON)} s; steady ÷ before per run: "
            + ", ".join(f"{float(np.mean(r[ADAPTATION_ON]['steady_ratio'])):.2f}" for r in per_run)
            + f"{oracle})",
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
        oracle_row(runs, eval_seeds),
    ]
    return "\n".join(lines) + "\n"


def _per_seed(per_run: Sequence[dict[str, dict[str, list[float]]]], name: str) -> str:
    """``name``'s recovery per evaluation seed, runs separated by ';'."""
    return "; ".join(", ".join("∞" if np.isinf(v) else f"{v:.2f}" for v in r[name]["recovery_s"]) for r in per_run)


def oracle_row(runs: Sequence[Path], eval_seeds: int) -> str:
    """The oracle target's row: measured here for residual runs (the oracle computed torque knows
    the task); GrBAL runs are compared with their oracle model by ``metarl bench quality``."""
    label = "adaptive ÷ oracle tracking RMSE, heaviest held-out tasks"
    if not all(_algo(run) == "grbal-residual" for run in runs):
        return f"| {label} | not measured here: `metarl bench quality` | ≤ 1.0× | – |"
    ratios = oracle_ratios(runs, eval_seeds)
    value = float(np.mean(ratios))
    shown = f"{value:.2f}× (per run: {', '.join(f'{r:.2f}' for r in ratios)}; {ORACLE_HEAVIEST} heaviest extrap tasks)"
    return f"| {label} | {shown} | ≤ 1.0× | {'✓' if value <= 1.0 else '✗'} |"


def scenario_targets(
    per_run: Sequence[dict[str, dict[str, list[float]]]], before_kg: float, after_kg: float
) -> list[str]:
    """The issue's target rows of one switch: error before ÷ the nominal controller's (switches
    from 0 kg), steady ÷ before and the slowest recovery (switches to a payload)."""

    def shown(value: float, unit: str) -> str:
        return "∞ (never recovered)" if np.isinf(value) else f"{value:.2f}{unit}"

    def row(label: str, value: float, limit: float, unit: str) -> str:
        return f"| {label} | {shown(value, unit)} | ≤ {limit:g}{unit} | {'✓' if value <= limit else '✗'} |"

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
        if LATE_ORACLE in per_run[0]:
            floor = max(max(r[LATE_ORACLE]["recovery_s"]) for r in per_run)
            label = f"{switch}: recovery of the oracle told one tick late (the floor of a controller that learns it)"
            rows.append(f"| {label} | {shown(floor, ' s')} | – | – |")
    return rows


def payload_urdf(urdf: str, task: PandaTask) -> str:
    """``urdf`` with the task's payload as a link fixed to the hand: a solid sphere of the task's
    mass at the grasp point plus its centre-of-mass offset (as ``sim.panda_payload`` holds it)."""
    if task.payload_mass_kg <= 0.0:
        return urdf
    x, y, z = np.add(GRASP_OFFSET_M, task.payload_com_offset_m)
    inertia = 0.4 * task.payload_mass_kg * PAYLOAD_RADIUS_M**2
    link = (
        f'<link name="oracle_payload"><inertial><origin xyz="{x} {y} {z}"/><mass value="{task.payload_mass_kg}"/>'
        f'<inertia ixx="{inertia}" ixy="0" ixz="0" iyy="{inertia}" iyz="0" izz="{inertia}"/></inertial></link>'
        f'<joint name="oracle_payload_joint" type="fixed"><parent link="{HAND_LINK_NAME}"/>'
        '<child link="oracle_payload"/></joint>'
    )
    return urdf.replace("</robot>", link + "</robot>")


class OracleComputedTorque:
    """Computed torque that knows the task: the bundle's nominal arm with the payload in its
    rigid-body model and the task's damping and friction, at the bundle's gains. What adaptation
    at best recovers, so adaptive ÷ oracle is how much of it the controller gets back."""

    def __init__(
        self, controller: ResidualComputedTorqueController, urdf: str, held: dict[str, float], task: PandaTask
    ) -> None:
        self.nominal, self.urdf, self.held = controller.runtime.nominal, urdf, held
        self.low, self.high = controller.low, controller.high
        self.set_task(task)
        self.reset()

    def set_task(self, task: PandaTask) -> None:
        """Know ``task`` from now on (the reference's history is kept: a switch mid-run)."""
        arm = self.nominal
        self.arm = dataclasses.replace(
            arm,
            model=RigidBodyModel.from_urdf(payload_urdf(self.urdf, task), arm.model.joint_names, self.held),
            damping_nms=arm.damping_nms * task.joint_damping_scale,
            friction_nm=arm.friction_nm * task.joint_friction_scale,
        )

    def reset(self) -> None:
        self.previous_reference_velocity: np.ndarray | None = None

    def __call__(self, state: np.ndarray, reference: np.ndarray) -> np.ndarray:
        n = self.arm.dof
        state, reference = np.asarray(state, np.float64), np.asarray(reference, np.float64)
        q, qd, q_ref, qd_ref = state[:n], state[n:], reference[:n], reference[n:]
        previous = self.previous_reference_velocity
        qdd_ref = np.zeros(n) if previous is None else (qd_ref - previous) / self.arm.period_s
        self.previous_reference_velocity = qd_ref
        qdd = self.arm.desired_acceleration(q, qd, q_ref, qd_ref, qdd_ref)
        return np.clip(self.arm.feedforward(q, qd, qdd, qd_ref), self.low, self.high)


class SwitchingOracle:
    """The oracle told the new payload from ``switch_tick`` on: at the tick ``run_payload_switch``
    changes the task before, no estimation lag at all, so its recovery is what the arm's torque
    limits and the feedback gains alone allow; one tick later, the soonest a controller that
    learns the payload from its sensors could know it (``LATE_ORACLE``)."""

    def __init__(self, oracle: OracleComputedTorque, after: PandaTask, switch_tick: int) -> None:
        self.oracle, self.after, self.switch_tick = oracle, after, switch_tick
        self.before_arm = oracle.arm
        self.reset()

    def reset(self) -> None:
        self.oracle.reset()
        self.oracle.arm = self.before_arm
        self.tick = 0

    def __call__(self, state: np.ndarray, reference: np.ndarray) -> np.ndarray:
        if self.tick == self.switch_tick:
            self.oracle.set_task(self.after)
        self.tick += 1
        return self.oracle(state, reference)


def bundle_oracle(bundle: Path, controller: ResidualComputedTorqueController, task: PandaTask) -> OracleComputedTorque:
    """The oracle of ``task`` over a residual bundle's own nominal model and gains."""
    urdf = (bundle / NOMINAL_URDF_NAME).read_text(encoding="utf-8")
    held = json.loads((bundle / MANIFEST_NAME).read_text(encoding="utf-8"))["nominal"]["held_positions"]
    return OracleComputedTorque(controller, urdf, held, task)


def heaviest_held_out_tasks() -> list[PandaTask]:
    """The heaviest ``ORACLE_HEAVIEST`` of ``ORACLE_SAMPLED_TASKS`` extrap tasks (3-5 kg payloads,
    damping and friction 2-4× nominal: beyond every training task)."""
    env = gymnasium.make("metarl/PandaPayload-v0")
    try:
        tasks = env.unwrapped.sample_tasks(ORACLE_SAMPLED_TASKS, np.random.default_rng(ORACLE_TASK_SEED), "extrap")
    finally:
        env.close()
    return sorted(tasks, key=lambda task: task.payload_mass_kg)[-ORACLE_HEAVIEST:]


def oracle_ratios(runs: Sequence[Path], eval_seeds: int) -> list[float]:
    """Per residual run: the mean over the heaviest held-out tasks and evaluation seeds of the
    adaptive controller's tracking RMSE (from ``SETTLE_S``, no switch) ÷ the oracle's."""
    tasks = heaviest_held_out_tasks()
    ratios = []
    for run_dir in runs:
        with tempfile.TemporaryDirectory() as scratch:
            bundle = export_run(run_dir, {}, Path(scratch) / "bundle")
            per_task = []
            for task in tasks:
                for seed in range(eval_seeds):
                    adaptive = load_controller(bundle, "panda")
                    oracle = bundle_oracle(bundle, adaptive, task)
                    rmse = [_task_rmse(c, task, EVALUATION_SEED_BASE + seed) for c in (adaptive, oracle)]
                    per_task.append(rmse[0] / rmse[1])
            ratios.append(float(np.mean(per_task)))
    return ratios


def _task_rmse(controller: object, task: PandaTask, seed: int) -> float:
    env = gymnasium.make("metarl/PandaPayload-v0", episode_duration_s=ORACLE_EPISODE_S)
    env.unwrapped.set_task(task)
    obs, _ = env.reset(seed=seed)
    errors, _ = run_tracking_episode(env, obs, controller, lambda _tick: None, False)
    settled = np.asarray(errors)[round(SETTLE_S * env.unwrapped.robot.control_rate_hz) :]
    return float(np.sqrt(np.mean(np.square(settled))))


def run(args: argparse.Namespace) -> str:
    """Measure and return the markdown section for BENCHMARKS.md."""
    overrides = parse_overrides(args.planner)
    command = f"metarl bench switch --runs {' '.join(str(r) for r in args.runs)} --eval-seeds {args.eval_seeds}"
    if args.planner:
        command += " --planner " + " ".join(args.planner)
    if args.adapt_after_command:
        command += " --adapt-after-command"
    if args.section:
        command += f" --section {args.section}"
    return switch_section(args.runs, args.eval_seeds, overrides, command, adapt_after_command=args.adapt_after_command)
