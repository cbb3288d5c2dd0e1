"""Many environments stepped together, each under its own task, for filling per-task buffers.

``CollectionBackend`` is the small surface the meta-learning code uses; the two backends here
are gymnasium vector environments (worker processes, or in-process for debugging and tests),
and a Ray backend can implement the same protocol for a cluster. Every backend auto-resets an
environment in the same step it finishes (gymnasium's ``SAME_STEP`` mode), so each transition
returned by ``step`` is complete: the true final observation is kept in ``infos["final_obs"]``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

import sim  # noqa: F401  (registers the environment ids, also inside spawned workers)
from sim.tasks import Task

StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]
Policy = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of observations ``(num_envs, obs_dim)`` to actions ``(num_envs, action_dim)``."""


class CollectionBackend(Protocol):
    """Steps ``num_envs`` environments in lock-step; env ``i`` runs task ``i`` of ``set_tasks``."""

    num_envs: int

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every env (env ``i`` with ``seed + i``); returns observations ``(num_envs, obs_dim)``."""
        ...

    def step(self, actions: np.ndarray) -> StepResult:
        """``(obs, rewards, terminated, truncated, infos)``; finished envs are already reset."""
        ...

    def set_tasks(self, tasks: Sequence[Task]) -> None:
        """One task per env, applied as ``env.set_task`` does (live physics at once)."""
        ...

    def close(self) -> None: ...


def make_env(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """A module-level factory so a spawned worker can unpickle it (and thereby import ``sim``)."""
    return gymnasium.make(env_id, **kwargs)


class GymVectorBackend:
    """A ``CollectionBackend`` over a gymnasium ``VectorEnv`` in ``SAME_STEP`` autoreset mode."""

    def __init__(self, vector_env: VectorEnv) -> None:
        if vector_env.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError(
                "GymVectorBackend needs a vector env with autoreset_mode=AutoresetMode.SAME_STEP"
            )
        self.vector_env = vector_env
        self.num_envs = vector_env.num_envs

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, _ = self.vector_env.reset(seed=seed)
        return obs

    def step(self, actions: np.ndarray) -> StepResult:
        return self.vector_env.step(np.asarray(actions, dtype=np.float32))

    def set_tasks(self, tasks: Sequence[Task]) -> None:
        if len(tasks) != self.num_envs:
            raise ValueError(f"set_tasks got {len(tasks)} tasks for {self.num_envs} environments")
        for task in tasks:
            task.validate()
        # ``task`` is a property whose setter is ``set_task``: set_attr delivers one value per env.
        self.vector_env.set_attr("task", list(tasks))

    def get_tasks(self) -> list[Task]:
        return list(self.vector_env.get_attr("task"))

    def close(self) -> None:
        self.vector_env.close()


def make_sync_backend(env_id: str, num_envs: int, **env_kwargs: Any) -> GymVectorBackend:
    """All environments in this process: no start-up cost, for tests and small runs."""
    factory = functools.partial(make_env, env_id, **env_kwargs)
    return GymVectorBackend(SyncVectorEnv([factory] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP))


def make_process_backend(
    env_id: str, num_envs: int, context: str = "forkserver", **env_kwargs: Any
) -> GymVectorBackend:
    """One worker process per environment. ``forkserver``/``spawn`` start clean interpreters:
    forking a process that already holds PyBullet clients (or torch threads) is unsafe."""
    factory = functools.partial(make_env, env_id, **env_kwargs)
    vector_env = AsyncVectorEnv([factory] * num_envs, context=context, autoreset_mode=AutoresetMode.SAME_STEP)
    return GymVectorBackend(vector_env)


@dataclass
class Trajectory:
    """One environment's consecutive transitions (episodes may end inside: see ``dones``)."""

    observations: np.ndarray
    """``(T, obs_dim)`` float32."""
    actions: np.ndarray
    """``(T, action_dim)`` float32, as sent (before the env's clipping to its action box)."""
    next_observations: np.ndarray
    """``(T, obs_dim)``: the observation that followed, the final one where an episode ended."""
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray

    @property
    def dones(self) -> np.ndarray:
        """Where an episode ended (terminated or truncated): windows must not cross these."""
        return self.terminated | self.truncated


def collect_rollouts(
    backend: CollectionBackend, policy: Policy, n_steps: int, seed: int | None = None
) -> list[Trajectory]:
    """Reset ``backend`` with ``seed`` and step it ``n_steps`` times under ``policy``.

    Returns one ``Trajectory`` per environment, in env order, so env ``i``'s transitions can go
    to the replay buffer of task ``i``.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps={n_steps} must be >= 1")
    obs = backend.reset(seed)
    num_envs = backend.num_envs
    observations = np.empty((n_steps, *obs.shape), dtype=np.float32)
    next_observations = np.empty_like(observations)
    rewards = np.empty((n_steps, num_envs), dtype=np.float64)
    terminated = np.empty((n_steps, num_envs), dtype=bool)
    truncated = np.empty((n_steps, num_envs), dtype=bool)
    actions_list: list[np.ndarray] = []
    for t in range(n_steps):
        actions = np.asarray(policy(obs), dtype=np.float32)
        next_obs, reward, term, trunc, infos = backend.step(actions)
        observations[t] = obs
        done = np.logical_or(term, trunc)
        true_next = np.array(next_obs, dtype=np.float32, copy=True)
        if done.any():
            for i in np.flatnonzero(done):
                true_next[i] = infos["final_obs"][i]
        next_observations[t] = true_next
        rewards[t], terminated[t], truncated[t] = reward, term, trunc
        actions_list.append(actions)
        obs = next_obs
    all_actions = np.stack(actions_list)
    return [
        Trajectory(
            observations=observations[:, i],
            actions=all_actions[:, i],
            next_observations=next_observations[:, i],
            rewards=rewards[:, i],
            terminated=terminated[:, i],
            truncated=truncated[:, i],
        )
        for i in range(num_envs)
    ]
