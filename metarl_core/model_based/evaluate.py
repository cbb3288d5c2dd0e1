"""``metarl eval``: the meta-learned model against its baselines on held-out tasks.

Prediction: on windows of held-out tasks, the loss on the K future transitions of
  - the meta-learned model adapted on the M past ones (the method),
  - the same model without adaptation,
  - MB: one model trained on all tasks' data by plain regression (saved with the run),
  - MB+DE: MB adapted on the M past transitions by the method's own rule: for gradient runs the
    same number of SGD steps, with the one step size that does best on the training tasks'
    windows (the method's learned per-parameter sizes belong to its own parameters); for RLS
    runs the same closed-form last-layer update on MB's features,
  - the oracle: MB fine-tuned to convergence on plenty of that task's own exploration data
    (``metarl_core.model_based.oracle``, which says why this oracle).
Control: tracking RMSE on the heaviest-payload tasks of the adaptive MPC, the same planner
without adaptation, the same planner through MB, through the task's oracle model (neither
adapting), and the task suite's fixed nominal controller. The oracle model predicts the task's
exploration data best, but the planner drives the arm elsewhere, so in control it is a
reference, not an upper bound. Each control task is also reported on its own, so that a task no
controller tracks is told apart from one the method loses on.
Payload switch (Panda runs): a 4 kg payload put into the hand mid-episode
(``sim.scenarios.payload_switch``), the same controllers, the oracle trained on the 4 kg task.
Terrain change (Husky runs): the robot drives from ordinary ground onto a high-grip patch
(``sim.scenarios.terrain_change``), the same controllers, the oracle trained on the patch's task.
Every figure is a mean ± std over evaluation seeds (each seed draws its own tasks and data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

import sim  # noqa: F401  (registers the environment ids)
from metarl_core.model_based.adaptive_mpc import AdaptiveMPCController
from metarl_core.model_based.checkpoint import TrainedDynamics, load_checkpoint
from metarl_core.model_based.dynamics_model import Params, window_loss
from metarl_core.model_based.exploration import ROBOTS, exploration_controller
from metarl_core.model_based.meta_objective import adapted_future_loss
from metarl_core.model_based.oracle import OracleSettings, train_task_oracle
from metarl_core.model_based.replay_buffer import TaskReplayBuffer
from metarl_core.model_based.train import collect_episodes
from sim.panda_payload import PANDA
from sim.scenarios.payload_switch import (
    ERROR_FIGURES,
    PAYLOAD_AFTER_KG,
    SWITCH_FIGURES,
    SWITCH_HEADER,
    SWITCH_RULE,
    ObservationController,
    plot_switch,
    run_payload_switch,
    summarize,
)
from sim.scenarios.terrain_change import CHANGE_FIGURES, PATCH, plot_terrain_change, run_terrain_change
from sim.scenarios.terrain_change import PATCH_START_M as TERRAIN_PATCH_START_M
from sim.scenarios.terrain_change import REFERENCE_ANGULAR_RAD_S as TERRAIN_REFERENCE_RAD_S
from sim.scenarios.terrain_change import REFERENCE_LINEAR_M_S as TERRAIN_REFERENCE_M_S
from sim.scenarios.terrain_change import summarize as summarize_change
from sim.tasks import PandaTask

SETTLE_S = 0.5

ADAPTED = "adapted (meta)"
NO_ADAPTATION = "meta, no adaptation"
MB = "MB"
MB_DE = "MB+DE"
ORACLE = "oracle (trained on the task)"
ADAPTIVE_MPC = "adaptive MPC"
MPC_OFF = "same MPC, adaptation off"
MB_MPC = "MB MPC (no adaptation)"
ORACLE_MPC = "oracle MPC (trained on the task)"
NOMINAL = "fixed nominal controller"
TRACKING_UNITS = {"panda": "rad", "husky": "m/s"}
"""Unit of each robot's tracking error: RMS joint error (Panda), twist error (Husky)."""
FINE_TUNING_STEP_SIZES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
"""The step sizes MB+DE chooses from (gradient runs), on training-task windows."""
FINE_TUNING_WINDOWS = 128
"""Training-task windows that choose MB+DE's step size."""

ORACLE_SEED_BASE = 1_000_000
"""Oracle data seeds start here: far from every seed the evaluation's own episodes use."""
EVALUATION_SEED_BASE = 2_000_000
"""The evaluation's reset and noise seeds start here, above every seed training uses (training
resets are its seed plus task and episode offsets, well below 10⁶), so that no held-out episode
replays a reference trajectory that a model was trained on."""


@dataclass(frozen=True)
class EvaluationSettings:
    """How much an evaluation seed measures; the defaults are the figures in BENCHMARKS.md."""

    tasks_per_seed: int = 4
    """Held-out tasks drawn per evaluation seed (prediction)."""
    windows_per_task: int = 32
    """M + K windows scored per task."""
    control_tasks_per_seed: int = 2
    """The heaviest-payload tasks of a seed that the controllers track on."""
    control_episode_s: float = 3.0
    """Length of each control episode (s)."""
    oracle: OracleSettings = field(default_factory=OracleSettings)
    """Data and training of each task's oracle."""


@dataclass(frozen=True)
class ControlTask:
    """One control episode's task and every controller's tracking RMSE on it: the per-task view
    that tells a task no controller can track apart from one the method loses on."""

    seed: int
    """The evaluation seed that drew the task."""
    task: str
    """The task's ``summary()``."""
    rmse: dict[str, float]
    """``{controller: tracking RMSE}``, in table order."""


@dataclass
class Evaluation:
    """Per-seed figures of one run: ``{row: [one value per evaluation seed]}``."""

    run_dir: Path
    split: str
    seeds: int
    mode: str
    """The run's adaptation rule ("gradient" or "rls")."""
    past_window: int
    future_window: int
    settings: EvaluationSettings
    prediction: dict[str, list[float]] = field(default_factory=dict)
    control: dict[str, list[float]] = field(default_factory=dict)
    payload_switch: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    """``{controller: {figure: per-seed values}}``, figures as in ``SWITCH_FIGURES``; empty
    for robots without the payload-switch experiment."""
    switch_traces: dict[str, np.ndarray] = field(default_factory=dict)
    """Tracking error per tick of evaluation seed 0's payload-switch runs, for the plot."""
    control_rate_hz: float = PANDA.control_rate_hz
    robot: str = PANDA.name
    terrain_change: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    """``{controller: {figure: per-seed values}}``, figures as in ``CHANGE_FIGURES``; Husky runs only."""
    change_traces: dict[str, np.ndarray] = field(default_factory=dict)
    """Tracking error per tick of evaluation seed 0's terrain-change runs, for the plot."""
    change_crossings: dict[str, float] = field(default_factory=dict)
    """When each of those runs crossed onto the patch (s)."""
    fine_tuning_step_size: float | None = None
    """MB+DE's step size (gradient runs; chosen on training-task windows), None for RLS runs."""
    control_tasks: list[ControlTask] = field(default_factory=list)
    """The control episodes' tasks, seed by seed, with each controller's RMSE on them."""


def prediction_losses(
    model: TrainedDynamics,
    mb_params: Params,
    oracle_params: Params,
    buffer: TaskReplayBuffer,
    windows: int,
    rng: np.random.Generator,
    fine_tuning_step_size: float | None = None,
) -> dict[str, float]:
    """Mean future-window loss of each model on ``windows`` of one task's windows; MB+DE adapts
    as the method does (see the module docstring), with ``fine_tuning_step_size`` for gradient runs."""
    config = model.config
    adaptation = model.adaptation
    sampled = buffer.sample_windows(model.window_size, config["future_window"], windows, rng)
    stats = model.normalizer.torch()
    results: dict[str, list[float]] = {ADAPTED: [], NO_ADAPTATION: [], MB: [], MB_DE: [], ORACLE: []}
    if adaptation.takes_step_sizes and fine_tuning_step_size is None:
        raise ValueError("prediction_losses: a gradient run's MB+DE needs its fine_tuning_step_size")
    # The closed form reads no step sizes: MB+DE then passes the method's, unread.
    mb_step_sizes = model.step_sizes if fine_tuning_step_size is None else fine_tuning_step_size
    for i in range(windows):
        window = sampled.at(i).to_torch()
        with torch.no_grad():
            results[ADAPTED].append(
                float(adapted_future_loss(model.params, model.step_sizes, window, stats, adaptation))
            )
            results[NO_ADAPTATION].append(float(window_loss(model.params, *window.future, stats)))
            results[MB].append(float(window_loss(mb_params, *window.future, stats)))
            results[MB_DE].append(float(adapted_future_loss(mb_params, mb_step_sizes, window, stats, adaptation)))
            results[ORACLE].append(float(window_loss(oracle_params, *window.future, stats)))
    return {k: float(np.mean(v)) for k, v in results.items()}


def fine_tuning_step_size(
    model: TrainedDynamics, mb_params: Params, buffers: list[TaskReplayBuffer], rng: np.random.Generator
) -> float:
    """MB+DE's step size for a gradient run: of ``FINE_TUNING_STEP_SIZES``, the one whose
    ``inner_steps`` SGD steps on the past window give the lowest future loss on windows of the
    training tasks (the run's own replay), so the baseline is tuned as well as data allows
    without seeing a held-out task."""
    stats = model.normalizer.torch()
    per_buffer = -(-FINE_TUNING_WINDOWS // len(buffers))
    windows = []
    for buffer in buffers:
        sampled = buffer.sample_windows(model.window_size, model.config["future_window"], per_buffer, rng)
        windows += [sampled.at(i).to_torch() for i in range(per_buffer)]
    losses = {}
    for step_size in FINE_TUNING_STEP_SIZES:
        total = 0.0
        for window in windows[:FINE_TUNING_WINDOWS]:
            with torch.no_grad():
                total += float(adapted_future_loss(mb_params, step_size, window, stats, model.adaptation))
        losses[step_size] = total if np.isfinite(total) else float("inf")
    return min(losses, key=losses.__getitem__)


def held_out_tasks(
    env: Any, split: str, seed: int, settings: EvaluationSettings
) -> tuple[list[Any], np.random.Generator]:
    """The held-out tasks evaluation seed ``seed`` draws (its generator's first draws; the
    prediction windows come after them from the same generator, which is returned with them)."""
    rng = np.random.default_rng(EVALUATION_SEED_BASE + 10_000 + seed)
    return env.unwrapped.sample_tasks(settings.tasks_per_seed, rng, split), rng


def control_task_indices(tasks: list[Any], count: int) -> list[int]:
    """The ``count`` heaviest-payload tasks (the hardest for every controller), heaviest first."""
    return sorted(range(len(tasks)), key=lambda i: -getattr(tasks[i], "payload_mass_kg", 0.0))[:count]


def control_reset_seed(seed: int) -> int:
    """Reset seed of evaluation seed ``seed``'s control episodes (their reference twist or trajectory)."""
    return EVALUATION_SEED_BASE + 30_000 + seed


def change_reset_seed(seed: int) -> int:
    """Reset seed of evaluation seed ``seed``'s payload-switch or terrain-change run."""
    return EVALUATION_SEED_BASE + 40_000 + seed


def tracking_rmse(env: Any, controller: Any, task: Any, seed: int) -> float:
    """RMS tracking error of one episode after a short settling time."""
    env.unwrapped.set_task(task)
    obs, _ = env.reset(seed=seed)
    controller.reset()
    errors, done = [], False
    while not done:
        obs, _, terminated, truncated, info = env.step(controller(obs))
        errors.append(info["tracking_error"])
        done = terminated or truncated
    settle = round(SETTLE_S * env.unwrapped.robot.control_rate_hz)
    return float(np.sqrt(np.mean(np.square(errors[settle:]))))


def _controllers(model: TrainedDynamics, mb_params: Params, oracle_params: Params, seed: int) -> dict[str, Any]:
    """The controllers every control experiment compares, in table order."""
    return {
        ADAPTIVE_MPC: AdaptiveMPCController(model, adapt=True, seed=seed),
        MPC_OFF: AdaptiveMPCController(model, adapt=False, seed=seed),
        MB_MPC: AdaptiveMPCController(model, params=mb_params, adapt=False, seed=seed),
        ORACLE_MPC: AdaptiveMPCController(model, params=oracle_params, adapt=False, seed=seed),
        NOMINAL: ROBOTS[model.robot.name][1](),
    }


def _close(controller: Any) -> None:
    """Release what a controller holds (the nominal one keeps its own PyBullet client)."""
    if hasattr(controller, "close"):
        controller.close()


def evaluate_run(run_dir: Path, split: str, seeds: int, settings: EvaluationSettings | None = None) -> Evaluation:
    """Measure ``run_dir`` on ``split`` over ``seeds`` evaluation seeds (nothing is written)."""
    settings = settings or EvaluationSettings()
    torch.set_num_threads(1)
    model, state = load_checkpoint(Path(run_dir))
    mb_params = state["mb_params"]
    config = model.config
    robot_name = model.robot.name
    stats = model.normalizer.torch()
    noise = config["exploration_noise_fraction"]
    result = Evaluation(
        Path(run_dir),
        split,
        seeds,
        model.adaptation.rule,
        model.window_size,
        config["future_window"],
        settings,
        control_rate_hz=model.robot.control_rate_hz,
        robot=robot_name,
    )
    if model.adaptation.takes_step_sizes:
        tuning_rng = np.random.default_rng(EVALUATION_SEED_BASE)
        result.fine_tuning_step_size = fine_tuning_step_size(model, mb_params, state["replay_buffers"], tuning_rng)
    base = EVALUATION_SEED_BASE
    for seed in range(seeds):
        env = gymnasium.make(config["env_id"], episode_duration_s=config["episode_duration_s"])
        tasks, rng = held_out_tasks(env, split, seed, settings)
        per_seed: dict[str, list[float]] = {}
        oracles: list[Params] = []
        for index, task in enumerate(tasks):
            buffer = TaskReplayBuffer(model.robot.state_dim, model.robot.action_dim)
            explorer = exploration_controller(robot_name, noise, base + 50_000 + seed * 97 + index)
            collect_episodes(env, task, explorer, 1, base + 20_000 + seed * 97 + index, buffer)
            oracle_seed = ORACLE_SEED_BASE + 10_000 * seed + 100 * index
            oracles.append(
                train_task_oracle(env, task, robot_name, mb_params, stats, noise, settings.oracle, oracle_seed)
            )
            for key, value in prediction_losses(
                model, mb_params, oracles[-1], buffer, settings.windows_per_task, rng, result.fine_tuning_step_size
            ).items():
                per_seed.setdefault(key, []).append(value)
        for key, values in per_seed.items():
            result.prediction.setdefault(key, []).append(float(np.mean(values)))

        control_env = gymnasium.make(config["env_id"], episode_duration_s=settings.control_episode_s)
        seed_tasks: list[ControlTask] = []
        for index in control_task_indices(tasks, settings.control_tasks_per_seed):
            on_task: dict[str, float] = {}
            for name, controller in _controllers(model, mb_params, oracles[index], seed).items():
                on_task[name] = tracking_rmse(control_env, controller, tasks[index], control_reset_seed(seed))
                _close(controller)
            seed_tasks.append(ControlTask(seed, tasks[index].summary(), on_task))
        control_env.close()
        result.control_tasks += seed_tasks
        # The seed's control figure of each controller: its mean over the seed's tasks.
        for name in seed_tasks[0].rmse if seed_tasks else ():
            result.control.setdefault(name, []).append(float(np.mean([t.rmse[name] for t in seed_tasks])))

        if robot_name == "panda":
            after = PandaTask(payload_mass_kg=PAYLOAD_AFTER_KG)
            oracle_seed = ORACLE_SEED_BASE + 10_000 * seed + 9_000
            oracle = train_task_oracle(env, after, robot_name, mb_params, stats, noise, settings.oracle, oracle_seed)
            for name, controller in _controllers(model, mb_params, oracle, seed).items():
                errors, _ = run_payload_switch(ObservationController(controller), seed=change_reset_seed(seed))
                figures = summarize(errors, model.robot.control_rate_hz)
                for figure in SWITCH_FIGURES:
                    result.payload_switch.setdefault(name, {}).setdefault(figure, []).append(figures[figure])
                if seed == 0:
                    result.switch_traces[name] = errors
                _close(controller)
        if robot_name == "husky":
            oracle_seed = ORACLE_SEED_BASE + 10_000 * seed + 9_000
            oracle = train_task_oracle(env, PATCH, robot_name, mb_params, stats, noise, settings.oracle, oracle_seed)
            for name, controller in _controllers(model, mb_params, oracle, seed).items():
                errors, crossing_s, _ = run_terrain_change(
                    ObservationController(controller), seed=change_reset_seed(seed)
                )
                figures = summarize_change(errors, model.robot.control_rate_hz, crossing_s)
                for figure in CHANGE_FIGURES:
                    result.terrain_change.setdefault(name, {}).setdefault(figure, []).append(figures[figure])
                if seed == 0:
                    result.change_traces[name], result.change_crossings[name] = errors, crossing_s
                _close(controller)
        env.close()
    return result


def mean_std(values: list[float], digits: int = 4) -> str:
    """``mean ± std``; a value that never settled (inf) is counted, not averaged into a number."""
    values_array = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values_array)
    if finite.all():
        return f"{values_array.mean():.{digits}f} ± {values_array.std():.{digits}f}"
    return f"∞ ({np.count_nonzero(~finite)} of {len(values_array)} never settled)"


def control_task_table(runs: list[list[ControlTask]]) -> list[str]:
    """Per control task, every controller's tracking RMSE, and the adaptive MPC's ratio to the best
    other controller on it. ``runs`` holds one list per training seed; the tasks are the
    evaluation seeds' draws, the same for every training seed, so a cell is the mean ± std over
    training seeds (a bare value for one)."""
    if not runs or not runs[0]:
        return []
    first = runs[0]
    for run in runs[1:]:
        if [(t.seed, t.task) for t in run] != [(t.seed, t.task) for t in first]:
            raise ValueError("control_task_table: the runs were evaluated on different control tasks")
    names = list(first[0].rmse)
    lines = [
        "Per control task (the last column: the adaptive MPC ÷ the best other controller on that task):",
        "",
        "| seed | task | " + " | ".join(names) + " | adaptive ÷ best other |",
        "|---|---|" + "---|" * (len(names) + 1),
    ]
    for i, task in enumerate(first):
        values = {name: [run[i].rmse[name] for run in runs] for name in names}
        others = [float(np.mean(v)) for name, v in values.items() if name != ADAPTIVE_MPC]
        best_other = min((m for m in others if np.isfinite(m)), default=float("nan"))
        cells = " | ".join(mean_std(v, 3) if len(runs) > 1 else f"{v[0]:.3f}" for v in values.values())
        adaptive = float(np.mean(values[ADAPTIVE_MPC]))
        ratio = f"{adaptive / best_other:.2f}" if best_other > 0.0 else "–"
        lines.append(f"| {task.seed} | {task.task} | {cells} | {ratio} |")
    return lines


def switch_table(payload_switch: dict[str, dict[str, list[float]]]) -> list[str]:
    """Markdown rows of the payload-switch figures, one per controller."""
    lines = [SWITCH_HEADER, SWITCH_RULE]
    for name, figures in payload_switch.items():
        cells = [
            mean_std([v * 1e3 for v in figures[f]], 3) if f in ERROR_FIGURES else mean_std(figures[f], 2)
            for f in SWITCH_FIGURES
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def change_table(terrain_change: dict[str, dict[str, list[float]]]) -> list[str]:
    """Markdown rows of the terrain-change figures, one per controller."""
    lines = [
        "| controller | RMS error before change (m/s) | first 1 s after (m/s) | steady after (m/s) "
        "| recovery to 1.5× before (s) | crossed at (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in terrain_change.items():
        crossed = np.isfinite(figures["crossing_s"])
        cells = [_over_crossed(figures[f], crossed, 4) for f in CHANGE_FIGURES[:3]]
        cells += [mean_std(figures["recovery_s"], 2), _over_crossed(figures["crossing_s"], crossed, 2)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _over_crossed(values: list[float], crossed: np.ndarray, digits: int) -> str:
    """``mean ± std`` over the runs whose robot reached the patch, the others counted: their
    errors before and after the change do not exist (NaN), which is not a recovery that never
    settled. Recovery keeps ``mean_std``'s ∞: a robot that never crossed never recovered."""
    kept = [value for value, ok in zip(values, crossed, strict=True) if ok]
    if len(kept) == len(values):
        return mean_std(values, digits)
    missing = f"{len(values) - len(kept)} of {len(values)} never reached the patch"
    return f"{mean_std(kept, digits)} ({missing})" if kept else f"– ({missing})"


def terrain_change_note() -> str:
    """What the terrain-change table measures, in one sentence for the tables."""
    return (
        f"Terrain change: ground of friction 1 onto a high-grip patch (friction {PATCH.ground_friction:g}) "
        f"{TERRAIN_PATCH_START_M:g} m from the start, on a commanded arc of {TERRAIN_REFERENCE_M_S:g} m/s and "
        f"{TERRAIN_REFERENCE_RAD_S:g} rad/s (`sim/scenarios/terrain_change.py`, which says why this grip; "
        "recovery: the 0.1 s-smoothed error back within 1.5× its RMS before the change, floored by its largest "
        "smoothed value before, and staying there to the end of the run; plot `terrain_change.png`)."
    )


def fine_tuning_note(result: Evaluation) -> str:
    """How this run's MB+DE adapted, in one sentence for the tables."""
    if result.fine_tuning_step_size is None:
        return "MB+DE: MB's output layer updated by the same closed-form RLS on MB's features."
    choices = ", ".join(f"{size:g}" for size in FINE_TUNING_STEP_SIZES)
    return (
        f"MB+DE: MB after the method's number of SGD steps, step size {result.fine_tuning_step_size:g} "
        f"(the best of {choices} on training-task windows)."
    )


def evaluation_markdown(result: Evaluation) -> str:
    """The tables of one run's evaluation, as ``metarl eval`` prints and saves them."""
    settings = result.settings
    lines = [
        f"## Evaluation of `{result.run_dir}` on the {result.split} split ({result.seeds} seeds, mean ± std)",
        "",
        f"Command: `metarl eval --run {result.run_dir} --split {result.split} --seeds {result.seeds}`; "
        f"adaptation mode: {result.mode}.",
        "",
        f"Prediction: loss on K={result.future_window} future transitions (normalised MSE) after adapting on "
        f"M={result.past_window}; {settings.tasks_per_seed} tasks × {settings.windows_per_task} windows per seed. "
        + fine_tuning_note(result),
        "",
        "| model | future-window loss | ratio to adapted |",
        "|---|---|---|",
    ]
    adapted_mean = np.mean(result.prediction[ADAPTED])
    for name, values in result.prediction.items():
        lines.append(f"| {name} | {mean_std(values)} | {np.mean(values) / adapted_mean:.2f} |")
    lines += [
        "",
        f"Control: tracking RMSE over {settings.control_episode_s:g} s episodes on the "
        f"{settings.control_tasks_per_seed} heaviest-payload tasks of each seed (after {SETTLE_S:g} s settling).",
        "",
        f"| controller | tracking RMSE ({TRACKING_UNITS[result.robot]}) |",
        "|---|---|",
    ]
    lines += [f"| {name} | {mean_std(values)} |" for name, values in result.control.items()]
    lines += ["", *control_task_table([result.control_tasks])]
    if result.payload_switch:
        lines += ["", f"Payload switch: 0 → {PAYLOAD_AFTER_KG:g} kg mid-episode (`payload_switch.png`).", ""]
        lines += switch_table(result.payload_switch)
    if result.terrain_change:
        lines += ["", terrain_change_note(), ""]
        lines += change_table(result.terrain_change)
    return "\n".join(lines) + "\n"


def write_evaluation(result: Evaluation) -> Path:
    """Write the run's ``eval_<split>.md``, its bar plot and the payload-switch (Panda) or
    terrain-change (Husky) plot."""
    run_dir = result.run_dir
    table = run_dir / f"eval_{result.split}.md"
    table.write_text(evaluation_markdown(result), encoding="utf-8")
    _plot(result.prediction, result.control, run_dir / f"eval_{result.split}.png")
    if result.switch_traces:
        plot_switch(
            result.switch_traces,
            result.control_rate_hz,
            run_dir / "payload_switch.png",
            f"Panda, payload switched mid-run ({result.mode} adaptation, evaluation seed 0)",
        )
    if result.change_traces:
        plot_terrain_change(
            result.change_traces, result.change_crossings, result.control_rate_hz, run_dir / "terrain_change.png"
        )
    return table


def run_evaluation(run_dir: Path, split: str, seeds: int) -> Path:
    """Evaluate ``run_dir`` on ``split`` over ``seeds`` seeds; write and return a markdown table."""
    return write_evaluation(evaluate_run(Path(run_dir), split, seeds))


def _plot(prediction: dict[str, list[float]], control: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for axis, data, label in ((left, prediction, "future-window loss"), (right, control, "tracking RMSE")):
        names = list(data)
        axis.bar(range(len(names)), [np.mean(data[n]) for n in names], yerr=[np.std(data[n]) for n in names])
        axis.set_xticks(range(len(names)), names, rotation=20, ha="right")
        axis.set_ylabel(label)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
