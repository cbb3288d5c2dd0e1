"""The numpy rigid-body model against PyBullet's own inverse dynamics, and its refusals of bad URDFs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pybullet
import pybullet_data
import pytest

from metarl_runtime.rigid_body import RigidBodyModel, RigidBodyModelError, cross
from sim.panda_payload import ARM_JOINT_NAMES, FINGER_OPENING_M, PANDA_URDF
from sim.physics_client import direct_client

FINGERS = ("panda_finger_joint1", "panda_finger_joint2")
PANDA_TEXT = (Path(pybullet_data.getDataPath()) / PANDA_URDF).read_text(encoding="utf-8")

SLIDER_URDF = """<robot name="slider">
  <link name="base"/>
  <link name="carriage"><inertial><origin xyz="0.1 0 0.02" rpy="0 0.3 0"/><mass value="1.5"/>
    <inertia ixx="0.02" ixy="0.001" ixz="0" iyy="0.03" iyz="0.002" izz="0.04"/></inertial></link>
  <link name="arm"><inertial><origin xyz="0 0.2 0.05"/><mass value="0.7"/>
    <inertia ixx="0.01" ixy="0" ixz="0" iyy="0.005" iyz="0" izz="0.01"/></inertial></link>
  <joint name="slide" type="prismatic"><parent link="base"/><child link="carriage"/>
    <origin xyz="0 0 0.5" rpy="0.4 0 0"/><axis xyz="1 0 0.5"/>
    <limit effort="100" lower="-1" upper="1" velocity="1"/></joint>
  <joint name="swing" type="revolute"><parent link="carriage"/><child link="arm"/>
    <origin xyz="0.3 0 0" rpy="0 0 0.2"/><axis xyz="0 1 1"/>
    <limit effort="100" lower="-3" upper="3" velocity="1"/></joint>
</robot>"""


def panda_model(finger_opening_m: float = FINGER_OPENING_M) -> RigidBodyModel:
    return RigidBodyModel.from_urdf(PANDA_TEXT, ARM_JOINT_NAMES, dict.fromkeys(FINGERS, finger_opening_m))


def random_motion(rng: np.random.Generator, batch: int, dof: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        rng.uniform(-2.0, 2.0, (batch, dof)),
        rng.uniform(-2.0, 2.0, (batch, dof)),
        rng.uniform(-6.0, 6.0, (batch, dof)),
    )


def pybullet_torques(urdf_path: str, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray, extra: list[float]) -> np.ndarray:
    """PyBullet's inverse dynamics of a fixed-base URDF; ``extra`` positions for its other movable joints."""
    client = direct_client()
    try:
        client.setAdditionalSearchPath(pybullet_data.getDataPath())
        client.setGravity(0.0, 0.0, -9.81)
        body = client.loadURDF(urdf_path, useFixedBase=True, flags=pybullet.URDF_USE_INERTIA_FROM_FILE)
        zeros = [0.0] * len(extra)
        rows = [
            client.calculateInverseDynamics(body, [*a, *extra], [*b, *zeros], [*c, *zeros])[: q.shape[1]]
            for a, b, c in zip(q.tolist(), qd.tolist(), qdd.tolist(), strict=True)
        ]
    finally:
        client.disconnect()
    return np.asarray(rows)


@pytest.mark.parametrize("finger_opening_m", [FINGER_OPENING_M, 0.04])
def test_panda_inverse_dynamics_matches_pybullet(finger_opening_m: float) -> None:
    q, qd, qdd = random_motion(np.random.default_rng(3), 32, 7)
    expected = pybullet_torques(PANDA_URDF, q, qd, qdd, [finger_opening_m] * 2)
    torques = panda_model(finger_opening_m).inverse_dynamics(q, qd, qdd)
    np.testing.assert_allclose(torques, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_single_state_gives_a_vector_like_the_batch_row() -> None:
    model = panda_model()
    q, qd, qdd = random_motion(np.random.default_rng(4), 2, 7)
    np.testing.assert_array_equal(model.inverse_dynamics(q[1], qd[1], qdd[1]), model.inverse_dynamics(q, qd, qdd)[1])


def test_prismatic_and_tilted_joints_match_pybullet(tmp_path: Path) -> None:
    path = tmp_path / "slider.urdf"
    path.write_text(SLIDER_URDF, encoding="utf-8")
    q, qd, qdd = random_motion(np.random.default_rng(5), 16, 2)
    expected = pybullet_torques(str(path), q, qd, qdd, [])
    torques = RigidBodyModel.from_urdf(SLIDER_URDF, ("slide", "swing")).inverse_dynamics(q, qd, qdd)
    np.testing.assert_allclose(torques, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


@pytest.mark.parametrize("shapes", [((8, 3), (8, 3)), ((8, 3), (3,)), ((3,), (8, 3)), ((3,), (3,))])
def test_cross_is_numpys_bit_for_bit(shapes: tuple) -> None:
    # Inverse dynamics runs on it every tick on the robot: the commands must stay those of np.cross.
    rng = np.random.default_rng(3)
    a, b = (rng.normal(size=shape) * 10.0 for shape in shapes)
    result = cross(a, b)
    assert result.shape == np.cross(a, b).shape
    assert np.array_equal(result, np.cross(a, b))


def test_a_rows_torques_do_not_depend_on_its_batch() -> None:
    # The residual controller batches a window's pair with its command: each row's torques must be
    # those it gets alone (a matmul's are not, for some shapes), or the commands would change.
    model = panda_model()
    rng = np.random.default_rng(4)
    for _ in range(50):
        q, qd, qdd = random_motion(rng, 8, model.dof)
        batch = model.inverse_dynamics(q, qd, qdd)
        assert np.array_equal(batch[:2], model.inverse_dynamics(q[:2], qd[:2], qdd[:2]))
        assert np.array_equal(batch[5], model.inverse_dynamics(q[5], qd[5], qdd[5]))


def test_joint_order_is_the_callers() -> None:
    model = RigidBodyModel.from_urdf(SLIDER_URDF, ("slide", "swing"))
    swapped = RigidBodyModel.from_urdf(SLIDER_URDF, ("swing", "slide"))
    q, qd, qdd = random_motion(np.random.default_rng(6), 4, 2)
    flip = [1, 0]
    np.testing.assert_allclose(
        swapped.inverse_dynamics(q[:, flip], qd[:, flip], qdd[:, flip]), model.inverse_dynamics(q, qd, qdd)[:, flip]
    )


@pytest.mark.parametrize(
    ("urdf", "held", "message"),
    [
        ('<!DOCTYPE r [<!ENTITY a "b">]><robot/>', {}, "DOCTYPE"),
        ("<robot><link", {}, "not well-formed"),
        ("<model/>", {}, "expected <robot>"),
        (PANDA_TEXT, {}, "'panda_finger_joint1' (prismatic) is neither actuated nor held"),
        (
            PANDA_TEXT.replace('<mass value="2.7"/>', '<mass value="heavy"/>'),
            None,
            "link 'panda_link1' <inertial> <mass value>",
        ),
        (PANDA_TEXT.replace('<mass value="2.7"/>', '<mass value="-2.7"/>'), None, "must be >= 0"),
        (PANDA_TEXT.replace('xyz="0 0 0.333"', 'xyz="0 0 nan"'), None, "joint 'panda_joint1' <origin xyz>"),
        (PANDA_TEXT.replace('xyz="0 0 0.333"', 'xyz="0 0"'), None, "expected 3 numbers, got 2"),
        (
            PANDA_TEXT.replace(
                '<joint name="panda_joint1" type="revolute">', '<joint name="panda_joint1" type="floating">'
            ),
            None,
            "type='floating'",
        ),
        (PANDA_TEXT.replace('<parent link="panda_link0"/>', '<parent link="nowhere"/>'), None, "no such link"),
    ],
)
def test_hostile_urdf_is_refused_naming_what_is_wrong(urdf: str, held: dict | None, message: str) -> None:
    with pytest.raises(RigidBodyModelError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        RigidBodyModel.from_urdf(
            urdf, ARM_JOINT_NAMES, dict.fromkeys(FINGERS, FINGER_OPENING_M) if held is None else held
        )


def test_actuated_joint_must_be_movable() -> None:
    with pytest.raises(RigidBodyModelError, match="'panda_joint8' is not a movable joint"):
        RigidBodyModel.from_urdf(PANDA_TEXT, ("panda_joint8",), dict.fromkeys(FINGERS, FINGER_OPENING_M))
