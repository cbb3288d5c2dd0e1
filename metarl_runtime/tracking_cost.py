"""The planner's tracking cost, built from field names alone (numpy only).

Because it is derived from ``state_fields`` and ``reference_fields``, the robot rebuilds exactly
the cost used in training from ``bundle.json``: a state field is tracked by the reference field
of the same quantity (``joint_states.position:j`` by ``reference.position:j``,
``odom.twist.linear.x`` by ``reference.twist.linear.x``), and a reference position moves with
its reference velocity over the horizon.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _tracked_by(state_field: str) -> str | None:
    if state_field.startswith("joint_states."):
        return "reference." + state_field.removeprefix("joint_states.")
    if state_field.startswith("odom.twist."):
        return "reference.twist." + state_field.removeprefix("odom.twist.")
    return None


@dataclass(frozen=True)
class TrackingCost:
    """Weighted squared error between predicted states and the (extrapolated) reference."""

    state_index: np.ndarray
    reference_index: np.ndarray
    weight: np.ndarray
    rate_index: np.ndarray
    """For each tracked reference entry, the reference entry that is its rate (or -1)."""
    action_weight: float

    @classmethod
    def from_fields(
        cls,
        state_fields: Sequence[str],
        reference_fields: Sequence[str],
        velocity_weight: float = 0.1,
        action_weight: float = 0.0,
    ) -> TrackingCost:
        """Pair every state field with the reference field tracking it; raise if none do."""
        reference_position = {name: i for i, name in enumerate(reference_fields)}
        state_index, reference_index, weight, rate_index = [], [], [], []
        for i, field in enumerate(state_fields):
            target = _tracked_by(field)
            if target is None or target not in reference_position:
                continue
            state_index.append(i)
            reference_index.append(reference_position[target])
            is_joint_velocity = ".velocity:" in field
            weight.append(velocity_weight if is_joint_velocity else 1.0)
            rate_field = target.replace(".position:", ".velocity:") if ".position:" in target else None
            rate_index.append(reference_position.get(rate_field, -1) if rate_field else -1)
        if not state_index:
            raise ValueError(f"no state field is tracked by the reference fields {list(reference_fields)}")
        return cls(
            np.asarray(state_index),
            np.asarray(reference_index),
            np.asarray(weight),
            np.asarray(rate_index),
            action_weight,
        )

    def reference_over_horizon(self, reference: np.ndarray, horizon: int, period_s: float) -> np.ndarray:
        """``(horizon, n_tracked)`` targets: positions advance with their reference rates."""
        target = reference[self.reference_index]
        has_rate = self.rate_index >= 0
        rate = np.where(has_rate, reference[np.maximum(self.rate_index, 0)], 0.0)
        steps = np.arange(1, horizon + 1)[:, None] * period_s
        return target[None, :] + steps * rate[None, :]

    def __call__(self, predicted_states: np.ndarray, target: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Per-sample cost of one horizon step: ``(K, S)``, ``(n_tracked,)``, ``(K, A)`` -> ``(K,)``."""
        error = predicted_states[:, self.state_index] - target[None, :]
        cost = (error**2) @ self.weight
        if self.action_weight:
            cost = cost + self.action_weight * np.sum(actions**2, axis=1)
        return cost
