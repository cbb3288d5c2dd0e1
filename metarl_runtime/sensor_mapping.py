"""Sensor messages -> the bundle's state and reference vectors, by field name (no ROS here).

Shared by the ROS node and the offline log scorer
(``metarl_core.log_replay``), so a recorded log is mapped exactly as the robot maps it live.

The bundle's ``state_fields`` say which sensor value goes where (grammar in
docs/architecture.md). Joints are always looked up by name: drivers publish joints in any
order, and often more joints than the controller commands (grippers, wheels). Every rejected
message raises :class:`SensorRejected` with a short ``reason`` key, which the node counts in
diagnostics, and a message saying what was wrong.

Every value is range-checked in float64, before anything casts it to float32: a finite but
absurd value (a position of 1e300, a velocity of 1e39) would overflow to inf there, so it is
refused here as ``out_of_range``. Stamps go through :class:`~metarl_runtime.stream_watchdog.StampPolicy`
after the content is validated, so a refused message never moves a stream's last stamp. Joint
names that the bundle does not use are remembered (to report each once) only up to
``MAX_UNKNOWN_JOINT_NAMES``; beyond that they are counted, not stored.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from metarl_runtime.stream_watchdog import StampPolicy, StampRejected

MAX_ABS_POSITION = 1e9
"""rad or m; a wheel would need 1e9 rad (about 1.6e8 km for a Husky) to reach it."""
MAX_ABS_RATE = 1e6
"""rad/s or m/s, for joint velocities, IMU rates, odometry and reference twists."""
MAX_UNKNOWN_JOINT_NAMES = 64
"""Unknown joint names remembered (reported once each); more are counted as ``unknown_joint_overflow``."""
UNIT_QUATERNION_TOLERANCE = 0.1


class SensorRejected(ValueError):
    """A sensor message that cannot be used; ``reason`` is the diagnostics counter key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def roll_pitch_from_quaternion(x: float, y: float, z: float, w: float) -> tuple[float, float]:
    """Roll and pitch (rad, REP 103) of an orientation quaternion."""
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))
    return roll, pitch


class FieldVector:
    """A vector assembled from named fields; each field keeps its latest finite value."""

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = tuple(fields)
        self.index = {name: i for i, name in enumerate(self.fields)}
        self.values = np.full(len(self.fields), np.nan)

    def set(self, name: str, value: float) -> None:
        if name in self.index:
            self.values[self.index[name]] = value

    def complete(self) -> bool:
        return bool(np.all(np.isfinite(self.values)))

    def missing(self) -> list[str]:
        return [f for f, v in zip(self.fields, self.values, strict=True) if not np.isfinite(v)]


class SensorAssembler:
    """Keeps the latest state and reference, validating each message before it is used."""

    def __init__(
        self,
        state_fields: Sequence[str],
        reference_fields: Sequence[str],
        joint_names: Sequence[str],
        stamps: StampPolicy | None = None,
    ) -> None:
        self.state = FieldVector(state_fields)
        self.reference = FieldVector(reference_fields)
        self.joint_names = tuple(joint_names)
        self.state_joints = {f.split(":", 1)[1] for f in state_fields if f.startswith("joint_states.")}
        self.reference_joints = {f.split(":", 1)[1] for f in reference_fields if f.startswith("reference.position:")}
        self.stamps = stamps if stamps is not None else StampPolicy()
        self.unknown_joints_seen: set[str] = set()
        self.noted: Counter[str] = Counter()
        """Accepted oddities, by diagnostics key: ``zero_stamp``, ``clock_restart``,
        ``malformed_effort``, ``unknown_joint_overflow``."""

    @property
    def last_stamp_s(self) -> dict[str, float]:
        """Each stream's last accepted stamp (s)."""
        return self.stamps.last_stamp_s

    def _check_stamp(self, stream: str, stamp_s: float, received_s: float | None) -> float:
        """The stamp to use; ``received_s`` is the node's clock at receipt (``None``: the stamp
        itself, so no stamp is in the future)."""
        try:
            verdict = self.stamps.admit(stream, stamp_s, stamp_s if received_s is None else received_s)
        except StampRejected as error:
            raise SensorRejected(error.reason, str(error)) from None
        if verdict.note:
            self.noted[f"{verdict.note}.{stream}"] += 1
        return verdict.stamp_s

    def forget_stamps(self) -> None:
        """Start every stream's stamp history again (``~/reset_adaptation``, re-activation)."""
        self.stamps.forget()

    def _joint_arrays(
        self,
        stream: str,
        names: Sequence[str],
        positions: Sequence[float],
        velocities: Sequence[float],
        needed: set[str],
    ) -> dict[str, tuple[float, float]]:
        if len(positions) != len(names) or (len(velocities) not in (0, len(names))):
            raise SensorRejected(
                "length_mismatch",
                f"{stream}: {len(names)} names but {len(positions)} positions and {len(velocities)} velocities",
            )
        if len(velocities) == 0 and needed:
            raise SensorRejected("length_mismatch", f"{stream}: no velocities, but the bundle needs them")
        values = {n: (float(p), float(v)) for n, p, v in zip(names, positions, velocities, strict=True)}
        if len(values) != len(names):
            duplicated = sorted(n for n, count in Counter(names).items() if count > 1)[:8]
            raise SensorRejected("duplicate_joint", f"{stream}: joints named more than once: {duplicated}")
        missing = sorted(needed - set(values))
        if missing:
            shown = list(names)[:16]
            raise SensorRejected("missing_joint", f"{stream}: joints {missing} are missing (got {shown})")
        bad = [n for n in needed if not (math.isfinite(values[n][0]) and math.isfinite(values[n][1]))]
        if bad:
            raise SensorRejected("non_finite", f"{stream}: NaN or inf for joints {sorted(bad)}")
        huge = [n for n in needed if abs(values[n][0]) > MAX_ABS_POSITION or abs(values[n][1]) > MAX_ABS_RATE]
        if huge:
            raise SensorRejected(
                "out_of_range",
                f"{stream}: joints {sorted(huge)} beyond |position| <= {MAX_ABS_POSITION:g} or "
                f"|velocity| <= {MAX_ABS_RATE:g}",
            )
        return values

    def update_joint_states(
        self,
        names: Sequence[str],
        positions: Sequence[float],
        velocities: Sequence[float],
        stamp_s: float,
        received_s: float | None = None,
        efforts: Sequence[float] = (),
    ) -> list[str]:
        """Apply a JointState; returns joints it carries that the bundle does not use, each
        reported once (a bounded set); the stamp used is then ``last_stamp_s["joint_states"]``."""
        values = self._joint_arrays("joint_states", names, positions, velocities, self.state_joints)
        self._check_stamp("joint_states", stamp_s, received_s)
        if len(efforts) not in (0, len(names)):
            self.noted["malformed_effort"] += 1  # efforts are not used: counted, the message kept
        for joint in self.state_joints:
            self.state.set(f"joint_states.position:{joint}", values[joint][0])
            self.state.set(f"joint_states.velocity:{joint}", values[joint][1])
        if len(values) == len(self.state_joints):
            return []
        unknown = [n for n in values if n not in self.state_joints and n not in self.unknown_joints_seen]
        room = MAX_UNKNOWN_JOINT_NAMES - len(self.unknown_joints_seen)
        if len(unknown) > room:
            self.noted["unknown_joint_overflow"] += 1
            unknown = unknown[: max(room, 0)]
        self.unknown_joints_seen.update(unknown)
        return unknown

    def update_reference_joints(
        self,
        names: Sequence[str],
        positions: Sequence[float],
        velocities: Sequence[float],
        stamp_s: float,
        received_s: float | None = None,
    ) -> None:
        """Apply a reference JointState (positions and velocities of the bundle's joints)."""
        values = self._joint_arrays("reference", names, positions, velocities, self.reference_joints)
        self._check_stamp("reference", stamp_s, received_s)
        for joint in self.reference_joints:
            self.reference.set(f"reference.position:{joint}", values[joint][0])
            self.reference.set(f"reference.velocity:{joint}", values[joint][1])

    def update_reference_twist(self, linear_x: float, angular_z: float) -> None:
        """Apply a reference Twist (an unstamped message: the watchdog times it by receipt)."""
        if not (math.isfinite(linear_x) and math.isfinite(angular_z)):
            raise SensorRejected("non_finite", "reference twist: NaN or inf")
        _check_rates("reference twist", (linear_x, angular_z))
        self.reference.set("reference.twist.linear.x", linear_x)
        self.reference.set("reference.twist.angular.z", angular_z)

    def update_imu(
        self,
        quaternion: Sequence[float],
        angular_velocity: Sequence[float],
        stamp_s: float,
        received_s: float | None = None,
    ) -> None:
        """Apply an Imu message: roll and pitch of a unit orientation quaternion, and its rates."""
        if not all(math.isfinite(v) for v in (*quaternion, *angular_velocity)):
            raise SensorRejected("non_finite", "imu: NaN or inf in orientation or angular velocity")
        norm = math.sqrt(sum(v * v for v in quaternion))
        if abs(norm - 1.0) > UNIT_QUATERNION_TOLERANCE:
            raise SensorRejected("out_of_range", f"imu: orientation quaternion has norm {norm:.6g}, expected 1")
        _check_rates("imu angular velocity", angular_velocity)
        self._check_stamp("imu", stamp_s, received_s)
        roll, pitch = roll_pitch_from_quaternion(*quaternion)
        self.state.set("imu.roll", roll)
        self.state.set("imu.pitch", pitch)
        for axis, value in zip("xyz", angular_velocity, strict=True):
            self.state.set(f"imu.angular_velocity.{axis}", value)

    def update_odom_twist(
        self, linear: Sequence[float], angular: Sequence[float], stamp_s: float, received_s: float | None = None
    ) -> None:
        """Apply an Odometry message's body twist."""
        if not all(math.isfinite(v) for v in (*linear, *angular)):
            raise SensorRejected("non_finite", "odom: NaN or inf in twist")
        _check_rates("odom twist", (*linear, *angular))
        self._check_stamp("odom", stamp_s, received_s)
        for axis, value in zip("xyz", linear, strict=True):
            self.state.set(f"odom.twist.linear.{axis}", value)
        for axis, value in zip("xyz", angular, strict=True):
            self.state.set(f"odom.twist.angular.{axis}", value)


def _check_rates(what: str, values: Sequence[float]) -> None:
    if any(abs(v) > MAX_ABS_RATE for v in values):
        raise SensorRejected("out_of_range", f"{what}: a value beyond ±{MAX_ABS_RATE:g} (rad/s or m/s)")


def twist_to_wheel_speeds(linear_x: float, angular_z: float, wheel_radius_m: float, track_width_m: float) -> np.ndarray:
    """Diff-drive inverse kinematics: body twist -> (left, right) wheel speeds (rad/s)."""
    return np.array(
        [
            (linear_x - angular_z * track_width_m / 2.0) / wheel_radius_m,
            (linear_x + angular_z * track_width_m / 2.0) / wheel_radius_m,
        ]
    )


def wheel_speeds_to_twist(
    left: float, right: float, wheel_radius_m: float, track_width_m: float
) -> tuple[float, float]:
    """Diff-drive forward kinematics: (left, right) wheel speeds -> (v, ω)."""
    return wheel_radius_m * (left + right) / 2.0, wheel_radius_m * (right - left) / track_width_m
