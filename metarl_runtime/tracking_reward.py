"""The reward an RL² policy was trained on, recomputed on the robot (numpy only).

An RL² policy adapts by reading its previous reward, so the robot must hand it the same number
the simulator did. ``bundle.json`` names the reward and its constants (``reward``: the env's
own ``reward_spec``, copied by the exporter; nothing here knows a robot's numbers), and the
quantities it compares are found by field name, as in ``metarl_runtime.tracking_cost``:

- ``joint_position_rms_effort_penalty`` (arms): ``-rms(q - q_ref) - effort_penalty *
  mean((command / effort_limits)^2)``, the RMS over every ``joint_states.position:<j>`` that has a
  ``reference.position:<j>`` (rad), the command in N·m;
- ``twist_tracking`` (bases): ``-hypot(v - v_ref, (w - w_ref) * track_width_m / 2)`` (m/s), from
  ``odom.twist.linear.x`` / ``reference.twist.linear.x`` and ``odom.twist.angular.z`` /
  ``reference.twist.angular.z``.

The reward of a step is computed from the observation *after* it and the command that led to
it (clipped to the limits), exactly as the environments do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

REWARD_NAMES = ("joint_position_rms_effort_penalty", "twist_tracking")


def _index(fields: Sequence[str], name: str, where: str) -> int:
    if name not in fields:
        raise ValueError(f"reward needs {where} field '{name}', which is not among {list(fields)}")
    return list(fields).index(name)


class TrackingReward:
    """``reward(state, reference, command) -> float`` as named by a bundle's ``reward`` spec."""

    def __init__(
        self,
        spec: Mapping[str, Any],
        state_fields: Sequence[str],
        reference_fields: Sequence[str],
        action_dim: int,
    ) -> None:
        """Resolve the spec against the bundle's fields; a ``ValueError`` names what is missing."""
        self.name = spec.get("name")
        if self.name == "joint_position_rms_effort_penalty":
            positions = [f for f in state_fields if f.startswith("joint_states.position:")]
            tracked = [f for f in positions if "reference." + f.removeprefix("joint_states.") in reference_fields]
            if not tracked:
                raise ValueError(f"no joint_states.position field is tracked by {list(reference_fields)}")
            self.state_index = np.array([_index(state_fields, f, "state") for f in tracked])
            self.reference_index = np.array(
                [_index(reference_fields, "reference." + f.removeprefix("joint_states."), "reference") for f in tracked]
            )
            self.effort_penalty = self._finite(spec, "effort_penalty", 0.0)
            limits = np.asarray(self._constant(spec, "effort_limits"), dtype=np.float64)
            if limits.shape != (action_dim,) or not np.all((limits > 0) & np.isfinite(limits)):
                raise ValueError(f"reward.effort_limits must be {action_dim} positive values, got {limits.tolist()}")
            self.inverse_effort_limits = 1.0 / limits
        elif self.name == "twist_tracking":
            self.state_index = np.array(
                [_index(state_fields, f"odom.twist.{q}", "state") for q in ("linear.x", "angular.z")]
            )
            self.reference_index = np.array(
                [_index(reference_fields, f"reference.twist.{q}", "reference") for q in ("linear.x", "angular.z")]
            )
            self.half_track_m = self._finite(spec, "track_width_m", 0.0, strictly=True) / 2.0
        else:
            raise ValueError(f"reward.name={self.name!r} is not one of {REWARD_NAMES}")

    @classmethod
    def _finite(cls, spec: Mapping[str, Any], key: str, minimum: float, strictly: bool = False) -> float:
        """``reward.<key>`` as a finite number >= ``minimum`` (> with ``strictly``)."""
        value = cls._constant(spec, key)
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
        if not math.isfinite(number) or number < minimum or (strictly and number == minimum):
            bound = f"> {minimum}" if strictly else f">= {minimum}"
            raise ValueError(f"reward.{key}={value!r} must be a finite number {bound}")
        return number

    @staticmethod
    def _constant(spec: Mapping[str, Any], key: str) -> Any:
        if key not in spec:
            raise ValueError(f"reward '{spec['name']}' needs 'reward.{key}'")
        return spec[key]

    def __call__(self, state: np.ndarray, reference: np.ndarray, command: np.ndarray) -> float:
        """Reward of the step that ended in ``state`` under ``reference``, having commanded ``command``."""
        error = np.asarray(state, dtype=np.float64)[self.state_index] - np.asarray(reference)[self.reference_index]
        if self.name == "twist_tracking":
            return -math.hypot(float(error[0]), float(error[1]) * self.half_track_m)
        scaled = np.asarray(command, dtype=np.float64) * self.inverse_effort_limits
        rms = math.sqrt(float(error @ error) / len(error))
        return -rms - self.effort_penalty * float(scaled @ scaled) / len(scaled)
