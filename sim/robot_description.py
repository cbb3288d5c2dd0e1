"""What a robot exposes to a controller: its joints, its state vector's meaning and its limits.

The same description goes into a bundle's ``bundle.json``, so the ROS node on the robot can
rebuild the state vector from sensor messages field by field (grammar in
docs/architecture.md) and refuse a bundle made for another robot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CommandInterface = Literal["effort_forward", "joint_trajectory", "twist"]


@dataclass(frozen=True)
class RobotDescription:
    """A robot as a controller sees it; every field round-trips through ``dataclasses.asdict``."""

    name: str
    joint_names: tuple[str, ...]
    """Actuated joints, in action order."""
    state_fields: tuple[str, ...]
    """One sensor field per state-vector entry, e.g. ``joint_states.position:panda_joint1``."""
    reference_fields: tuple[str, ...]
    """One field per reference-vector entry, e.g. ``reference.twist.linear.x``."""
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    control_rate_hz: float
    command_interface: CommandInterface
    wheel_radius_m: float | None = None
    """Differential-drive wheel radius (bases only): converts wheel speeds to a body twist."""
    track_width_m: float | None = None
    """Distance between left and right wheel contact lines (bases only)."""

    @property
    def state_dim(self) -> int:
        return len(self.state_fields)

    @property
    def reference_dim(self) -> int:
        return len(self.reference_fields)

    @property
    def action_dim(self) -> int:
        return len(self.action_low)

    @property
    def control_period_s(self) -> float:
        return 1.0 / self.control_rate_hz
