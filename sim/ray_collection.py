"""A ``CollectionBackend`` on Ray (core Ray, no RLlib): environments in actors, on one machine or many.

One actor per environment, each owning its own PyBullet DIRECT client in its own worker
process, exactly as a ``ProcessBackend`` worker does; the actors may live on any node of a Ray
cluster. Tasks are set per actor (``set_tasks``: one ``set_task`` call each).

Two ways to drive the actors:
- the lock-step ``CollectionBackend`` protocol (``reset``/``step``), for code written against
  it. Every step is one actor call per environment, so on one machine it is several times
  slower than the process backend's pipe messages: use it where the learner needs each step;
- whole rollouts and episodes run inside the actors (``rollouts``, ``run_episode_jobs``): the
  policy or controller factory goes into the object store once per call (once per training
  iteration), every actor runs its part without talking to the driver, and the trajectories
  come back as numpy. This is the path that scales.

Both give exactly what the process backend gives for the same seeds, tasks and actions. ``ray``
is imported only when a backend is made (it is the ``ray`` extra of the package).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sim.episode_jobs import ControllerFactory, EpisodeJob, EpisodeRecord, run_episode_job
from sim.tasks import Task
from sim.vector_collection import Policy, StepResult, Trajectory, make_env

LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
"""Object store of a local Ray instance: parameters and trajectories are small, and the default
(30 % of RAM) would claim shared memory that the training process needs."""


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or the cluster at the given address cannot be joined."""


LOCAL_NODE_IP = "127.0.0.2"
"""The node address of a local Ray instance: loopback, and not 127.0.0.1, which Ray rewrites."""


def import_ray() -> Any:
    """The ``ray`` module, or ``RayUnavailableError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(
            "the Ray backend needs the ray package: pip install -e '.[ray]' (or pip install 'ray>=2.30')"
        ) from None
    return ray


def connect_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join the Ray cluster at ``address`` ("auto", "HOST:PORT", "ray://HOST:PORT"), or with no
    address start a local instance of ``num_cpus`` (default: this machine's cores), without the
    dashboard and without usage statistics, so that it contacts no other machine. A local
    instance names its node ``LOCAL_NODE_IP`` (a loopback address), so that every connection
    between its processes stays on loopback: Ray maps a requested 127.0.0.1 onto the machine's
    network address, but not another address of 127.0.0.0/8. Returns whether this call started
    Ray (the caller that started it shuts it down); an already initialised Ray is used as it is.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    # Ray's usage statistics would be sent off the machine: never from this project.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            cpus = (os.cpu_count() or 1) if num_cpus is None else num_cpus
            if cpus < 1:
                raise ValueError(f"num_cpus={num_cpus} must be >= 1 for a local Ray instance")
            ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                log_to_driver=False,
                _node_ip_address=LOCAL_NODE_IP,
            )
    except ConnectionError as error:
        raise RayUnavailableError(f"cannot join the Ray cluster at address={address!r}: {error}") from None
    return True


class EnvActor:
    """The body of one Ray actor: one environment, driven step by step or run for whole
    rollouts and episodes. A plain class so that it pickles by reference; ``RayBackend`` wraps
    it with ``ray.remote``."""

    def __init__(self, env_factory: Callable[[], Any]) -> None:
        self.env = env_factory()

    def spaces(self) -> tuple[Any, Any]:
        return self.env.observation_space, self.env.action_space

    def reset(self, seed: int | None) -> np.ndarray:
        return np.asarray(self.env.reset(seed=seed)[0], dtype=np.float32)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, np.ndarray]:
        """One step, auto-reset in the same step (``SAME_STEP``): the final observation comes
        back too, as the process backend's worker sends it."""
        obs, reward, terminated, truncated, _ = self.env.step(np.asarray(action, dtype=np.float32))
        final_obs = obs
        if terminated or truncated:
            obs, _ = self.env.reset()
        return (
            np.asarray(obs, dtype=np.float32),
            float(reward),
            bool(terminated),
            bool(truncated),
            np.asarray(final_obs, dtype=np.float32),
        )

    def set_task(self, task: Task) -> None:
        self.env.unwrapped.set_task(task)

    def get_task(self) -> Task:
        return self.env.unwrapped.get_task()

    def rollout(self, policy: Policy, n_steps: int, seed: int | None) -> dict[str, np.ndarray]:
        """``collect_rollouts`` for this one environment, the policy applied here to a batch of
        one: the same transitions as the process backend gives env ``i`` reset with ``seed``."""
        obs = self.reset(seed)
        columns: dict[str, list[Any]] = {k: [] for k in ("obs", "actions", "next", "rewards", "term", "trunc")}
        for _ in range(n_steps):
            action = np.asarray(policy(obs[None]), dtype=np.float32)[0]
            next_obs, reward, terminated, truncated, final_obs = self.step(action)
            columns["obs"].append(obs)
            columns["actions"].append(action)
            columns["next"].append(final_obs)
            columns["rewards"].append(reward)
            columns["term"].append(terminated)
            columns["trunc"].append(truncated)
            obs = next_obs
        return {
            "observations": np.stack(columns["obs"]),
            "actions": np.stack(columns["actions"]),
            "next_observations": np.stack(columns["next"]),
            "rewards": np.array(columns["rewards"], dtype=np.float64),
            "terminated": np.array(columns["term"], dtype=bool),
            "truncated": np.array(columns["trunc"], dtype=bool),
        }

    def run_jobs(self, controller_factory: ControllerFactory, jobs: Sequence[EpisodeJob]) -> list[list[EpisodeRecord]]:
        return [run_episode_job(self.env, controller_factory, job) for job in jobs]

    def close(self) -> None:
        self.env.close()


class RayBackend:
    """``num_envs`` environments, one per Ray actor; see the module docstring for the two ways
    to drive them. ``close`` ends the actors, and Ray too if this backend started it."""

    def __init__(
        self,
        env_factory: Callable[[], Any],
        num_envs: int,
        address: str | None = None,
        num_cpus: int | None = None,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs} must be >= 1")
        self._ray = import_ray()
        self._owns_ray = connect_ray(address, num_cpus)
        cluster_cpus = self._ray.cluster_resources().get("CPU", 0)
        if cluster_cpus < num_envs:
            if self._owns_ray:
                self._ray.shutdown()
            raise ValueError(
                f"num_envs={num_envs} Ray actors need one CPU each; the cluster has {cluster_cpus:g} "
                "(start more workers with `ray start --address=...`, or collect with fewer envs)"
            )
        # One CPU per actor: Ray then places at most one environment per core, and sets the
        # actor's OMP/torch thread count to one.
        actor_class = self._ray.remote(num_cpus=1)(EnvActor)
        self._actors = [actor_class.remote(env_factory) for _ in range(num_envs)]
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = self._ray.get(self._actors[0].spaces.remote())

    def _get(self, refs: list[Any]) -> list[Any]:
        """``ray.get`` that re-raises an actor's error as its own type (as the process backend does)."""
        try:
            return self._ray.get(refs)
        except self._ray.exceptions.RayTaskError as error:
            cause = error.as_instanceof_cause()
            raise (cause.cause if getattr(cause, "cause", None) is not None else cause) from None

    def reset(self, seed: int | None = None) -> np.ndarray:
        seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        return np.stack(self._get([a.reset.remote(s) for a, s in zip(self._actors, seeds, strict=True)]))

    def step(self, actions: np.ndarray) -> StepResult:
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape[0] != self.num_envs:
            raise ValueError(f"actions for {actions.shape[0]} envs, backend has {self.num_envs}")
        replies = self._get([a.step.remote(action) for a, action in zip(self._actors, actions, strict=True)])
        obs, rewards, terminated, truncated, final_obs = (np.array(column) for column in zip(*replies, strict=True))
        done = terminated | truncated
        return obs, rewards.astype(np.float64), terminated, truncated, {"final_obs": final_obs, "_final_obs": done}

    def set_tasks(self, tasks: Sequence[Task]) -> None:
        if len(tasks) != self.num_envs:
            raise ValueError(f"set_tasks got {len(tasks)} tasks for {self.num_envs} environments")
        for task in tasks:
            task.validate()
        self._get([a.set_task.remote(task) for a, task in zip(self._actors, tasks, strict=True)])

    def get_tasks(self) -> list[Task]:
        return self._get([a.get_task.remote() for a in self._actors])

    def rollouts(self, policy: Policy, n_steps: int, seed: int | None = None) -> list[Trajectory]:
        """What ``collect_rollouts(self, policy, n_steps, seed)`` returns, with every actor
        stepping its environment on its own: ``policy`` (which must pickle and treat each row of
        its batch alone) goes into the object store once and runs in the actors."""
        if n_steps < 1:
            raise ValueError(f"n_steps={n_steps} must be >= 1")
        policy_ref = self._ray.put(policy)
        seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        parts = self._get([a.rollout.remote(policy_ref, n_steps, s) for a, s in zip(self._actors, seeds, strict=True)])
        return [Trajectory(**part) for part in parts]

    def run_episode_jobs(
        self, controller_factory: ControllerFactory, jobs: Sequence[EpisodeJob]
    ) -> list[list[EpisodeRecord]]:
        """``run_episode_jobs_here`` spread over the actors (job ``j`` on actor ``j mod num_envs``),
        results in job order. The factory (which carries the controller's parameters) goes into
        the object store once for all jobs."""
        if not jobs:
            return []
        factory_ref = self._ray.put(controller_factory)
        shares = [list(range(i, len(jobs), self.num_envs)) for i in range(self.num_envs)]
        refs = [
            actor.run_jobs.remote(factory_ref, [jobs[j] for j in share])
            for actor, share in zip(self._actors, shares, strict=True)
            if share
        ]
        results: list[list[EpisodeRecord] | None] = [None] * len(jobs)
        for share, records in zip([s for s in shares if s], self._get(refs), strict=True):
            for j, record in zip(share, records, strict=True):
                results[j] = record
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for actor in self._actors:
            try:
                self._ray.get(actor.close.remote())
            except self._ray.exceptions.RayError:
                pass
            self._ray.kill(actor)
        self._actors = []
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False


def make_ray_backend(
    env_id: str, num_envs: int, address: str | None = None, num_cpus: int | None = None, **env_kwargs: Any
) -> RayBackend:
    """``num_envs`` actors, each with ``gymnasium.make(env_id, **env_kwargs)``: the Ray counterpart of
    ``make_process_backend``. With no ``address`` (and Ray not yet initialised) a local Ray
    instance of ``num_cpus`` is started and shut down again by ``close``."""
    return RayBackend(functools.partial(make_env, env_id, **env_kwargs), num_envs, address, num_cpus)
