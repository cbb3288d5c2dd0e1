"""Both environments: gymnasium conformance, determinism, input errors, rendering, live task changes."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim  # noqa: F401  (registers the environment ids)
from sim.tasks import HuskyTask, PandaTask

ENV_IDS = ["metarl/PandaPayload-v0", "metarl/HuskyTerrain-v0"]
SHORT_EPISODE_S = 0.5


def make(env_id: str, **kwargs) -> gymnasium.Env:
    return gymnasium.make(env_id, episode_duration_s=SHORT_EPISODE_S, **kwargs)


def rollout(env: gymnasium.Env, seed: int, n_steps: int) -> np.ndarray:
    """Observations under a seeded random action sequence."""
    obs, _ = env.reset(seed=seed)
    actions = np.random.default_rng(seed).uniform(
        env.action_space.low, env.action_space.high, (n_steps, env.action_space.shape[0])
    )
    trajectory = [obs]
    for action in actions:
        obs, *_ = env.step(action.astype(np.float32))
        trajectory.append(obs)
    return np.stack(trajectory)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_passes_gymnasium_env_checker(env_id) -> None:
    env = make(env_id)
    check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_registered_time_limit_follows_episode_duration(env_id) -> None:
    env = make(env_id)
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        *_, terminated, truncated, _ = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
        steps += 1
        assert not terminated
    assert steps == round(SHORT_EPISODE_S * 100)
    env.close()


@pytest.mark.parametrize(
    ("env_id", "task"),
    [
        ("metarl/PandaPayload-v0", PandaTask(payload_mass_kg=2.0, payload_com_offset_m=(0.02, 0.0, 0.03))),
        (
            "metarl/HuskyTerrain-v0",
            HuskyTask(terrain_type="rough", terrain_roughness_m=0.03, payload_mass_kg=20.0),
        ),
    ],
)
def test_same_seed_and_task_give_identical_trajectories(env_id, task) -> None:
    first, second = make(env_id), make(env_id)
    first.unwrapped.set_task(task)
    second.unwrapped.set_task(task)
    a = rollout(first, seed=7, n_steps=30)
    rollout(second, seed=99, n_steps=10)  # an unrelated episode first: resets must not leak state
    b = rollout(second, seed=7, n_steps=30)
    again = rollout(first, seed=7, n_steps=30)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, again)
    assert not np.array_equal(a, rollout(first, seed=8, n_steps=30))
    first.close()
    second.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action_is_a_clear_value_error(env_id, bad) -> None:
    env = make(env_id)
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, dtype=np.float32)
    action[0] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(action)
    obs, *_ = env.step(np.zeros_like(action))  # the env is still usable
    assert np.all(np.isfinite(obs))
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_action_of_wrong_shape_is_a_value_error(env_id) -> None:
    env = make(env_id)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(5, dtype=np.float32))
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_actions_outside_the_box_are_clipped(env_id) -> None:
    clipped, huge = make(env_id), make(env_id)
    clipped.reset(seed=3)
    huge.reset(seed=3)
    high = clipped.action_space.high
    obs_clipped, *_ = clipped.step(high)
    obs_huge, *_ = huge.step(high * 1000.0)
    np.testing.assert_array_equal(obs_clipped, obs_huge)
    clipped.close()
    huge.close()


@pytest.mark.parametrize(
    ("env_id", "bad_task", "field"),
    [
        ("metarl/PandaPayload-v0", PandaTask(payload_mass_kg=-1.0), "payload_mass_kg"),
        ("metarl/HuskyTerrain-v0", HuskyTask(slope_rad=0.9), "slope_rad"),
    ],
)
def test_set_task_refuses_an_out_of_range_task(env_id, bad_task, field) -> None:
    env = make(env_id)
    before = env.unwrapped.get_task()
    with pytest.raises(ValueError, match=field):
        env.unwrapped.set_task(bad_task)
    assert env.unwrapped.get_task() == before
    with pytest.raises(ValueError, match="expects a"):
        env.unwrapped.set_task({"payload_mass_kg": 1.0})
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("split", ["train", "interp", "extrap"])
def test_sample_tasks_gives_n_valid_tasks_of_the_env_type(env_id, split) -> None:
    env = make(env_id)
    tasks = env.unwrapped.sample_tasks(4, np.random.default_rng(0), split=split)
    assert len(tasks) == 4 and all(isinstance(t, env.unwrapped.task_type) for t in tasks)
    for task in tasks:
        env.unwrapped.set_task(task)
        assert env.unwrapped.get_task() == task
    with pytest.raises(ValueError, match="split"):
        env.unwrapped.sample_tasks(1, np.random.default_rng(0), split="test")
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_render_returns_an_rgb_image(env_id) -> None:
    env = make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.shape == (240, 320, 3) and image.dtype == np.uint8
    assert image.std() > 0.0  # not a blank frame
    env.close()


@pytest.mark.parametrize(
    ("env_id", "heavier"),
    [
        ("metarl/PandaPayload-v0", PandaTask(payload_mass_kg=3.0)),
        ("metarl/HuskyTerrain-v0", HuskyTask(payload_mass_kg=60.0)),
    ],
)
def test_payload_switch_mid_episode_changes_dynamics_at_once(env_id, heavier) -> None:
    nominal, switched = make(env_id), make(env_id)
    nominal.reset(seed=5)
    switched.reset(seed=5)
    action = (0.3 * nominal.action_space.high).astype(np.float32)
    for _ in range(20):
        obs_nominal, *_ = nominal.step(action)
        obs_switched, *_ = switched.step(action)
    np.testing.assert_array_equal(obs_nominal, obs_switched)
    switched.unwrapped.set_task(heavier)
    obs_nominal, *_ = nominal.step(action)
    obs_switched, *_ = switched.step(action)
    assert switched.unwrapped.get_task() == heavier
    assert np.abs(obs_nominal - obs_switched).max() > 1e-4
    nominal.close()
    switched.close()


def test_observation_holds_no_task_truth() -> None:
    """Two tasks, same seed: the reference part of the observation is identical, and the state
    part only starts to differ once the physics has acted."""
    env = make("metarl/PandaPayload-v0")
    first, _ = env.reset(seed=1)
    env.unwrapped.set_task(PandaTask(payload_mass_kg=4.0, joint_friction_scale=3.0))
    second, info = env.reset(seed=1)
    np.testing.assert_array_equal(first, second)
    assert "task" not in info
    env.close()


@pytest.mark.parametrize(
    ("env_id", "episode_duration_s", "steps"),
    [("metarl/PandaPayload-v0", None, 500), ("metarl/PandaPayload-v0", 0.3, 30), ("metarl/HuskyTerrain-v0", 0.2, 20)],
)
def test_the_env_alone_ends_its_episode_after_its_duration(env_id: str, episode_duration_s, steps: int) -> None:
    """One time limit: the env's own ``truncated`` (no TimeLimit wrapper, no registered
    ``max_episode_steps``), after ``episode_duration_s`` (registered default: 5 s) of 100 Hz steps."""
    kwargs = {} if episode_duration_s is None else {"episode_duration_s": episode_duration_s}
    env = gymnasium.make(env_id, **kwargs)
    assert env.spec.max_episode_steps is None and env.unwrapped.max_episode_steps == steps
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    truncations = [env.step(zero)[3] for _ in range(steps)]
    assert truncations == [False] * (steps - 1) + [True]
    env.close()
