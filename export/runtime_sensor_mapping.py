"""Sensor messages -> the bundle's state and reference vectors, by field name (no ROS here).

Shared by the ROS node (through ``metarl_ros.sensor_mapping``) and the offline log scorer
(``metarl_core.log_replay``), so a recorded log is mapped exactly as the robot maps it live.

The bundle's ``state_fields`` say which sensor value goes where (grammar in
docs/architecture.md). Joints are always looked up by name: drivers publish joints in any
order, and often more joints than the controller commands (grippers, wheels). Every rejected
message raises :class:`SensorRejected` with a short ``reason`` key, which the node counts in
diagnostics, and a message saying what was wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


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
        self, state_fields: Sequence[str], reference_fields: Sequence[str], joint_names: Sequence[str]
    ) -> None:
        self.state = FieldVector(state_fields)
        self.reference = FieldVector(reference_fields)
        self.joint_names = tuple(joint_names)
        self.state_joints = {f.split(":", 1)[1] for f in state_fields if f.startswith("joint_states.")}
        self.reference_joints = {f.split(":", 1)[1] for f in reference_fields if f.startswith("reference.position:")}
        self.last_stamp_s: dict[str, float] = {}
        self.unknown_joints_seen: set[str] = set()

    def _check_stamp(self, stream: str, stamp_s: float) -> None:
        previous = self.last_stamp_s.get(stream)
        if previous is not None and stamp_s < previous:
            raise SensorRejected(
                "out_of_order_stamp", f"{stream}: stamp {stamp_s:.6f} s is older than the last one ({previous:.6f} s)"
            )
        self.last_stamp_s[stream] = stamp_s

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
        missing = sorted(needed - set(values))
        if missing:
            raise SensorRejected("missing_joint", f"{stream}: joints {missing} are missing (got {list(names)})")
        bad = [n for n in needed if not (math.isfinite(values[n][0]) and math.isfinite(values[n][1]))]
        if bad:
            raise SensorRejected("non_finite", f"{stream}: NaN or inf for joints {sorted(bad)}")
        return values

    def update_joint_states(
        self, names: Sequence[str], positions: Sequence[float], velocities: Sequence[float], stamp_s: float
    ) -> list[str]:
        """Apply a JointState; returns joints it carries that the bundle does not use (logged once)."""
        values = self._joint_arrays("joint_states", names, positions, velocities, self.state_joints)
        self._check_stamp("joint_states", stamp_s)
        for joint in self.state_joints:
            self.state.set(f"joint_states.position:{joint}", values[joint][0])
            self.state.set(f"joint_states.velocity:{joint}", values[joint][1])
        unknown = [n for n in names if n not in self.state_joints and n not in self.unknown_joints_seen]
        self.unknown_joints_seen.update(unknown)
        return unknown

    def update_reference_joints(
        self, names: Sequence[str], positions: Sequence[float], velocities: Sequence[float], stamp_s: float
    ) -> None:
        values = self._joint_arrays("reference", names, positions, velocities, self.reference_joints)
        self._check_stamp("reference", stamp_s)
        for joint in self.reference_joints:
            self.reference.set(f"reference.position:{joint}", values[joint][0])
            self.reference.set(f"reference.velocity:{joint}", values[joint][1])

    def update_reference_twist(self, linear_x: float, angular_z: float) -> None:
        if not (math.isfinite(linear_x) and math.isfinite(angular_z)):
            raise SensorRejected("non_finite", "reference twist: NaN or inf")
        self.reference.set("reference.twist.linear.x", linear_x)
        self.reference.set("reference.twist.angular.z", angular_z)

    def update_imu(self, quaternion: Sequence[float], angular_velocity: Sequence[float], stamp_s: float) -> None:
        if not all(math.isfinite(v) for v in (*quaternion, *angular_velocity)):
            raise SensorRejected("non_finite", "imu: NaN or inf in orientation or angular velocity")
        self._check_stamp("imu", stamp_s)
        roll, pitch = roll_pitch_from_quaternion(*quaternion)
        self.state.set("imu.roll", roll)
        self.state.set("imu.pitch", pitch)
        for axis, value in zip("xyz", angular_velocity, strict=True):
            self.state.set(f"imu.angular_velocity.{axis}", value)

    def update_odom_twist(self, linear: Sequence[float], angular: Sequence[float], stamp_s: float) -> None:
        if not all(math.isfinite(v) for v in (*linear, *angular)):
            raise SensorRejected("non_finite", "odom: NaN or inf in twist")
        self._check_stamp("odom", stamp_s)
        for axis, value in zip("xyz", linear, strict=True):
            self.state.set(f"odom.twist.linear.{axis}", value)
        for axis, value in zip("xyz", angular, strict=True):
            self.state.set(f"odom.twist.angular.{axis}", value)


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
