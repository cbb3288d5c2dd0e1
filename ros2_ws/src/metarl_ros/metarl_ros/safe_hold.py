"""The safe hold: what the node commands when it cannot trust its inputs or its tick (no ROS here).

One rule per command interface, the effort rule chosen by the ``hold_mode`` parameter:

- ``effort_forward``, ``hold_mode: damping`` (the default): ``-Kd·q̇`` per joint from the last
  *fresh* measured velocity, clamped to the command limits. It brakes a moving arm instead of
  letting it fall freely or keep its last torque. When the joint states themselves are stale or
  invalid there is no velocity to damp (an old one would push the joint for as long as the
  hold lasts), so the hold is zero effort. Gravity is *not* compensated: neither the bundle nor
  the node carries a rigid-body model, so an arm that is not self-supporting sags, braked.
- ``effort_forward``, ``hold_mode: zero``: zero effort (a back-drivable arm under its own brakes
  or gravity compensation elsewhere).
- ``joint_trajectory``: a one-point trajectory to the last measured position with zero
  velocity; the trajectory controller downstream holds it with its own gains.
- ``twist`` (and any bundle whose commands are wheel speeds): zero.

No hold is ever NaN: ros2_control's forward_command_controller passes a NaN through to the
hardware interface, where "no command" is honoured by some drivers and written as a torque by
others, and a last command that stays in force is exactly the fault a hold exists to end. So
every hold is a finite command the node can check against the limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOLD_MODES = ("damping", "zero")


@dataclass(frozen=True)
class HoldCommand:
    """A hold in the interface's own terms: ``command`` (efforts or wheel speeds, action units),
    or, for a trajectory, ``positions_rad`` to hold with zero velocity."""

    command: np.ndarray | None = None
    positions_rad: np.ndarray | None = None


def safe_hold(
    interface: str,
    mode: str,
    damping_nms_per_rad: float,
    low: np.ndarray,
    high: np.ndarray,
    velocities_rad_s: np.ndarray | None,
    positions_rad: np.ndarray | None,
) -> HoldCommand:
    """The hold for ``interface`` (``effort_forward|joint_trajectory|twist``).

    ``velocities_rad_s`` is the fresh measured velocity of each commanded joint (``None`` when
    the joint states are stale, or the commands are not joint efforts); ``positions_rad`` the
    last measured positions (``None`` if never measured). The command is finite and within
    ``[low, high]``."""
    if mode not in HOLD_MODES:
        raise ValueError(f"hold_mode={mode!r} is not one of {HOLD_MODES}")
    if not (np.isfinite(damping_nms_per_rad) and damping_nms_per_rad >= 0):
        raise ValueError(f"hold damping {damping_nms_per_rad!r} N·m·s/rad must be finite and >= 0")
    zero = np.clip(np.zeros_like(low, dtype=np.float64), low, high)
    if interface == "joint_trajectory" and positions_rad is not None and np.all(np.isfinite(positions_rad)):
        return HoldCommand(positions_rad=np.asarray(positions_rad, dtype=np.float64).copy())
    if interface == "effort_forward" and mode == "damping" and velocities_rad_s is not None:
        velocities = np.asarray(velocities_rad_s, dtype=np.float64)
        if velocities.shape == zero.shape and np.all(np.isfinite(velocities)):
            return HoldCommand(command=np.clip(-damping_nms_per_rad * velocities, low, high) + 0.0)  # no -0.0
    return HoldCommand(command=zero)
