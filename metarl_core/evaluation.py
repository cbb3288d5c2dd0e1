"""``metarl eval``: the meta-learned model against its baselines on held-out tasks.

Prediction: on windows of held-out tasks, the loss on the K future transitions of
  - the meta-learned model adapted on the M past ones (the method),
  - the same model without adaptation,
  - MB: one model trained on all tasks' data by plain regression (saved with the run),
  - MB+DE: MB fine-tuned on the M past transitions with the same number of steps and step size,
  - the oracle: MB fine-tuned to convergence on plenty of that task's own data
    (``metarl_core.oracle``, which says why this oracle).
Control: tracking RMSE on the heaviest-payload tasks of the adaptive MPC, the same planner
without adaptation, the same planner through the task's oracle model (no adaptation), and the
task suite's fixed nominal controller.
Payload switch (Panda runs): a 4 kg payload put into the hand mid-episode
(``metarl_core.payload_switch``), the same four controllers, the oracle trained on the 4 kg task.
Every figure is a mean ± std over evaluation seeds (each seed draws its own tasks and data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import sim
from metarl_core.adaptive_control import AdaptiveMPCController
from metarl_core.checkpoint import TrainedDynamics, load_checkpoint
from metarl_core.dynamics_model import Params, adapt_params, window_loss
from metarl_core.exploration import ROBOTS, exploration_controller
from metarl_core.last_layer_rls import rls_adapt_params
from metarl_core.oracle import OracleSettings, train_task_oracle
from metarl_core.payload_switch import (
    PAYLOAD_AFTER_KG,
    ObservationController,
    plot_switch,
    run_payload_switch,
    summarize,
)
from metarl_core.replay_buffer import TaskReplayBuffer
from metarl_core.training import collect_episodes
from sim.tasks import PandaTask

SETTLE_S = 0.5

ADAPTED = "adapted (meta)"
NO_ADAPTATION = "meta, no adaptation"
MB = "MB"
MB_DE = "MB+DE"
ORACLE = "oracle (trained on the task)"
ADAPTIVE_MPC = "adaptive MPC"
MPC_OFF = "same MPC, adaptation off"
ORACLE_MPC = "oracle MPC (trained on the task)"
NOMINAL = "fixed nominal controller"
SWITCH_FIGURES = ("before_switch", "first_second_after", "steady_after", "recovery_s")

ORACLE_SEED_BASE = 1_000_000
"""Oracle data seeds start here: far from every seed the evaluation's own episodes use."""


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


@dataclass
class Evaluation:
    """Per-seed figures of one run: ``{row: [one value per evaluation seed]}``."""

    run_dir: Path
    split: str
    seeds: int
    mode: str
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
    control_rate_hz: float = 100.0


def prediction_losses(
    model: TrainedDynamics,
    mb_params: Params,
    oracle_params: Params,
    buffer: TaskReplayBuffer,
    windows: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Mean future-window loss of each model on ``windows`` of one task's windows."""
    config = model.config
    sampled = buffer.sample_windows(model.window_size, config["future_window"], windows, rng)
    stats = model.normalizer.torch()
    results: dict[str, list[float]] = {ADAPTED: [], NO_ADAPTATION: [], MB: [], MB_DE: [], ORACLE: []}
    for i in range(windows):
        past = [torch.from_numpy(getattr(sampled, f"past_{n}")[i]) for n in ("states", "actions", "next_states")]
        future = [torch.from_numpy(getattr(sampled, f"future_{n}")[i]) for n in ("states", "actions", "next_states")]
        if model.mode == "rls":
            adapted = rls_adapt_params(model.params, *past, stats, model.rls_prior_precision)
        else:
            adapted = adapt_params(model.params, *past, stats, model.step_sizes, model.inner_steps, create_graph=False)
        fine_tuned = adapt_params(mb_params, *past, stats, config["inner_lr"], model.inner_steps, create_graph=False)
        with torch.no_grad():
            results[ADAPTED].append(float(window_loss(adapted, *future, stats)))
            results[NO_ADAPTATION].append(float(window_loss(model.params, *future, stats)))
            results[MB].append(float(window_loss(mb_params, *future, stats)))
            results[MB_DE].append(float(window_loss(fine_tuned, *future, stats)))
            results[ORACLE].append(float(window_loss(oracle_params, *future, stats)))
    return {k: float(np.mean(v)) for k, v in results.items()}


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


def _controllers(model: TrainedDynamics, oracle_params: Params, seed: int) -> dict[str, Any]:
    """The four controllers every control experiment compares, in table order."""
    return {
        ADAPTIVE_MPC: AdaptiveMPCController(model, adapt=True, seed=seed),
        MPC_OFF: AdaptiveMPCController(model, adapt=False, seed=seed),
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
        model.mode,
        model.window_size,
        config["future_window"],
        settings,
        control_rate_hz=model.robot.control_rate_hz,
    )
    for seed in range(seeds):
        rng = np.random.default_rng(10_000 + seed)
        env = sim.make(config["env_id"], episode_duration_s=config["episode_duration_s"])
        tasks = env.unwrapped.sample_tasks(settings.tasks_per_seed, rng, split)
        per_seed: dict[str, list[float]] = {}
        oracles: list[Params] = []
        for index, task in enumerate(tasks):
            buffer = TaskReplayBuffer(model.robot.state_dim, model.robot.action_dim)
            explorer = exploration_controller(robot_name, noise, 50_000 + seed * 97 + index)
            collect_episodes(env, task, explorer, 1, 20_000 + seed * 97 + index, buffer)
            oracle_seed = ORACLE_SEED_BASE + 10_000 * seed + 100 * index
            oracles.append(
                train_task_oracle(env, task, robot_name, mb_params, stats, noise, settings.oracle, oracle_seed)
            )
            for key, value in prediction_losses(
                model, mb_params, oracles[-1], buffer, settings.windows_per_task, rng
            ).items():
                per_seed.setdefault(key, []).append(value)
        for key, values in per_seed.items():
            result.prediction.setdefault(key, []).append(float(np.mean(values)))

        control_env = sim.make(config["env_id"], episode_duration_s=settings.control_episode_s)
        hardest = sorted(range(len(tasks)), key=lambda i: -getattr(tasks[i], "payload_mass_kg", 0.0))
        per_controller: dict[str, list[float]] = {}
        for index in hardest[: settings.control_tasks_per_seed]:
            for name, controller in _controllers(model, oracles[index], seed).items():
                rmse = tracking_rmse(control_env, controller, tasks[index], 30_000 + seed)
                per_controller.setdefault(name, []).append(rmse)
                _close(controller)
        control_env.close()
        for name, values in per_controller.items():
            result.control.setdefault(name, []).append(float(np.mean(values)))

        if robot_name == "panda":
            after = PandaTask(payload_mass_kg=PAYLOAD_AFTER_KG)
            oracle_seed = ORACLE_SEED_BASE + 10_000 * seed + 9_000
            oracle = train_task_oracle(env, after, robot_name, mb_params, stats, noise, settings.oracle, oracle_seed)
            for name, controller in _controllers(model, oracle, seed).items():
                errors, _ = run_payload_switch(ObservationController(controller), seed=40_000 + seed)
                figures = summarize(errors, model.robot.control_rate_hz)
                for figure in SWITCH_FIGURES:
                    result.payload_switch.setdefault(name, {}).setdefault(figure, []).append(figures[figure])
                if seed == 0:
                    result.switch_traces[name] = errors
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


def switch_table(payload_switch: dict[str, dict[str, list[float]]]) -> list[str]:
    """Markdown rows of the payload-switch figures, one per controller."""
    lines = [
        "| controller | RMS error before switch (rad) | first 1 s after (rad) | steady after (rad) | recovery (s) |",
        "|---|---|---|---|---|",
    ]
    for name, figures in payload_switch.items():
        cells = [mean_std(figures[f]) for f in SWITCH_FIGURES[:3]] + [mean_std(figures["recovery_s"], 2)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


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
        f"M={result.past_window}; {settings.tasks_per_seed} tasks × {settings.windows_per_task} windows per seed.",
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
        "| controller | tracking RMSE (rad) |",
        "|---|---|",
    ]
    lines += [f"| {name} | {mean_std(values)} |" for name, values in result.control.items()]
    if result.payload_switch:
        lines += ["", f"Payload switch: 0 → {PAYLOAD_AFTER_KG:g} kg mid-episode (`payload_switch.png`).", ""]
        lines += switch_table(result.payload_switch)
    return "\n".join(lines) + "\n"


def write_evaluation(result: Evaluation) -> Path:
    """Write the run's ``eval_<split>.md``, its bar plot and (Panda) the payload-switch plot."""
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
