"""The robot's URDF limits: parsed safely, and a bundle may only narrow them."""

from __future__ import annotations

import numpy as np
import pytest

from metarl_ros.robot_limits import RobotLimitsError, allowed_command_limits, parse_urdf_limits
from metarl_runtime.urdf_document import MAX_URDF_BYTES


def urdf(*joints: tuple[str, str]) -> str:
    body = "".join(
        f'<joint name="{name}" type="revolute"><limit lower="-1" upper="1" {limit}/></joint>' for name, limit in joints
    )
    return f'<?xml version="1.0"?><robot name="r">{body}<joint name="fixed" type="fixed"/></robot>'


TWO = urdf(("j1", 'effort="87" velocity="2.175"'), ("j2", 'effort="12" velocity="2.61"'))


def test_limits_are_read_per_joint() -> None:
    limits = parse_urdf_limits(TWO)
    assert set(limits) == {"j1", "j2"} and limits["j1"].effort == 87.0 and limits["j2"].velocity == 2.61


def test_a_narrower_bundle_passes_and_commands_are_clamped_to_both() -> None:
    low, high = allowed_command_limits(
        parse_urdf_limits(TWO), ["j1", "j2"], "effort_forward", np.array([-50.0, -12.0]), np.array([87.0, 5.0])
    )
    np.testing.assert_array_equal(low, [-50.0, -12.0])
    np.testing.assert_array_equal(high, [87.0, 5.0])


def test_a_wider_bundle_is_refused_naming_the_joint() -> None:
    with pytest.raises(RobotLimitsError, match=r"joint 'j2'.*±12"):
        allowed_command_limits(
            parse_urdf_limits(TWO), ["j1", "j2"], "effort_forward", np.array([-87.0, -1e9]), np.array([87.0, 1e9])
        )


def test_a_bundle_joint_without_a_limit_is_refused() -> None:
    with pytest.raises(RobotLimitsError, match=r"\['j3'\]"):
        allowed_command_limits(parse_urdf_limits(TWO), ["j1", "j3"], "effort_forward", -np.ones(2), np.ones(2))


def test_wheel_speeds_are_bounded_by_the_slowest_wheel() -> None:
    wheels = urdf(("l", 'effort="10" velocity="20"'), ("r", 'effort="10" velocity="15"'))
    with pytest.raises(RobotLimitsError, match="±15"):
        allowed_command_limits(parse_urdf_limits(wheels), ["l", "r"], "twist", -np.full(2, 18.0), np.full(2, 18.0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('<!DOCTYPE r [<!ENTITY a "aaaa">]><robot name="r">&a;</robot>', "DOCTYPE"),
        ("<robot><joint", "not well-formed"),
        ('<sdf name="r"/>', "expected <robot>"),
        (urdf(("j1", 'effort="nan"')), "finite"),
        (urdf(("j1", 'effort="big"')), "not a number"),
        (urdf(("j1", 'effort="1"'), ("j1", 'effort="2"')), "defined twice"),
        ("<robot>" + " " * (MAX_URDF_BYTES + 1) + "</robot>", "bytes"),
    ],
)
def test_hostile_descriptions_get_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(RobotLimitsError, match=message):
        parse_urdf_limits(text)
