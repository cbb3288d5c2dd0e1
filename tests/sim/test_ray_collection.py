"""The Ray backend on a local Ray instance gives exactly what the process backend gives."""

from __future__ import annotations

import functools

import gymnasium
import numpy as np
import pytest

import sim  # noqa: F401  (registers the environment ids)
from sim.episode_jobs import EpisodeJob, run_episode_jobs_here
from sim.tasks import PandaTask
from sim.vector_collection import collect_rollouts, make_process_backend

ray = pytest.importorskip("ray")

from sim.ray_collection import RayBackend, connect_ray, make_ray_backend  # noqa: E402

ENV_ID = "metarl/PandaPayload-v0"
EPISODE_S = 0.3
TASKS = [PandaTask(), PandaTask(payload_mass_kg=2.5, joint_friction_scale=2.0)]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs) for the module: starting it costs seconds."""
    connect_ray(num_cpus=2)
    yield
    ray.shutdown()


def linear_policy(obs: np.ndarray) -> np.ndarray:
    """A deterministic policy that reads the observation (each row alone), so that trajectories
    depend on every step having been applied in the right environment."""
    return (np.tanh(obs[:, :7] - obs[:, 7:14]) * 5.0).astype(np.float32)


class SeededNoiseController:
    """A stateful controller whose actions depend on its seed and on the observation."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def reset(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return (self.rng.normal(size=7) * 3.0 - obs[:7]).astype(np.float32)


def assert_same_trajectories(expected, actual) -> None:
    for a, b in zip(expected, actual, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.next_observations, b.next_observations)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        np.testing.assert_array_equal(a.terminated, b.terminated)
        np.testing.assert_array_equal(a.truncated, b.truncated)


def test_ray_backend_matches_process_backend_lock_step_and_in_actor_rollouts(local_ray) -> None:
    process = make_process_backend(ENV_ID, len(TASKS), episode_duration_s=EPISODE_S)
    try:
        process.set_tasks(TASKS)
        expected = collect_rollouts(process, linear_policy, n_steps=45, seed=11)
    finally:
        process.close()
    backend = make_ray_backend(ENV_ID, len(TASKS), episode_duration_s=EPISODE_S)
    try:
        backend.set_tasks(TASKS)
        assert backend.get_tasks() == TASKS
        lock_step = collect_rollouts(backend, linear_policy, n_steps=45, seed=11)
        in_actors = backend.rollouts(linear_policy, n_steps=45, seed=11)
    finally:
        backend.close()
    assert expected[0].dones.any(), "45 steps of 0.3 s episodes must cross an auto-reset"
    assert_same_trajectories(expected, lock_step)
    assert_same_trajectories(expected, in_actors)
    assert not np.array_equal(expected[0].next_observations, expected[1].next_observations)


def test_episode_jobs_on_ray_match_the_jobs_run_in_one_env(local_ray) -> None:
    jobs = [EpisodeJob(task=TASKS[j % 2], reset_seeds=(3 * j, 3 * j + 1), controller_seed=j) for j in range(3)]
    env = gymnasium.make(ENV_ID, episode_duration_s=EPISODE_S)
    try:
        expected = run_episode_jobs_here(env, SeededNoiseController, jobs)
    finally:
        env.close()
    backend = make_ray_backend(ENV_ID, 2, episode_duration_s=EPISODE_S)
    try:
        actual = backend.run_episode_jobs(functools.partial(SeededNoiseController), jobs)
    finally:
        backend.close()
    assert [len(r) for r in actual] == [2, 2, 2]
    for job_expected, job_actual in zip(expected, actual, strict=True):
        for a, b in zip(job_expected, job_actual, strict=True):
            np.testing.assert_array_equal(a.observations, b.observations)
            np.testing.assert_array_equal(a.actions, b.actions)
            np.testing.assert_array_equal(a.next_observations, b.next_observations)
            np.testing.assert_array_equal(a.tracking_errors, b.tracking_errors)
    assert not np.array_equal(expected[0][0].actions, expected[0][1].actions)


def test_ray_backend_reraises_an_actor_error_with_its_type_and_refuses_bad_sizes(local_ray) -> None:
    backend = make_ray_backend(ENV_ID, 1, episode_duration_s=EPISODE_S)
    try:
        with pytest.raises(ValueError, match="set_tasks got 2 tasks for 1"):
            backend.set_tasks(TASKS)
        with pytest.raises(ValueError, match="actions for 2 envs"):
            backend.step(np.zeros((2, 7), dtype=np.float32))
        with pytest.raises(ValueError, match="n_steps=0"):
            backend.rollouts(linear_policy, n_steps=0)
        backend.reset(seed=0)
        with pytest.raises(ValueError):
            backend.step(np.full((1, 7), np.nan, dtype=np.float32))
    finally:
        backend.close()


def test_ray_backend_refuses_more_actors_than_the_cluster_has_cpus(local_ray) -> None:
    with pytest.raises(ValueError, match="num_envs=3 Ray actors need one CPU each; the cluster has 2"):
        RayBackend(lambda: None, 3)
