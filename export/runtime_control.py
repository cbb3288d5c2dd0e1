"""The robot's control step over a bundle, numpy only: remember, adapt, plan, clamp.

This is the logic the ROS node runs each tick, kept free of ROS so that it is unit-tested and
reused by the simulated demo: transitions go into a ring buffer of the last M; every N ticks the
meta-parameters are adapted on it (kept only when finite and the window loss dropped); MPPI plans
through the accepted parameters; the command is clamped to the bundle's limits and is never
NaN or inf.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from export.runtime import AdaptiveRuntime


@dataclass
class AdaptationStats:
    """What diagnostics report about adaptation."""

    attempts: int = 0
    accepted: int = 0
    last_loss_before: float = float("nan")
    last_loss_after: float = float("nan")
    last_reason: str = ""
    rejected_reasons: dict[str, int] = field(default_factory=dict)


class OnlineAdaptiveController:
    """``(state, reference) -> command`` with online adaptation from the meta-parameters."""

    def __init__(self, runtime: AdaptiveRuntime, adapt_every_n_ticks: int = 1, adaptation_enabled: bool = True) -> None:
        if adapt_every_n_ticks < 1:
            raise ValueError(f"adapt_every_n_ticks={adapt_every_n_ticks} must be >= 1")
        self.runtime = runtime
        self.adapt_every_n_ticks = adapt_every_n_ticks
        self.adaptation_enabled = adaptation_enabled
        self.low, self.high = runtime.manifest.action_low, runtime.manifest.action_high
        self.reset()

    def reset(self) -> None:
        """Forget the window and go back to the meta-learned parameters."""
        self.window: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque(maxlen=self.runtime.manifest.window_size)
        self.params = self.runtime.meta_params
        self.previous: tuple[np.ndarray, np.ndarray] | None = None
        self.ticks = 0
        self.stats = AdaptationStats()
        self.runtime.reset_planner()

    def hold(self) -> np.ndarray:
        """The safe command when inputs cannot be trusted: zero (effort or twist), within limits."""
        self.previous = None
        return np.clip(np.zeros_like(self.low), self.low, self.high)

    def __call__(self, state: np.ndarray, reference: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float32)
        if self.previous is not None:
            self.window.append((self.previous[0], self.previous[1], state))
        self.ticks += 1
        if self.adaptation_enabled and len(self.window) >= 2 and self.ticks % self.adapt_every_n_ticks == 0:
            self._adapt()
        try:
            command = self.runtime.plan(self.params, state, reference)
        except FloatingPointError:
            command = self.hold()
        if not np.all(np.isfinite(command)):
            command = self.hold()
        command = np.clip(command, self.low, self.high)
        self.previous = (state, command.astype(np.float32))
        return command

    def _adapt(self) -> None:
        states, actions, next_states = (np.stack(x) for x in zip(*self.window, strict=True))
        result = self.runtime.adapt(states, actions, next_states)
        stats = self.stats
        stats.attempts += 1
        stats.last_loss_before, stats.last_loss_after, stats.last_reason = (
            result.loss_before,
            result.loss_after,
            result.reason,
        )
        if result.accepted:
            stats.accepted += 1
        else:
            key = result.reason.split(" (")[0]
            stats.rejected_reasons[key] = stats.rejected_reasons.get(key, 0) + 1
        self.params = result.params
