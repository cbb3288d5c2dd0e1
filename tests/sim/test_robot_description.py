"""The robot descriptions are the contract with bundle.json and the ROS node: pin their shape."""

from __future__ import annotations

import dataclasses
import re

import gymnasium
import pytest

import sim  # noqa: F401
from sim.robot_description import RobotDescription

FIELD_GRAMMAR = re.compile(
    r"joint_states\.(position|velocity):\w+"
    r"|odom\.twist\.(linear\.[xy]|angular\.z)"
    r"|imu\.(roll|pitch|angular_velocity\.[xyz])"
    r"|reference\.(position|velocity):\w+"
    r"|reference\.twist\.(linear\.x|angular\.z)"
)


@pytest.fixture(params=["metarl/PandaPayload-v0", "metarl/HuskyTerrain-v0"], scope="module")
def env(request):
    env = gymnasium.make(request.param)
    yield env
    env.close()


def test_description_round_trips_through_asdict(env) -> None:
    robot = env.unwrapped.robot
    assert RobotDescription(**dataclasses.asdict(robot)) == robot


def test_every_field_follows_the_sensor_grammar(env) -> None:
    robot = env.unwrapped.robot
    for field in robot.state_fields + robot.reference_fields:
        assert FIELD_GRAMMAR.fullmatch(field), field


def test_observation_is_state_then_reference(env) -> None:
    robot = env.unwrapped.robot
    obs, _ = env.reset(seed=0)
    assert obs.shape == (robot.state_dim + robot.reference_dim,)
    assert env.action_space.shape == (robot.action_dim,)
    assert tuple(env.action_space.high.tolist()) == robot.action_high


def test_panda_description_matches_the_contract() -> None:
    env = gymnasium.make("metarl/PandaPayload-v0")
    robot = env.unwrapped.robot
    assert robot.name == "panda"
    assert robot.joint_names == tuple(f"panda_joint{i}" for i in range(1, 8))
    assert robot.action_high == (87.0,) * 4 + (12.0,) * 3
    assert robot.command_interface == "effort_forward"
    assert robot.control_rate_hz == 100.0
    env.close()


def test_husky_description_carries_diff_drive_geometry() -> None:
    env = gymnasium.make("metarl/HuskyTerrain-v0")
    robot = env.unwrapped.robot
    assert robot.name == "husky"
    assert robot.command_interface == "twist"
    assert robot.state_dim == 11 and robot.reference_dim == 2 and robot.action_dim == 2
    assert robot.wheel_radius_m > 0.0 and robot.track_width_m > 0.0
    env.close()
