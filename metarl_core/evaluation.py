"""``metarl eval``: the meta-learned model against its baselines on held-out tasks.

Prediction: on windows of held-out tasks, the loss on the K future transitions of
  - the meta-learned model adapted on the M past ones (the method),
  - the same model without adaptation,
  - MB: one model trained on all tasks' data by plain regression (saved with the run),
  - MB+DE: MB fine-tuned on the M past transitions with the same number of steps and step size.
Control: tracking RMSE of the adaptive MPC, the same planner without adaptation, and the task
suite's fixed nominal controller. Every figure is a mean ± std over evaluation seeds (each seed
draws its own tasks and data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import sim
from metarl_core.adaptive_control import AdaptiveMPCController
from metarl_core.checkpoint import load_checkpoint
from metarl_core.dynamics_model import adapt_params, window_loss
from metarl_core.exploration import ROBOTS, exploration_controller
from metarl_core.last_layer_rls import rls_adapt_params
from metarl_core.replay_buffer import TaskReplayBuffer
from metarl_core.training import collect_episodes

TASKS_PER_SEED = 4
WINDOWS_PER_TASK = 32
CONTROL_TASKS_PER_SEED = 2
CONTROL_EPISODE_S = 3.0
SETTLE_S = 0.5


def prediction_losses(model, mb_params, buffer: TaskReplayBuffer, rng: np.random.Generator) -> dict[str, float]:
    """Mean future-window loss of each model on one task's windows."""
    config = model.config
    windows = buffer.sample_windows(model.window_size, config["future_window"], WINDOWS_PER_TASK, rng)
    stats = model.normalizer.torch()
    results: dict[str, list[float]] = {"adapted (meta)": [], "meta, no adaptation": [], "MB": [], "MB+DE": []}
    for i in range(WINDOWS_PER_TASK):
        past = [torch.from_numpy(getattr(windows, f"past_{n}")[i]) for n in ("states", "actions", "next_states")]
        future = [torch.from_numpy(getattr(windows, f"future_{n}")[i]) for n in ("states", "actions", "next_states")]
        if model.mode == "rls":
            adapted = rls_adapt_params(model.params, *past, stats, model.rls_prior_precision)
        else:
            adapted = adapt_params(model.params, *past, stats, model.step_sizes, model.inner_steps, create_graph=False)
        fine_tuned = adapt_params(mb_params, *past, stats, config["inner_lr"], model.inner_steps, create_graph=False)
        with torch.no_grad():
            results["adapted (meta)"].append(float(window_loss(adapted, *future, stats)))
            results["meta, no adaptation"].append(float(window_loss(model.params, *future, stats)))
            results["MB"].append(float(window_loss(mb_params, *future, stats)))
            results["MB+DE"].append(float(window_loss(fine_tuned, *future, stats)))
    return {k: float(np.mean(v)) for k, v in results.items()}


def tracking_rmse(env, controller, task, seed: int) -> float:
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


def run_evaluation(run_dir: Path, split: str, seeds: int) -> Path:
    """Evaluate ``run_dir`` on ``split`` over ``seeds`` seeds; write and return a markdown table."""
    torch.set_num_threads(1)
    model, state = load_checkpoint(Path(run_dir))
    mb_params = state["mb_params"]
    config = model.config
    robot_name = model.robot.name
    prediction: dict[str, list[float]] = {}
    control: dict[str, list[float]] = {}
    for seed in range(seeds):
        rng = np.random.default_rng(10_000 + seed)
        env = sim.make(config["env_id"], episode_duration_s=config["episode_duration_s"])
        tasks = env.unwrapped.sample_tasks(TASKS_PER_SEED, rng, split)
        per_seed: dict[str, list[float]] = {}
        for index, task in enumerate(tasks):
            buffer = TaskReplayBuffer(model.robot.state_dim, model.robot.action_dim)
            explorer = exploration_controller(
                robot_name, config["exploration_noise_fraction"], 50_000 + seed * 97 + index
            )
            collect_episodes(env, task, explorer, 1, 20_000 + seed * 97 + index, buffer)
            for key, value in prediction_losses(model, mb_params, buffer, rng).items():
                per_seed.setdefault(key, []).append(value)
        env.close()
        for key, values in per_seed.items():
            prediction.setdefault(key, []).append(float(np.mean(values)))

        env = sim.make(config["env_id"], episode_duration_s=CONTROL_EPISODE_S)
        hardest = sorted(tasks, key=lambda t: -getattr(t, "payload_mass_kg", 0.0))[:CONTROL_TASKS_PER_SEED]
        controllers = {
            "adaptive MPC": AdaptiveMPCController(model, adapt=True, seed=seed),
            "same MPC, adaptation off": AdaptiveMPCController(model, adapt=False, seed=seed),
            "fixed nominal controller": ROBOTS[robot_name][1](),
        }
        for name, controller in controllers.items():
            rmse = [tracking_rmse(env, controller, task, 30_000 + seed) for task in hardest]
            control.setdefault(name, []).append(float(np.mean(rmse)))
        env.close()

    lines = [
        f"## Evaluation of `{run_dir}` on the {split} split ({seeds} seeds, mean ± std)",
        "",
        f"Command: `metarl eval --run {run_dir} --split {split} --seeds {seeds}`; adaptation mode: {model.mode}.",
        "",
        f"Prediction: loss on K={config['future_window']} future transitions (normalised MSE) after adapting on "
        f"M={model.window_size}; {TASKS_PER_SEED} tasks × {WINDOWS_PER_TASK} windows per seed.",
        "",
        "| model | future-window loss | ratio to adapted |",
        "|---|---|---|",
    ]
    adapted_mean = np.mean(prediction["adapted (meta)"])
    for name, values in prediction.items():
        lines.append(
            f"| {name} | {np.mean(values):.4f} ± {np.std(values):.4f} | {np.mean(values) / adapted_mean:.2f} |"
        )
    lines += [
        "",
        f"Control: tracking RMSE over {CONTROL_EPISODE_S:g} s episodes on the {CONTROL_TASKS_PER_SEED} heaviest-"
        "payload tasks of each seed (after 0.5 s settling).",
        "",
        "| controller | tracking RMSE |",
        "|---|---|",
    ]
    for name, values in control.items():
        lines.append(f"| {name} | {np.mean(values):.4f} ± {np.std(values):.4f} |")
    table = Path(run_dir) / f"eval_{split}.md"
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _plot(prediction, control, Path(run_dir) / f"eval_{split}.png")
    return table


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
