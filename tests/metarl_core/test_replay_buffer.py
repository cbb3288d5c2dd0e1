"""Windows are consecutive and never cross an episode boundary."""

from __future__ import annotations

import numpy as np
import pytest

from metarl_core.model_based.replay_buffer import TaskReplayBuffer


def numbered_episode(start: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """States encode (episode start, time) so a window's provenance can be read back."""
    t = np.arange(start, start + length, dtype=np.float32)
    states = np.stack([t, np.full(length, start, dtype=np.float32)], axis=1)
    return states, t[:, None] * 10, states + np.array([1.0, 0.0], dtype=np.float32)


def test_windows_are_consecutive_and_inside_one_episode() -> None:
    buffer = TaskReplayBuffer(state_dim=2, action_dim=1)
    for start, length in [(0, 7), (100, 30), (200, 9)]:
        buffer.add_episode(*numbered_episode(start, length))
    windows = buffer.sample_windows(past=4, future=5, count=500, rng=np.random.default_rng(0))
    times = np.concatenate([windows.past.states[:, :, 0], windows.future.states[:, :, 0]], axis=1)
    episodes = np.concatenate([windows.past.states[:, :, 1], windows.future.states[:, :, 1]], axis=1)
    assert np.all(np.diff(times, axis=1) == 1), "every window is consecutive across past and future"
    assert np.all(episodes == episodes[:, :1]), "no window spans two episodes"
    assert set(np.unique(episodes[:, 0])) == {100.0, 200.0}, "the 7-step episode is too short for 4+5"
    np.testing.assert_array_equal(windows.past.actions[:, :, 0], windows.past.states[:, :, 0] * 10)


def test_trajectory_is_split_at_dones() -> None:
    buffer = TaskReplayBuffer(state_dim=2, action_dim=1)
    states, actions, next_states = numbered_episode(0, 10)
    dones = np.zeros(10, dtype=bool)
    dones[[3, 9]] = True
    buffer.add_trajectory(states, actions, next_states, dones)
    assert [len(e[0]) for e in buffer.episodes] == [4, 6]


def test_too_short_episodes_give_a_clear_error() -> None:
    buffer = TaskReplayBuffer(state_dim=2, action_dim=1)
    buffer.add_episode(*numbered_episode(0, 5))
    with pytest.raises(ValueError, match=r"no episode holds 4\+4 consecutive transitions \(longest has 5\)"):
        buffer.sample_windows(4, 4, 1, np.random.default_rng(0))
