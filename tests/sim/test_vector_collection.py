"""Vector collection: the worker-process backend is the synchronous one, only in processes."""

from __future__ import annotations

import numpy as np
import pytest

from sim.tasks import HuskyTask, PandaTask
from sim.vector_collection import collect_rollouts, make_process_backend, make_sync_backend

EPISODE_S = 0.3
TASKS = {
    "metarl/PandaPayload-v0": [PandaTask(), PandaTask(payload_mass_kg=2.5, joint_friction_scale=2.0)],
    "metarl/HuskyTerrain-v0": [HuskyTask(), HuskyTask(payload_mass_kg=30.0, slope_rad=0.1)],
}


def constant_policy(action_dim: int):
    def policy(obs: np.ndarray) -> np.ndarray:
        return np.full((obs.shape[0], action_dim), 2.0, dtype=np.float32)

    return policy


@pytest.mark.parametrize("env_id", list(TASKS))
def test_process_backend_matches_sync_backend(env_id) -> None:
    tasks = TASKS[env_id]
    action_dim = 7 if "Panda" in env_id else 2
    results = []
    for make in (make_sync_backend, make_process_backend):
        backend = make(env_id, len(tasks), episode_duration_s=EPISODE_S)
        try:
            backend.set_tasks(tasks)
            assert backend.get_tasks() == tasks
            results.append(collect_rollouts(backend, constant_policy(action_dim), n_steps=45, seed=11))
        finally:
            backend.close()
    sync, processes = results
    for a, b in zip(sync, processes, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.next_observations, b.next_observations)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        np.testing.assert_array_equal(a.dones, b.dones)
    # Different tasks under the same seed and actions: different trajectories.
    assert not np.array_equal(sync[0].next_observations, sync[1].next_observations)


def test_trajectories_are_consecutive_and_mark_episode_ends() -> None:
    backend = make_sync_backend("metarl/PandaPayload-v0", 2, episode_duration_s=EPISODE_S)
    backend.set_tasks(TASKS["metarl/PandaPayload-v0"])
    trajectories = collect_rollouts(backend, constant_policy(7), n_steps=70, seed=0)
    backend.close()
    episode_steps = round(EPISODE_S * 100)
    for trajectory in trajectories:
        assert trajectory.observations.shape == (70, 28) and trajectory.actions.shape == (70, 7)
        assert np.flatnonzero(trajectory.dones).tolist() == [episode_steps - 1, 2 * episode_steps - 1]
        assert trajectory.truncated[episode_steps - 1] and not trajectory.terminated.any()
        within = ~trajectory.dones[:-1]
        np.testing.assert_array_equal(trajectory.next_observations[:-1][within], trajectory.observations[1:][within])
        # At an episode end, next_obs is the true final observation, not the next episode's first.
        end = episode_steps - 1
        assert not np.array_equal(trajectory.next_observations[end], trajectory.observations[end + 1])


def test_set_tasks_needs_one_valid_task_per_env() -> None:
    backend = make_sync_backend("metarl/PandaPayload-v0", 2, episode_duration_s=EPISODE_S)
    with pytest.raises(ValueError, match="1 tasks for 2 environments"):
        backend.set_tasks([PandaTask()])
    with pytest.raises(ValueError, match="payload_mass_kg"):
        backend.set_tasks([PandaTask(), PandaTask(payload_mass_kg=50.0)])
    with pytest.raises(ValueError, match="n_steps"):
        collect_rollouts(backend, constant_policy(7), n_steps=0)
    backend.close()


def test_worker_errors_reach_the_parent_with_their_type() -> None:
    backend = make_process_backend("metarl/PandaPayload-v0", 1, episode_duration_s=EPISODE_S)
    try:
        backend.reset(seed=0)
        with pytest.raises(ValueError, match="NaN or inf"):
            backend.step(np.full((1, 7), np.nan, dtype=np.float32))
        with pytest.raises(ValueError, match="payload_mass_kg"):
            backend.set_tasks([PandaTask(payload_mass_kg=-2.0)])
        obs, *_ = backend.step(np.zeros((1, 7), dtype=np.float32))  # the worker survives
        assert np.all(np.isfinite(obs))
    finally:
        backend.close()
