"""Where GrBAL's episodes are collected: in the training process, or in Ray actors.

Training describes its collection as ``EpisodeJob`` values (a task, reset seeds, a controller
seed) plus one controller factory per phase (the exploration controller; the adapted planner of
this iteration). ``backend: local`` runs the jobs one after another in the trainer's own
environment; ``backend: ray`` spreads them over ``collection_workers`` Ray actors, on this
machine or on a cluster (``ray_address``). The episodes, and so the run, are the same either way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from metarl_core.model_based.adaptive_mpc import AdaptiveMPCController
from metarl_core.model_based.checkpoint import TrainedDynamics
from metarl_core.model_based.replay_buffer import TaskReplayBuffer
from sim.episode_jobs import ControllerFactory, EpisodeJob, EpisodeRecord, run_episode_jobs_here

BACKENDS = ("local", "ray")


class EpisodeCollector:
    """Runs episode jobs in ``env`` (local), or on a ``sim.ray_collection.RayBackend`` that
    ``make_ray_backend`` makes at the first non-empty batch of jobs (so a resumed run with
    nothing left to collect starts no Ray)."""

    def __init__(self, env: Any, make_ray_backend: Callable[[], Any] | None = None) -> None:
        self.env = env
        self.make_ray_backend = make_ray_backend
        self.ray_backend: Any = None

    def run(
        self, controller_factory: ControllerFactory, jobs: Sequence[EpisodeJob], progress: str | None = None
    ) -> list[list[EpisodeRecord]]:
        """The records of every job, in job order (one list per job, one record per reset seed).
        ``progress`` names a progress bar over the jobs run here (minutes of exploration on a
        robot's many tasks should not look like a hang); Ray returns all jobs at once."""
        if self.make_ray_backend is None or not jobs:
            shown = tqdm(jobs, desc=progress, unit="job", leave=False, disable=progress is None)
            return [run_episode_jobs_here(self.env, controller_factory, [job])[0] for job in shown]
        if self.ray_backend is None:
            self.ray_backend = self.make_ray_backend()
        return self.ray_backend.run_episode_jobs(controller_factory, jobs)

    def close(self) -> None:
        """End the Ray actors (and a local Ray instance this collector started)."""
        if self.ray_backend is not None:
            self.ray_backend.close()
            self.ray_backend = None


def open_episode_collector(
    env: Any, backend: str, env_id: str, workers: int, ray_address: str, **env_kwargs: Any
) -> EpisodeCollector:
    """A collector for ``backend`` ("local" or "ray"). For Ray, ``workers`` actors each make
    ``gymnasium.make(env_id, **env_kwargs)``; an empty ``ray_address`` starts a local Ray instance of
    ``workers`` CPUs, any other joins that cluster ("auto" for the one ``ray start`` set up).
    ``ray`` itself must be importable at once: a missing install fails before any training."""
    if backend == "local":
        return EpisodeCollector(env)
    if backend != "ray":
        raise ValueError(f"collection backend {backend!r} is not one of {', '.join(BACKENDS)}")
    from sim.ray_collection import import_ray, make_ray_backend

    import_ray()
    return EpisodeCollector(
        env,
        functools.partial(
            make_ray_backend, env_id, workers, address=ray_address or None, num_cpus=workers, **env_kwargs
        ),
    )


def planner_controller(model: TrainedDynamics, seed: int) -> AdaptiveMPCController:
    """The adapted MPC planner of ``model``: a module-level factory so that it pickles to Ray."""
    return AdaptiveMPCController(model, seed=seed)


def add_to_buffer(records: Sequence[EpisodeRecord], buffer: TaskReplayBuffer, state_dim: int) -> list[float]:
    """Add each episode's state transitions to ``buffer``; return each one's tracking RMSE."""
    errors = []
    for record in records:
        buffer.add_episode(record.observations[:, :state_dim], record.actions, record.next_observations[:, :state_dim])
        errors.append(float(np.sqrt(np.mean(np.square(record.tracking_errors)))))
    return errors
