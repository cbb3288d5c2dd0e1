"""A robot task's reward as its name and constants, owned by the environment that computes it.

The environment's own reward reads these constants, the RL² exporter copies them into
``bundle.json`` (``reward``) and the robot's ``metarl_runtime.tracking_reward`` recomputes the
reward from that JSON alone: one set of numbers, so the reward a policy reads on the robot is
the one it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RewardSpec:
    """``name`` picks the formula in ``metarl_runtime.tracking_reward``; ``constants`` are its
    numbers (floats, or tuples of floats, one per action)."""

    name: str
    constants: Mapping[str, float | tuple[float, ...]]

    def to_json(self) -> dict[str, Any]:
        """The spec as ``bundle.json`` holds it: ``{"name": ..., <constant>: value, ...}``."""
        return {"name": self.name, **{k: list(v) if isinstance(v, tuple) else v for k, v in self.constants.items()}}
