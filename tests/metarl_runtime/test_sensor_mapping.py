"""Sensor messages map to the state by joint name, and each kind of bad message is refused with its reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metarl_runtime.sensor_mapping import (
    MAX_UNKNOWN_JOINT_NAMES,
    SensorAssembler,
    SensorRejected,
    roll_pitch_from_quaternion,
    twist_to_wheel_speeds,
    wheel_speeds_to_twist,
)
from sim.husky_terrain import HUSKY
from sim.panda_payload import PANDA

JOINTS = list(PANDA.joint_names)


@pytest.fixture()
def panda() -> SensorAssembler:
    return SensorAssembler(PANDA.state_fields, PANDA.reference_fields, PANDA.joint_names)


def test_joint_states_are_mapped_by_name_not_index(panda: SensorAssembler) -> None:
    names = ["panda_finger_joint1", *reversed(JOINTS)]
    positions = [0.04, *[float(i) for i in reversed(range(7))]]
    velocities = [0.0, *[10.0 + i for i in reversed(range(7))]]
    unknown = panda.update_joint_states(names, positions, velocities, stamp_s=1.0)
    np.testing.assert_array_equal(panda.state.values, [*range(7), *(10.0 + i for i in range(7))])
    assert unknown == ["panda_finger_joint1"]
    assert panda.update_joint_states(names, positions, velocities, stamp_s=2.0) == [], (
        "unknown joints are reported once"
    )


@pytest.mark.parametrize(
    ("names", "positions", "velocities", "reason"),
    [
        (JOINTS, [0.0] * 6, [0.0] * 7, "length_mismatch"),
        (JOINTS, [0.0] * 7, [0.0] * 5, "length_mismatch"),
        (JOINTS, [0.0] * 6 + [math.nan], [0.0] * 7, "non_finite"),
        (JOINTS, [0.0] * 7, [math.inf] + [0.0] * 6, "non_finite"),
        (JOINTS[:6], [0.0] * 6, [0.0] * 6, "missing_joint"),
    ],
)
def test_bad_joint_states_are_refused_with_their_reason(panda, names, positions, velocities, reason) -> None:
    with pytest.raises(SensorRejected) as error:
        panda.update_joint_states(names, positions, velocities, stamp_s=1.0)
    assert error.value.reason == reason
    assert not panda.state.complete(), "a refused message changes nothing"


def test_out_of_order_stamps_are_refused(panda: SensorAssembler) -> None:
    panda.update_joint_states(JOINTS, [0.0] * 7, [0.0] * 7, stamp_s=2.0)
    with pytest.raises(SensorRejected, match="older than the last one") as error:
        panda.update_joint_states(JOINTS, [1.0] * 7, [0.0] * 7, stamp_s=1.5)
    assert error.value.reason == "out_of_order_stamp"
    assert panda.state.values[0] == 0.0


def test_husky_state_from_odom_imu_and_wheels() -> None:
    husky = SensorAssembler(HUSKY.state_fields, HUSKY.reference_fields, HUSKY.joint_names)
    husky.update_odom_twist((0.5, 0.01, 0.0), (0.0, 0.0, 0.2), 1.0)
    roll, pitch = 0.1, -0.2
    quaternion = (
        math.sin(roll / 2) * math.cos(pitch / 2),
        math.cos(roll / 2) * math.sin(pitch / 2),
        -math.sin(roll / 2) * math.sin(pitch / 2),
        math.cos(roll / 2) * math.cos(pitch / 2),
    )
    husky.update_imu(quaternion, (0.3, 0.4, 0.5), 1.0)
    husky.update_joint_states(list(HUSKY.joint_names), [0.0] * 4, [1.0, 2.0, 3.0, 4.0], 1.0)
    husky.update_reference_twist(0.6, -0.1)
    assert husky.state.complete() and husky.reference.complete()
    np.testing.assert_allclose(husky.state.values, [0.5, 0.01, 0.2, roll, pitch, 0.3, 0.4, 1, 2, 3, 4], atol=1e-9)


def test_roll_pitch_of_identity_is_zero() -> None:
    assert roll_pitch_from_quaternion(0.0, 0.0, 0.0, 1.0) == (0.0, 0.0)


def test_diff_drive_kinematics_round_trip() -> None:
    wheels = twist_to_wheel_speeds(0.7, -0.3, HUSKY.wheel_radius_m, HUSKY.track_width_m)
    np.testing.assert_allclose(wheel_speeds_to_twist(*wheels, HUSKY.wheel_radius_m, HUSKY.track_width_m), (0.7, -0.3))


@pytest.mark.parametrize(
    ("positions", "velocities"),
    [([1e300] + [0.0] * 6, [0.0] * 7), ([0.0] * 7, [1e39] + [0.0] * 6)],
)
def test_finite_but_huge_values_are_refused_before_any_float32_cast(panda, positions, velocities) -> None:
    with pytest.raises(SensorRejected) as error:
        panda.update_joint_states(JOINTS, positions, velocities, stamp_s=1.0)
    assert error.value.reason == "out_of_range"


def test_duplicated_joint_names_are_refused(panda: SensorAssembler) -> None:
    with pytest.raises(SensorRejected) as error:
        panda.update_joint_states([*JOINTS, JOINTS[0]], [0.0] * 8, [0.0] * 8, stamp_s=1.0)
    assert error.value.reason == "duplicate_joint"


def test_a_malformed_effort_array_is_counted_and_the_message_kept(panda: SensorAssembler) -> None:
    panda.update_joint_states(JOINTS, [0.0] * 7, [0.0] * 7, stamp_s=1.0, efforts=[1.0, 2.0])
    assert panda.noted["malformed_effort"] == 1 and panda.state.complete()


def test_unknown_joint_names_are_remembered_up_to_a_cap(panda: SensorAssembler) -> None:
    for batch in range(3):
        names = [*JOINTS, *(f"extra_{batch}_{i}" for i in range(5000))]
        panda.update_joint_states(names, [0.0] * len(names), [0.0] * len(names), stamp_s=1.0 + batch)
    assert len(panda.unknown_joints_seen) == MAX_UNKNOWN_JOINT_NAMES
    assert panda.noted["unknown_joint_overflow"] == 3


def test_a_future_stamp_is_refused_without_moving_the_last_stamp(panda: SensorAssembler) -> None:
    with pytest.raises(SensorRejected) as error:
        panda.update_joint_states(JOINTS, [0.0] * 7, [0.0] * 7, stamp_s=1e9, received_s=100.0)
    assert error.value.reason == "future_stamp"
    panda.update_joint_states(JOINTS, [0.0] * 7, [0.0] * 7, stamp_s=99.9, received_s=100.0)
    assert panda.state.complete()


def test_an_imu_orientation_that_is_not_a_unit_quaternion_is_refused() -> None:
    husky = SensorAssembler(HUSKY.state_fields, HUSKY.reference_fields, HUSKY.joint_names)
    with pytest.raises(SensorRejected) as error:
        husky.update_imu((1e300, 0.0, 0.0, 1.0), (0.0, 0.0, 0.0), 1.0)
    assert error.value.reason == "out_of_range"
