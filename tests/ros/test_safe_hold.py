"""The safe hold of each command interface: finite, within limits, and braking only on fresh data."""

from __future__ import annotations

import numpy as np
import pytest

from metarl_ros.safe_hold import safe_hold

LOW, HIGH = np.array([-87.0, -12.0]), np.array([87.0, 12.0])


def test_damping_brakes_against_the_measured_velocity_within_limits() -> None:
    hold = safe_hold("effort_forward", "damping", 5.0, LOW, HIGH, np.array([1.0, -10.0]), np.zeros(2))
    np.testing.assert_array_equal(hold.command, [-5.0, 12.0])  # -Kd·q̇, the second clamped to its limit


def test_damping_without_fresh_velocities_is_zero() -> None:
    hold = safe_hold("effort_forward", "damping", 5.0, LOW, HIGH, None, np.zeros(2))
    np.testing.assert_array_equal(hold.command, [0.0, 0.0])


def test_zero_mode_and_twist_are_zero() -> None:
    for interface, mode in (("effort_forward", "zero"), ("twist", "damping")):
        hold = safe_hold(interface, mode, 5.0, LOW, HIGH, np.array([1.0, 1.0]), None)
        np.testing.assert_array_equal(hold.command, [0.0, 0.0])


def test_trajectory_hold_is_the_measured_position() -> None:
    hold = safe_hold("joint_trajectory", "damping", 5.0, LOW, HIGH, None, np.array([0.3, -1.2]))
    assert hold.command is None
    np.testing.assert_array_equal(hold.positions_rad, [0.3, -1.2])


def test_unknown_mode_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="hold_mode='brake'"):
        safe_hold("effort_forward", "brake", 5.0, LOW, HIGH, None, None)
