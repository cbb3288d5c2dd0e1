"""The robot's own joint limits, from its URDF, and the bundle limits they allow (no ROS here).

ros2_control reads a joint's limits from the ``<limit effort= velocity=>`` of the URDF in
``robot_description``; so does the node. A bundle may only narrow them: one whose action limits
are wider than the robot's is refused, naming the joint, and commands are clamped to both.

The URDF is hostile input like any other parameter: it is size-capped, a document with a
DOCTYPE (the only way to declare entities, hence to build an entity-expansion bomb or reach an
external entity) is refused outright, and it is parsed by ``xml.etree`` (expat, which neither
fetches external entities nor expands undeclared ones). Every error names what was wrong.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metarl_runtime.urdf_document import parse_urdf_root


class RobotLimitsError(ValueError):
    """A robot description that cannot be used, or a bundle wider than the robot allows."""


@dataclass(frozen=True)
class JointLimit:
    """One joint's ``<limit>``: effort (N·m or N) and velocity (rad/s or m/s), ``inf`` if absent."""

    effort: float
    velocity: float


def _limit_value(joint: str, element: ElementTree.Element, name: str) -> float:
    text = element.get(name)
    if text is None:
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise RobotLimitsError(f"robot_description: joint {joint!r} <limit {name}={text!r}> is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise RobotLimitsError(f"robot_description: joint {joint!r} <limit {name}={text!r}> must be finite and > 0")
    return value


def parse_urdf_limits(urdf: str) -> dict[str, JointLimit]:
    """Every joint's limits in a URDF string (joints without ``<limit>`` are absent)."""
    root = parse_urdf_root(urdf, RobotLimitsError, "robot_description")
    limits: dict[str, JointLimit] = {}
    for joint in root.iter("joint"):
        name = joint.get("name")
        limit = joint.find("limit")
        if not name or limit is None:
            continue
        if name in limits:
            raise RobotLimitsError(f"robot_description: joint {name!r} is defined twice")
        limits[name] = JointLimit(_limit_value(name, limit, "effort"), _limit_value(name, limit, "velocity"))
    return limits


def allowed_command_limits(
    limits: dict[str, JointLimit],
    joint_names: Sequence[str],
    command_interface: str,
    action_low: np.ndarray,
    action_high: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The command limits to clamp to, ``min(bundle, robot)``; raises :class:`RobotLimitsError`
    naming the joint when the bundle's limits are wider than the robot's.

    Effort bundles: action ``i`` is joint ``joint_names[i]``'s effort. Wheel-speed bundles
    (``twist``): every action is bounded by the slowest wheel's velocity limit."""
    missing = [j for j in joint_names if j not in limits]
    low, high = np.asarray(action_low, dtype=np.float64), np.asarray(action_high, dtype=np.float64)
    if command_interface == "twist":
        known = [limits[j].velocity for j in joint_names if j in limits]
        bound = np.full(low.shape, min(known, default=math.inf))
        names = ["wheel speed"] * len(low)
        quantity = "velocity"
    else:
        if missing:
            raise RobotLimitsError(f"robot_description has no <limit> for the bundle's joints {missing}")
        bound = np.array([limits[j].effort for j in joint_names], dtype=np.float64)
        names = list(joint_names)
        quantity = "effort"
    for name, lo, hi, b in zip(names, low, high, bound, strict=True):
        if lo < -b or hi > b:
            raise RobotLimitsError(
                f"bundle limits [{lo:g}, {hi:g}] for joint {name!r} are wider than the robot's {quantity} "
                f"limit ±{b:g} (robot_description)"
            )
    return np.maximum(low, -bound), np.minimum(high, bound)
