"""The classic meta-RL tasks: gymnasium conformance, the task API, disjoint splits, and the
point's dynamics as MAML defines them."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim  # noqa: F401  (registers the environment ids)
from sim.meta_rl_tasks.tasks import CheetahVelocityTask, PointGoalTask

ENV_IDS = ["metarl/PointNavigation-v0", "metarl/HalfCheetahVelocity-v0"]
TASKS = {"metarl/PointNavigation-v0": PointGoalTask, "metarl/HalfCheetahVelocity-v0": CheetahVelocityTask}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_passes_gymnasium_env_checker(env_id: str) -> None:
    env = gymnasium.make(env_id)
    check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_task_api_samples_sets_and_round_trips_json(env_id: str) -> None:
    env = gymnasium.make(env_id)
    tasks = env.unwrapped.sample_tasks(5, np.random.default_rng(0), "train")
    assert all(isinstance(task, TASKS[env_id]) for task in tasks)
    for task in tasks:
        env.unwrapped.set_task(task)
        assert env.unwrapped.get_task() == task
        assert TASKS[env_id].from_json(task.to_json()) == task
    with pytest.raises(ValueError, match="split"):
        env.unwrapped.sample_tasks(1, np.random.default_rng(0), "test")
    env.close()


@pytest.mark.parametrize(
    ("bad", "field"),
    [(PointGoalTask(goal_x_m=1.5), "goal_x_m"), (CheetahVelocityTask(target_velocity_m_s=-4.0), "target_velocity_m_s")],
)
def test_out_of_range_task_is_refused_by_name(bad, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        bad.validate()


def test_point_goal_splits_are_disjoint_regions() -> None:
    rng = np.random.default_rng(0)
    goals = {split: [PointGoalTask.sample(rng, split) for _ in range(300)] for split in ("train", "interp", "extrap")}
    for split, tasks in goals.items():
        assert all(PointGoalTask.split_of(t.goal_x_m, t.goal_y_m) == split for t in tasks)
    inside = [max(abs(t.goal_x_m), abs(t.goal_y_m)) for t in goals["train"] + goals["interp"]]
    outside = [max(abs(t.goal_x_m), abs(t.goal_y_m)) for t in goals["extrap"]]
    assert max(inside) <= 0.5 < min(outside) and max(outside) <= 1.0
    # interp: the diagonal sectors, at every distance; train never goes there.
    angles = np.degrees([np.arctan2(t.goal_y_m, t.goal_x_m) % (np.pi / 2) for t in goals["interp"]])
    assert np.all(np.abs(angles - 45.0) <= 10.0)
    assert not any(PointGoalTask.in_held_out_sector(t.goal_x_m, t.goal_y_m) for t in goals["train"])


def test_cheetah_speed_splits_do_not_overlap_and_cover_both_directions() -> None:
    rng = np.random.default_rng(0)
    speeds = {
        split: np.array([CheetahVelocityTask.sample(rng, split).target_velocity_m_s for _ in range(200)])
        for split in ("train", "interp", "extrap")
    }
    train, interp, extrap = (np.abs(speeds[s]) for s in ("train", "interp", "extrap"))
    assert np.all(((train >= 0.25) & (train <= 0.75)) | ((train >= 1.0) & (train <= 1.5)))
    assert np.all((interp >= 0.75) & (interp <= 1.0))
    assert np.all((extrap > 1.5) & (extrap <= 2.5))
    assert all((s > 0).any() and (s < 0).any() for s in speeds.values())


def test_point_moves_by_the_clipped_action_and_is_rewarded_by_minus_the_distance() -> None:
    env = gymnasium.make("metarl/PointNavigation-v0")
    env.unwrapped.set_task(PointGoalTask(goal_x_m=0.3, goal_y_m=-0.4))
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    obs, reward, terminated, truncated, info = env.step(np.array([5.0, -0.05], dtype=np.float32))
    np.testing.assert_allclose(obs, [0.1, -0.05], atol=1e-7)
    assert reward == pytest.approx(-np.hypot(0.2, 0.35)) and info["distance_m"] == pytest.approx(-reward)
    assert not terminated and not truncated
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(np.array([np.nan, 0.0], dtype=np.float32))
    env.close()


def test_point_episode_ends_at_the_goal_or_after_100_steps() -> None:
    env = gymnasium.make("metarl/PointNavigation-v0")
    env.unwrapped.set_task(PointGoalTask(goal_x_m=0.2, goal_y_m=0.1))
    env.reset(seed=0)
    for _ in range(2):
        *_, terminated, _, _ = env.step(np.array([0.1, 0.05], dtype=np.float32))
    assert terminated
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        *_, terminated, truncated, _ = env.step(np.array([-0.1, 0.0], dtype=np.float32))
        steps, done = steps + 1, terminated or truncated
    assert steps == 100 and truncated and not terminated
    env.close()


def test_cheetah_runs_at_20_hz_with_seeded_identical_episodes() -> None:
    env = gymnasium.make("metarl/HalfCheetahVelocity-v0", episode_duration_s=1.0)
    assert env.unwrapped.max_episode_steps == 20
    actions = np.random.default_rng(0).uniform(env.action_space.low, env.action_space.high, (20, 6)).astype(np.float32)

    def episode(seed: int) -> np.ndarray:
        obs = [env.reset(seed=seed)[0]]
        for action in actions:
            obs.append(env.step(action)[0])
        return np.stack(obs)

    first = episode(3)
    np.testing.assert_array_equal(first, episode(3))
    assert not np.array_equal(first, episode(4))
    env.unwrapped.set_task(CheetahVelocityTask(target_velocity_m_s=-1.0))
    obs, reward, *_, info = env.step(np.zeros(6, dtype=np.float32))
    assert info["tracking_error"] == pytest.approx(abs(obs[8] + 1.0), abs=1e-6) and reward == pytest.approx(
        -info["tracking_error"]
    )
    env.close()
