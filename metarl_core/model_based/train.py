"""``metarl train`` for GrBAL: collect, meta-train, checkpoint, repeat — resumable after a kill.

Reads top to bottom in the order it runs: seeding, task sampling and exploration data, the
normaliser, then per iteration the meta-training steps (and the MB baseline on the same data),
optional collection with the adapted planner, metrics and an atomic checkpoint. Everything a
resumed run needs (buffers, optimiser, RNG states) is saved with each checkpoint, so a resumed
run writes the same next checkpoint as one that was never interrupted.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from tqdm import tqdm

import sim  # noqa: F401  (registers the environment ids)
from metarl_core.model_based.checkpoint import TrainedDynamics, load_checkpoint, save_checkpoint
from metarl_core.model_based.config import GrBALConfig
from metarl_core.model_based.dynamics_model import ModelShape, Normalizer, init_params, window_loss
from metarl_core.model_based.episode_collection import add_to_buffer, open_episode_collector, planner_controller
from metarl_core.model_based.exploration import exploration_controller
from metarl_core.model_based.meta_objective import make_step_sizes, meta_loss
from metarl_core.model_based.replay_buffer import TaskReplayBuffer, TransitionWindows
from metarl_core.run.checkpoint_io import CHECKPOINT_NAME
from metarl_core.run.run_directory import open_run_directory
from metarl_core.run.run_metrics import MetricsWriter
from metarl_core.run.torch_device import resolve_device, tensors_to_cpu
from sim.episode_jobs import EpisodeJob, run_episode_jobs_here


def collect_episodes(
    env: Any,
    task: Any,
    controller: Any,
    episodes: int,
    seed: int,
    buffer: TaskReplayBuffer,
) -> list[float]:
    """Run ``episodes`` of ``controller`` on ``task`` (reset seeds ``seed + episode``); add them
    to ``buffer``; return tracking RMSEs. The controller instance carries on across calls."""
    job = EpisodeJob(task=task, reset_seeds=tuple(seed + e for e in range(episodes)), controller_seed=seed)
    (records,) = run_episode_jobs_here(env, lambda _seed: controller, [job])
    return add_to_buffer(records, buffer, env.unwrapped.robot.state_dim)


def run_training(
    config_path: Path,
    run_dir: Path | None,
    device: str,
    resume: bool,
    backend: str | None = None,
    ray_address: str | None = None,
) -> Path:
    """Train (or resume) the run described by ``config_path``; return the run directory.

    ``device`` ("cpu", "cuda", "cuda:N") is where the meta-training runs; checkpoints always
    hold CPU tensors. ``backend`` and ``ray_address``, when given, override the config's
    collection backend (``local`` or ``ray``) and the Ray cluster to join.
    """
    torch_device = resolve_device(device)
    config = GrBALConfig.from_yaml(Path(config_path))
    overrides = {k: v for k, v in (("backend", backend), ("ray_address", ray_address)) if v is not None}
    if overrides:
        config = GrBALConfig.from_dict({**config.to_dict(), **overrides}, source=f"{config_path} with CLI overrides")
    run_dir, resumed = open_run_directory(config, run_dir, resume, load_checkpoint)
    torch.manual_seed(config.seed)

    env = gymnasium.make(config.env_id, episode_duration_s=config.episode_duration_s)
    collector = open_episode_collector(
        env,
        config.backend,
        config.env_id,
        config.collection_workers,
        config.ray_address,
        episode_duration_s=config.episode_duration_s,
    )
    robot = env.unwrapped.robot
    shape = ModelShape(robot.state_dim, robot.action_dim, tuple(config.hidden_sizes))

    if resumed is not None:
        model, state = resumed
        buffers = state["replay_buffers"]
        tasks = [env.unwrapped.task_type.from_json(t) for t in state["tasks"]]
        rng = np.random.default_rng()
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        start_iteration = state["iteration"] + 1
        normalizer = model.normalizer
        params = {k: v.to(torch_device).requires_grad_() for k, v in model.params.items()}
        step_sizes = (
            {k: v.to(torch_device).requires_grad_() for k, v in model.step_sizes.items()}
            if isinstance(model.step_sizes, dict)
            else model.step_sizes
        )
        mb_params = {k: v.to(torch_device).requires_grad_() for k, v in state["mb_params"].items()}
    else:
        rng = np.random.default_rng(config.seed)
        tasks = env.unwrapped.sample_tasks(config.train_tasks, rng, "train")
        buffers = [TaskReplayBuffer(robot.state_dim, robot.action_dim) for _ in tasks]
        # One job per task: its own exploration controller (seed + index) and reset seeds.
        jobs = [
            EpisodeJob(
                task=task,
                reset_seeds=tuple(config.seed + 1000 * index + e for e in range(config.exploration_episodes_per_task)),
                controller_seed=config.seed + index,
            )
            for index, task in enumerate(tasks)
        ]
        explorer = functools.partial(exploration_controller, robot.name, config.exploration_noise_fraction)
        for records, buffer in zip(collector.run(explorer, jobs, progress="exploration"), buffers, strict=True):
            add_to_buffer(records, buffer, robot.state_dim)
        normalizer = Normalizer.fit(
            *(np.concatenate(x) for x in zip(*(b.all_transitions() for b in buffers), strict=True))
        )
        params = {
            k: v.to(torch_device).requires_grad_()
            for k, v in init_params(shape, torch.Generator().manual_seed(config.seed)).items()
        }
        step_sizes = make_step_sizes(params, config.inner_lr, config.learn_step_sizes)
        mb_params = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
        start_iteration = 0
        state = {}

    meta_variables = list(params.values()) + (list(step_sizes.values()) if isinstance(step_sizes, dict) else [])
    optimizer = torch.optim.Adam(meta_variables, lr=config.outer_lr)
    mb_optimizer = torch.optim.Adam(list(mb_params.values()), lr=config.outer_lr)
    if state:
        optimizer.load_state_dict(state["optimizer"])
        mb_optimizer.load_state_dict(state["mb_optimizer"])
    stats = {k: v.to(torch_device) for k, v in normalizer.torch().items()}
    adaptation = config.inner_adaptation()
    metrics_writer = MetricsWriter(run_dir)
    total = config.iterations * config.gradient_steps_per_iteration
    progress = tqdm(total=total, initial=start_iteration * config.gradient_steps_per_iteration, desc="meta-train")

    for iteration in range(start_iteration, config.iterations):
        losses = []
        for _ in range(config.gradient_steps_per_iteration):
            chosen = rng.choice(len(buffers), size=min(config.task_batch_size, len(buffers)), replace=False)
            batches = [
                buffers[i].sample_windows(config.past_window, config.future_window, config.windows_per_task, rng)
                for i in chosen
            ]
            windows = TransitionWindows.concatenate(batches).to_torch(torch_device)
            loss = meta_loss(params, step_sizes, windows, stats, adaptation, config.first_order)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            # MB baseline: the same windows, plain regression on all their transitions.
            mb_loss = window_loss(
                mb_params,
                *(torch.cat([p.flatten(0, 1), f.flatten(0, 1)]) for p, f in zip(*windows, strict=True)),
                stats,
            )
            mb_optimizer.zero_grad()
            mb_loss.backward()
            mb_optimizer.step()
            losses.append((loss.item(), mb_loss.item()))
            progress.update(1)
            progress.set_postfix(meta_loss=f"{losses[-1][0]:.4f}", mb_loss=f"{losses[-1][1]:.4f}")

        model = TrainedDynamics(
            robot=robot,
            shape=shape,
            params={k: v.detach().cpu() for k, v in params.items()},
            normalizer=normalizer,
            window_size=config.past_window,
            adaptation=adaptation,
            step_sizes=(
                {k: v.detach().cpu() for k, v in step_sizes.items()} if isinstance(step_sizes, dict) else step_sizes
            ),
            planner=config.planner.to_dict(),
            config=config.to_dict(),
        )
        planner_errors = []
        # GrBAL's iterative collection: the adapted planner's own episodes join the replay for the
        # next iteration (none after the last, which nothing would train on).
        planner_episodes = config.planner_episodes_per_iteration if iteration < config.iterations - 1 else 0
        indices = [int(rng.integers(len(tasks))) for _ in range(planner_episodes)]
        jobs = [
            EpisodeJob(tasks[index], (config.seed + 7919 * (iteration + 1) + episode,), config.seed + iteration)
            for episode, index in enumerate(indices)
        ]
        for records, index in zip(
            collector.run(functools.partial(planner_controller, model), jobs), indices, strict=True
        ):
            planner_errors += add_to_buffer(records, buffers[index], robot.state_dim)
        metrics = {
            "losses/meta_loss": float(np.mean([m for m, _ in losses])),
            "losses/mb_loss": float(np.mean([b for _, b in losses])),
            "charts/transitions": sum(b.num_transitions for b in buffers),
        }
        if config.planner_episodes_per_iteration:  # a column in every row: NaN where none were run
            metrics["charts/planner_tracking_rmse"] = float(np.mean(planner_errors)) if planner_errors else np.nan
        metrics_writer.log(iteration, metrics)
        save_checkpoint(
            run_dir / CHECKPOINT_NAME,
            model,
            {
                "iteration": iteration,
                "optimizer": tensors_to_cpu(optimizer.state_dict()),
                "mb_optimizer": tensors_to_cpu(mb_optimizer.state_dict()),
                "mb_params": {k: v.detach().cpu() for k, v in mb_params.items()},
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                # The replay lives in the same atomically written file: model and data never disagree.
                "replay_buffers": [b.to_state() for b in buffers],
                "tasks": [t.to_json() for t in tasks],
            },
        )
    progress.close()
    collector.close()
    env.close()
    metrics_writer.close()
    return run_dir
