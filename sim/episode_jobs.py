"""Whole episodes of one controller on one task, as a value that can be shipped to a worker.

Collection for a model-based learner is per task rather than lock-step: a controller (the
exploration controller, the adapted MPC planner) is built for a task, runs a few episodes, and
the episodes are what come back. An ``EpisodeJob`` says which task, which reset seeds and which
controller seed; ``run_episode_job`` runs it in a given environment. Run in this process or in a
Ray actor (``sim.ray_collection``), the same job gives the same episodes: the environment is put
in the job's task and reset with its seeds, and the controller is built afresh from its seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sim.tasks import Task


class EpisodeController(Protocol):
    """obs -> action for one environment, with a ``reset`` at the start of each episode."""

    def reset(self) -> None: ...

    def __call__(self, obs: np.ndarray) -> np.ndarray: ...


ControllerFactory = Callable[[int], EpisodeController]
"""Builds a controller from its seed. Must pickle (a module-level function or a
``functools.partial`` of one) when the jobs run in Ray actors."""


@dataclass(frozen=True)
class EpisodeJob:
    """``len(reset_seeds)`` episodes on ``task``, with one controller built from ``controller_seed``."""

    task: Task
    reset_seeds: tuple[int, ...]
    controller_seed: int


@dataclass
class EpisodeRecord:
    """One episode as numpy arrays, ``T`` steps long."""

    observations: np.ndarray
    """``(T, obs_dim)``: what the controller saw at each step."""
    actions: np.ndarray
    """``(T, action_dim)``: the actions applied, already clipped to the action box."""
    next_observations: np.ndarray
    """``(T, obs_dim)``: the observation after each step (the final one at the end)."""
    rewards: np.ndarray
    """``(T,)`` float64."""
    tracking_errors: np.ndarray
    """``(T,)``: the task suite's ``info["tracking_error"]`` (NaN where an env reports none)."""


def run_episode_job(env: Any, controller_factory: ControllerFactory, job: EpisodeJob) -> list[EpisodeRecord]:
    """Run ``job`` in ``env`` (a task-suite environment, wrappers allowed): one record per seed.

    The controller is built once for the job and reset before each episode; actions are clipped
    to the environment's action box before they are applied and recorded.
    """
    if not job.reset_seeds:
        raise ValueError(f"EpisodeJob for {job.task!r} has no reset_seeds: it would run no episode")
    env.unwrapped.set_task(job.task)
    controller = controller_factory(job.controller_seed)
    low, high = env.action_space.low, env.action_space.high
    records = []
    for seed in job.reset_seeds:
        obs, _ = env.reset(seed=seed)
        controller.reset()
        observations, actions, next_observations, rewards, errors = [], [], [], [], []
        done = False
        while not done:
            action = np.clip(controller(obs), low, high)
            next_obs, reward, terminated, truncated, info = env.step(action)
            observations.append(obs)
            actions.append(action)
            next_observations.append(next_obs)
            rewards.append(reward)
            errors.append(info.get("tracking_error", np.nan))
            obs, done = next_obs, terminated or truncated
        records.append(
            EpisodeRecord(
                observations=np.array(observations),
                actions=np.array(actions),
                next_observations=np.array(next_observations),
                rewards=np.array(rewards, dtype=np.float64),
                tracking_errors=np.array(errors, dtype=np.float64),
            )
        )
    return records


def run_episode_jobs_here(
    env: Any, controller_factory: ControllerFactory, jobs: Sequence[EpisodeJob]
) -> list[list[EpisodeRecord]]:
    """All ``jobs`` one after another in ``env``, in order: the reference the Ray runner matches."""
    return [run_episode_job(env, controller_factory, job) for job in jobs]
