"""Per-task trajectory replay: windows of M past and K future consecutive transitions.

GrBAL adapts on the M most recent transitions and is judged on the K that follow, so a window
must be consecutive in time and must never span two episodes (the transition across a reset is
not dynamics). Windows are therefore sampled only from start indices whose M + K transitions
lie inside one episode.
"""

from __future__ import annotations

from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


class Transitions(NamedTuple, Generic[Array]):
    """Consecutive transitions ``(s, a, s')``: ``(M, dim)`` for one window, ``(B, M, dim)`` for a
    batch; numpy arrays as sampled, tensors once on the learner's device.

    A named tuple rather than a dataclass: it unpacks into the functions of raw transitions
    (``window_loss(params, *window, stats)``) and it is a pytree, so ``torch.func.vmap`` maps
    over a batch of windows as over plain tensors.
    """

    states: Array
    actions: Array
    next_states: Array

    def to_torch(self, device: torch.device | str = "cpu") -> Transitions[torch.Tensor]:
        """The numpy arrays as tensors on ``device`` (shared memory on the CPU)."""
        return Transitions(*(torch.from_numpy(np.ascontiguousarray(x)).to(device) for x in self))

    def at(self, index: int) -> Transitions[Array]:
        """Window ``index`` of a batch."""
        return Transitions(*(x[index] for x in self))


class TransitionWindows(NamedTuple, Generic[Array]):
    """GrBAL's unit of data: the M transitions adapted on, then the K that follow, judged on."""

    past: Transitions[Array]
    future: Transitions[Array]

    def to_torch(self, device: torch.device | str = "cpu") -> TransitionWindows[torch.Tensor]:
        return TransitionWindows(self.past.to_torch(device), self.future.to_torch(device))

    def at(self, index: int) -> TransitionWindows[Array]:
        """Window ``index`` of a batch."""
        return TransitionWindows(self.past.at(index), self.future.at(index))

    @staticmethod
    def concatenate(batches: list[TransitionWindows[np.ndarray]]) -> TransitionWindows[np.ndarray]:
        """One batch of every window of ``batches`` (numpy), in order."""

        def joined(parts: list[Transitions[np.ndarray]]) -> Transitions[np.ndarray]:
            return Transitions(*(np.concatenate(arrays) for arrays in zip(*parts, strict=True)))

        return TransitionWindows(joined([b.past for b in batches]), joined([b.future for b in batches]))


class TaskReplayBuffer:
    """The transitions of one task, episode by episode (the seeds' experience replay)."""

    def __init__(self, state_dim: int, action_dim: int) -> None:
        self.state_dim, self.action_dim = state_dim, action_dim
        self.episodes: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add_episode(self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray) -> None:
        """Append one episode's consecutive transitions ``(T, S)``, ``(T, A)``, ``(T, S)``."""
        states, actions, next_states = (np.asarray(x, dtype=np.float32) for x in (states, actions, next_states))
        length = len(states)
        if actions.shape != (length, self.action_dim) or states.shape != (length, self.state_dim):
            raise ValueError(
                f"episode shapes {states.shape}, {actions.shape}, {next_states.shape} do not match "
                f"state_dim={self.state_dim}, action_dim={self.action_dim}"
            )
        if next_states.shape != states.shape:
            raise ValueError(f"next_states shape {next_states.shape} != states shape {states.shape}")
        if length:
            self.episodes.append((states, actions, next_states))

    def add_trajectory(
        self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray, dones: np.ndarray
    ) -> None:
        """Split a trajectory at its episode ends (``dones``) and add each piece as an episode."""
        start = 0
        for end in [*(np.flatnonzero(dones) + 1).tolist(), len(states)]:
            if end > start:
                self.add_episode(states[start:end], actions[start:end], next_states[start:end])
            start = end

    def to_state(self) -> dict[str, Any]:
        """Plain data a ``weights_only`` checkpoint can hold: sizes and per-episode tensors."""
        return {
            "state_dim": self.state_dim,
            "action_dim": self.action_dim,
            "episodes": [[torch.from_numpy(np.ascontiguousarray(x)) for x in episode] for episode in self.episodes],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TaskReplayBuffer:
        """The buffer :meth:`to_state` described, every episode's shapes checked again."""
        buffer = cls(int(state["state_dim"]), int(state["action_dim"]))
        for states, actions, next_states in state["episodes"]:
            buffer.add_episode(states.numpy(), actions.numpy(), next_states.numpy())
        return buffer

    @property
    def num_transitions(self) -> int:
        return sum(len(e[0]) for e in self.episodes)

    def all_transitions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(np.concatenate([e[i] for e in self.episodes]) for i in range(3))  # type: ignore[return-value]

    def window_starts(self, length: int) -> list[tuple[int, int]]:
        """Every (episode, start) whose ``length`` transitions lie inside that episode."""
        return [(e, s) for e, episode in enumerate(self.episodes) for s in range(len(episode[0]) - length + 1)]

    def sample_windows(
        self, past: int, future: int, count: int, rng: np.random.Generator
    ) -> TransitionWindows[np.ndarray]:
        """``count`` windows of ``past`` then ``future`` consecutive transitions of one episode."""
        starts = self.window_starts(past + future)
        if not starts:
            raise ValueError(
                f"no episode holds {past}+{future} consecutive transitions "
                f"(longest has {max((len(e[0]) for e in self.episodes), default=0)})"
            )
        picks = [starts[i] for i in rng.integers(len(starts), size=count)]
        pasts, futures = [], []
        for episode, start in picks:
            middle, end = start + past, start + past + future
            arrays = self.episodes[episode]
            pasts.append([x[start:middle] for x in arrays])
            futures.append([x[middle:end] for x in arrays])
        return TransitionWindows(
            Transitions(*(np.stack(x) for x in zip(*pasts, strict=True))),
            Transitions(*(np.stack(x) for x in zip(*futures, strict=True))),
        )
