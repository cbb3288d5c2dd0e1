"""Many environments stepped together, each under its own task, for filling per-task buffers.

``CollectionBackend`` is the small surface the meta-learning code uses; the two backends here
are worker processes (``ProcessBackend``) and gymnasium's in-process ``SyncVectorEnv`` (for
debugging and tests), and ``sim.ray_collection`` implements the same protocol on Ray. Every
backend auto-resets an environment in the same step it finishes (gymnasium's ``SAME_STEP``
mode), so each transition returned by ``step`` is complete: the true final observation is kept
in ``infos["final_obs"]``.
"""

from __future__ import annotations

import functools
import multiprocessing
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

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
            raise ValueError("GymVectorBackend needs a vector env with autoreset_mode=AutoresetMode.SAME_STEP")
        self.vector_env = vector_env
        self.num_envs = vector_env.num_envs
        self.single_observation_space = vector_env.single_observation_space
        self.single_action_space = vector_env.single_action_space

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


def make_process_backend(env_id: str, num_envs: int, context: str = "forkserver", **env_kwargs: Any) -> ProcessBackend:
    """One worker process per environment. ``forkserver``/``spawn`` start clean interpreters:
    forking a process that already holds PyBullet clients (or torch threads) is unsafe."""
    return ProcessBackend(functools.partial(make_env, env_id, **env_kwargs), num_envs, context)


_STEP, _CALL = b"s", b"c"


def _worker(connection: Connection, env_factory: Callable[[], gymnasium.Env]) -> None:
    """One environment in its own process, serving the ``ProcessBackend`` protocol.

    Steps travel as raw bytes (the action in, ``[obs, reward, terminated, truncated,
    final_obs]`` out, float64) so a control step costs two small pipe messages and no pickling;
    everything else (reset, set_task, get_task, close) is a pickled call.
    """
    env = env_factory()
    try:
        while True:
            message = connection.recv_bytes()
            try:
                if message[:1] == _STEP:
                    action = np.frombuffer(message, dtype=np.float32, offset=1)
                    obs, reward, terminated, truncated, _ = env.step(action)
                    final_obs = obs
                    if terminated or truncated:
                        obs, _ = env.reset()
                    reply = np.concatenate([obs, (reward, terminated, truncated), final_obs])
                    connection.send_bytes(_STEP + reply.astype(np.float64).tobytes())
                    continue
                name, args = pickle.loads(message[1:])
                if name == "close":
                    connection.send_bytes(_CALL + pickle.dumps(None))
                    return
                if name == "reset":
                    result = env.reset(seed=args[0])[0]
                elif name == "set_task":
                    result = env.unwrapped.set_task(args[0])
                elif name == "get_task":
                    result = env.unwrapped.get_task()
                elif name == "spaces":
                    result = (env.observation_space, env.action_space)
                else:
                    raise ValueError(f"unknown worker command {name!r}")
                connection.send_bytes(_CALL + pickle.dumps(result))
            except Exception as error:  # re-raised in the parent, its type kept
                connection.send_bytes(b"e" + pickle.dumps(error))
    finally:
        env.close()


class ProcessBackend:
    """A ``CollectionBackend`` with one environment per worker process.

    Equivalent to gymnasium's ``AsyncVectorEnv`` in ``SAME_STEP`` mode (same seeds, same
    auto-reset, same results as ``make_sync_backend``), with a leaner step: the parent's
    per-step cost is what limits scaling across workers, so a step is two small byte messages
    per worker. Worker errors (e.g. a non-finite action) are re-raised here with their type.
    """

    def __init__(self, env_factory: Callable[[], gymnasium.Env], num_envs: int, context: str = "forkserver") -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs} must be >= 1")
        ctx = multiprocessing.get_context(context)
        self.num_envs = num_envs
        self._connections: list[Connection] = []
        self._processes = []
        for index in range(num_envs):
            parent, child = ctx.Pipe()
            process = ctx.Process(target=_worker, args=(child, env_factory), daemon=True, name=f"sim-worker-{index}")
            process.start()
            child.close()
            self._connections.append(parent)
            self._processes.append(process)
        self.single_observation_space, self.single_action_space = self._call_one(0, "spaces")
        self._obs_dim = self.single_observation_space.shape[0]

    def _receive(self, index: int) -> bytes:
        message = self._connections[index].recv_bytes()
        if message[:1] == b"e":
            raise pickle.loads(message[1:])
        return message[1:]

    def _call_one(self, index: int, name: str, *args: Any) -> Any:
        self._connections[index].send_bytes(_CALL + pickle.dumps((name, args)))
        return pickle.loads(self._receive(index))

    def _call_each(self, name: str, per_env_args: Sequence[tuple[Any, ...]]) -> list[Any]:
        for connection, args in zip(self._connections, per_env_args, strict=True):
            connection.send_bytes(_CALL + pickle.dumps((name, args)))
        return [pickle.loads(self._receive(i)) for i in range(self.num_envs)]

    def reset(self, seed: int | None = None) -> np.ndarray:
        seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        return np.stack(self._call_each("reset", [(s,) for s in seeds])).astype(np.float32)

    def step(self, actions: np.ndarray) -> StepResult:
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape[0] != self.num_envs:
            raise ValueError(f"actions for {actions.shape[0]} envs, backend has {self.num_envs}")
        for connection, action in zip(self._connections, actions, strict=True):
            connection.send_bytes(_STEP + action.tobytes())
        replies = np.stack([np.frombuffer(self._receive(i), dtype=np.float64) for i in range(self.num_envs)])
        n = self._obs_dim
        obs = replies[:, :n].astype(np.float32)
        terminated, truncated = replies[:, n + 1] > 0.5, replies[:, n + 2] > 0.5
        done = terminated | truncated
        infos: dict[str, Any] = {"final_obs": replies[:, n + 3 :].astype(np.float32), "_final_obs": done}
        return obs, replies[:, n], terminated, truncated, infos

    def set_tasks(self, tasks: Sequence[Task]) -> None:
        if len(tasks) != self.num_envs:
            raise ValueError(f"set_tasks got {len(tasks)} tasks for {self.num_envs} environments")
        for task in tasks:
            task.validate()
        self._call_each("set_task", [(task,) for task in tasks])

    def get_tasks(self) -> list[Task]:
        return self._call_each("get_task", [()] * self.num_envs)

    def close(self) -> None:
        for index, connection in enumerate(self._connections):
            try:
                self._call_one(index, "close")
            except (EOFError, OSError, BrokenPipeError):
                pass
            connection.close()
        for process in self._processes:
            process.join(timeout=5.0)
            if process.is_alive():
                process.terminate()
        self._connections, self._processes = [], []


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
