"""What a robot exposes to a controller: its joints, its state vector's meaning and its limits.

The same description goes into a bundle's ``bundle.json``, so the ROS node on the robot can
rebuild the state vector from sensor messages field by field (grammar in
docs/architecture.md) and refuse a bundle made for another robot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

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

    def __post_init__(self) -> None:
        """Normalise sequences to tuples (so one read back from ``bundle.json`` lists compares
        equal) and refuse an inconsistent description, naming the field."""
        for name in ("joint_names", "state_fields", "reference_fields", "action_low", "action_high"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise ValueError(f"RobotDescription.{name}={value!r} must be a sequence")
            object.__setattr__(self, name, tuple(value))
        if len(self.action_low) != len(self.action_high):
            raise ValueError(
                f"RobotDescription: action_low has {len(self.action_low)} entries, action_high {len(self.action_high)}"
            )
        for index, (low, high) in enumerate(zip(self.action_low, self.action_high, strict=True)):
            if not low < high:
                raise ValueError(f"RobotDescription.action_low[{index}]={low} must be < action_high={high}")
        if not self.control_rate_hz > 0.0:
            raise ValueError(f"RobotDescription.control_rate_hz={self.control_rate_hz} must be > 0")
        if self.command_interface not in get_args(CommandInterface):
            raise ValueError(
                f"RobotDescription.command_interface={self.command_interface!r} is not one of "
                f"{get_args(CommandInterface)}"
            )

    @property
    def joint_count(self) -> int:
        return len(self.joint_names)

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

    def state_slice(self, kind: str) -> slice:
        """Where the state vector holds the fields of ``kind`` (``joint_states.velocity``,
        ``odom.twist``): code that unpacks a state reads its layout here instead of hard-coding it."""
        return _field_slice(self.state_fields, kind, f"{self.name} state")

    def reference_slice(self, kind: str) -> slice:
        """Where the reference vector holds the fields of ``kind`` (``reference.position``)."""
        return _field_slice(self.reference_fields, kind, f"{self.name} reference")

    def observation_slice(self, kind: str) -> slice:
        """Where a suite observation, the state followed by the reference, holds the fields of
        ``kind``: state kinds as in ``state_slice``, reference kinds shifted by ``state_dim``."""
        if kind.startswith("reference."):
            inside = self.reference_slice(kind)
            return slice(self.state_dim + inside.start, self.state_dim + inside.stop)
        return self.state_slice(kind)


def _field_slice(fields: tuple[str, ...], kind: str, where: str) -> slice:
    """The one contiguous run of ``fields`` of ``kind``: a field is of a kind when it is the kind
    itself or continues it with ``:`` (a joint name) or ``.`` (a component)."""
    indices = [i for i, f in enumerate(fields) if f == kind or f.startswith((kind + ":", kind + "."))]
    if not indices:
        raise ValueError(f"the {where} has no '{kind}' field (fields: {list(fields)})")
    if indices != list(range(indices[0], indices[-1] + 1)):
        raise ValueError(f"the {where}'s '{kind}' fields are not contiguous (at {indices})")
    return slice(indices[0], indices[-1] + 1)
