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


def test_description_read_back_from_json_lists_compares_equal(env) -> None:
    robot = env.unwrapped.robot
    as_json_would = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(robot).items()}
    assert RobotDescription(**as_json_would) == robot


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"action_high": (1.0,)}, "action_low has 2 entries"),
        ({"action_low": (0.0, 5.0)}, r"action_low\[1\]=5.0 must be < action_high"),
        ({"control_rate_hz": 0.0}, "control_rate_hz=0.0"),
        ({"command_interface": "torque"}, "command_interface='torque'"),
        ({"joint_names": "wheel"}, "joint_names='wheel' must be a sequence"),
    ],
)
def test_inconsistent_description_is_refused_naming_the_field(change, message) -> None:
    fields = {
        "name": "husky",
        "joint_names": ("left", "right"),
        "state_fields": ("odom.twist.linear.x",),
        "reference_fields": ("reference.twist.linear.x",),
        "action_low": (-1.0, -1.0),
        "action_high": (1.0, 1.0),
        "control_rate_hz": 100.0,
        "command_interface": "twist",
    }
    with pytest.raises(ValueError, match=message):
        RobotDescription(**{**fields, **change})


def test_field_slices_say_where_each_kind_of_field_is() -> None:
    """Code that unpacks a state or an observation reads the layout from the description."""
    from sim.husky_terrain import HUSKY
    from sim.panda_payload import PANDA

    assert PANDA.joint_count == 7 and HUSKY.joint_count == 4
    assert PANDA.state_slice("joint_states.velocity") == slice(7, 14)
    assert PANDA.reference_slice("reference.position") == slice(0, 7)
    assert PANDA.observation_slice("reference.velocity") == slice(21, 28)
    assert HUSKY.state_slice("odom.twist") == slice(0, 3)
    assert HUSKY.state_slice("joint_states.velocity") == slice(7, 11)
    assert HUSKY.observation_slice("reference.twist") == slice(11, 13)
    with pytest.raises(ValueError, match=r"the husky state has no 'joint_states\.position' field"):
        HUSKY.state_slice("joint_states.position")


def test_a_field_kind_split_in_two_runs_is_refused() -> None:
    robot = RobotDescription(
        name="split",
        joint_names=("a",),
        state_fields=("joint_states.position:a", "imu.roll", "joint_states.position:b"),
        reference_fields=(),
        action_low=(-1.0,),
        action_high=(1.0,),
        control_rate_hz=100.0,
        command_interface="effort_forward",
    )
    with pytest.raises(ValueError, match=r"'joint_states\.position' fields are not contiguous \(at \[0, 2\]\)"):
        robot.state_slice("joint_states.position")
