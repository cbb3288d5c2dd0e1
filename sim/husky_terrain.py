"""``metarl/HuskyTerrain-v0``: a Clearpath Husky tracking a commanded body twist on unknown
ground: friction, slope, rough terrain, payload on the deck and motor strength.

The action is a (left, right) wheel angular-velocity command executed by torque-limited
motors, which is what a diff-drive base's motor drivers accept; the ``twist`` command interface
maps a body twist to these wheel speeds with the nominal kinematics. A slope is simulated by
tilting gravity (so one flat or heightfield ground serves every incline); the IMU therefore
reports attitude relative to gravity, as a real one does.
"""

from __future__ import annotations

import math

import numpy as np
import pybullet
from gymnasium import spaces

from sim.physics_client import c_output_discarded
from sim.pybullet_task_env import PyBulletTaskEnv
from sim.reward_spec import RewardSpec
from sim.robot_description import RobotDescription
from sim.tasks import HuskyTask

WHEEL_JOINTS = ("front_left_wheel", "front_right_wheel", "rear_left_wheel", "rear_right_wheel")
WHEEL_RADIUS_M = 0.17775
TRACK_WIDTH_M = 0.5708
MAX_WHEEL_SPEED_RAD_S = 8.0
NOMINAL_WHEEL_TORQUE_NM = 25.0
CHASSIS_LINK_INDEX = 0
PAYLOAD_BOX_M = (0.6, 0.4, 0.2)
"""Length, width and height of the deck payload, a uniform box: its inertia adds to the chassis'."""
GRAVITY_M_S2 = 9.81
TERRAIN_CELLS = 128
TERRAIN_CELL_M = 0.25
TERRAIN_MAX_HEIGHT_M = HuskyTask.FIELD_RANGES["terrain_roughness_m"][1]
"""Every terrain's heights lie in ``[0, TERRAIN_MAX_HEIGHT_M]``: the one heightfield shape an
environment owns is built for that range, then its heights are replaced in place."""
REFERENCE_SEGMENT_S = 2.0
SETTLE_STEPS = 20
"""Control periods with zero wheel speed at each reset, for the robot to come to rest on the ground."""

HUSKY = RobotDescription(
    name="husky",
    joint_names=WHEEL_JOINTS,
    state_fields=(
        "odom.twist.linear.x",
        "odom.twist.linear.y",
        "odom.twist.angular.z",
        "imu.roll",
        "imu.pitch",
        "imu.angular_velocity.x",
        "imu.angular_velocity.y",
        *(f"joint_states.velocity:{j}" for j in WHEEL_JOINTS),
    ),
    reference_fields=("reference.twist.linear.x", "reference.twist.angular.z"),
    action_low=(-MAX_WHEEL_SPEED_RAD_S, -MAX_WHEEL_SPEED_RAD_S),
    action_high=(MAX_WHEEL_SPEED_RAD_S, MAX_WHEEL_SPEED_RAD_S),
    control_rate_hz=100.0,
    command_interface="twist",
    wheel_radius_m=WHEEL_RADIUS_M,
    track_width_m=TRACK_WIDTH_M,
)
HUSKY_REWARD = RewardSpec(name="twist_tracking", constants={"track_width_m": TRACK_WIDTH_M})
"""Minus the twist error (m/s): the linear error combined with the angular error at half the
wheel track (``track_width_m``)."""


class TwistReference:
    """Piecewise-constant body twist commands, one every ``REFERENCE_SEGMENT_S`` seconds."""

    def __init__(self, rng: np.random.Generator, duration_s: float) -> None:
        segments = math.ceil(duration_s / REFERENCE_SEGMENT_S) + 1
        self.linear_m_s = rng.uniform(0.1, 0.8, size=segments)
        self.angular_rad_s = rng.uniform(-0.6, 0.6, size=segments)

    def at(self, time_s: float) -> np.ndarray:
        index = min(int(time_s / REFERENCE_SEGMENT_S), len(self.linear_m_s) - 1)
        return np.array([self.linear_m_s[index], self.angular_rad_s[index]])


class ConstantTwistReference:
    """One body twist command for the whole episode: the terrain-change experiment drives
    straight ahead, so the robot meets a patch at a known distance whatever the seed."""

    def __init__(self, linear_m_s: float, angular_rad_s: float) -> None:
        self.twist = np.array([float(linear_m_s), float(angular_rad_s)])

    def at(self, time_s: float) -> np.ndarray:
        return self.twist.copy()


def terrain_heights(task: HuskyTask, rng: np.random.Generator) -> np.ndarray:
    """Heightfield (m, within ``[0, TERRAIN_MAX_HEIGHT_M]``) of ``task``'s terrain: white-noise
    relief for ``rough``, smooth sinusoidal ridges for ``bumps`` (held out of training)."""
    cells = TERRAIN_CELLS
    if task.terrain_type == "rough":
        heights = rng.uniform(0.0, task.terrain_roughness_m, size=(cells, cells))
    elif task.terrain_type == "bumps":
        x = np.arange(cells) * TERRAIN_CELL_M
        phase = rng.uniform(0.0, 2.0 * np.pi, size=2)
        ridges = np.sin(2.0 * np.pi * x / 1.5 + phase[0])[None, :] + np.sin(2.0 * np.pi * x / 2.3 + phase[1])[:, None]
        heights = 0.25 * task.terrain_roughness_m * (ridges + 2.0)
    else:
        heights = np.zeros((cells, cells))
    return np.clip(heights, 0.0, TERRAIN_MAX_HEIGHT_M)


class HuskyTerrainEnv(PyBulletTaskEnv[HuskyTask]):
    """Observation: odometry twist, IMU attitude and rates, wheel speeds, then the twist reference."""

    task_type = HuskyTask
    robot = HUSKY
    reward_spec = HUSKY_REWARD

    def __init__(
        self,
        render_mode: str | None = None,
        episode_duration_s: float = 10.0,
        physics_dt_s: float = 1.0 / 500.0,
        render_size: tuple[int, int] = (320, 240),
    ) -> None:
        super().__init__(physics_dt_s, HUSKY.control_rate_hz, episode_duration_s, render_mode, render_size)
        self.action_space = spaces.Box(
            np.array(HUSKY.action_low, dtype=np.float32), np.array(HUSKY.action_high, dtype=np.float32)
        )
        self.observation_space = spaces.Box(
            -np.inf, np.inf, shape=(HUSKY.state_dim + HUSKY.reference_dim,), dtype=np.float32
        )
        fields = HUSKY.state_fields + HUSKY.reference_fields
        self._tracked = [
            (fields.index(f"odom.twist.{q}"), fields.index(f"reference.twist.{q}")) for q in ("linear.x", "angular.z")
        ]
        self._half_track_m = self.reward_spec.constants["track_width_m"] / 2.0
        with c_output_discarded():  # the URDF's links without inertia: one b3Warning line each
            self.body = self.client.loadURDF("husky/husky.urdf", [0.0, 0.0, 0.3])
        names = [self.client.getJointInfo(self.body, j)[1].decode() for j in range(self.client.getNumJoints(self.body))]
        self.wheel_indices = [names.index(j) for j in WHEEL_JOINTS]
        chassis = self.client.getDynamicsInfo(self.body, CHASSIS_LINK_INDEX)
        self.chassis_mass_kg, self.chassis_inertia_kg_m2 = chassis[0], np.asarray(chassis[2])
        for index in self.wheel_indices:
            self.client.changeDynamics(self.body, index, lateralFriction=1.0)
        # Bullet's implicit friction cone (PyBullet's default) makes a skid-steer base's plant
        # depend on its heading, with a 90° period: the PI on a steady arc over constant ground
        # wandered between 0.01 and 0.08 m/s as it turned; starting yaws 0, π/2 and π gave one
        # trace, π/4 another. The pyramid approximation settles near 0.02 m/s from every yaw, so
        # friction, not the direction the robot faces, is what a task varies.
        self.client.setPhysicsEngineParameter(enableConeFriction=0)
        self.ground: int | None = None
        self._heightfield_shape: int | None = None
        # Bound methods cached once: BulletClient builds a partial on every attribute access.
        self._set_motors = self.client.setJointMotorControlArray
        self._step_simulation = self.client.stepSimulation
        self._get_pose = self.client.getBasePositionAndOrientation
        self._get_velocity = self.client.getBaseVelocity
        self._get_joint_states = self.client.getJointStates
        self._matrix_from_quaternion = self.client.getMatrixFromQuaternion
        self.ground_max_height_m = 0.0
        self.reference = TwistReference(np.random.default_rng(0), episode_duration_s)

    def _build_ground(self, task: HuskyTask, rng: np.random.Generator) -> None:
        """A fresh ground body each episode (so no contact state carries over from the last one),
        over one heightfield shape per environment whose heights are replaced in place.

        PyBullet never frees a heightfield shape (removing its body leaves it behind, about 12 MB
        for 128×128 cells), so creating one per episode grows the process without bound.
        """
        if self.ground is not None:
            self.client.removeBody(self.ground)
        if task.terrain_type == "flat":
            self.ground = self.client.loadURDF("plane.urdf")
            self.ground_max_height_m = 0.0
            return
        heights = terrain_heights(task, rng)
        shape = self._heightfield(heights)
        # PyBullet centres a heightfield vertically on the height range it was built with, which
        # is [0, TERRAIN_MAX_HEIGHT_M]: raising the body by half of it puts height h at z = h.
        self.ground = self.client.createMultiBody(0, shape, basePosition=[0.0, 0.0, TERRAIN_MAX_HEIGHT_M / 2.0])
        self.ground_max_height_m = float(heights.max())

    def _heightfield(self, heights: np.ndarray) -> int:
        """The environment's heightfield shape, holding ``heights`` (m)."""
        arguments = {
            "shapeType": pybullet.GEOM_HEIGHTFIELD,
            "meshScale": [TERRAIN_CELL_M, TERRAIN_CELL_M, 1.0],
            "numHeightfieldRows": TERRAIN_CELLS,
            "numHeightfieldColumns": TERRAIN_CELLS,
        }
        if self._heightfield_shape is None:
            # Built once over the full height range: its bounds (and vertical centring) stay
            # those of the first data, which later replacements must lie within.
            frame = np.zeros((TERRAIN_CELLS, TERRAIN_CELLS))
            frame[0, 0] = TERRAIN_MAX_HEIGHT_M
            self._heightfield_shape = self.client.createCollisionShape(
                heightfieldData=frame.ravel().tolist(), **arguments
            )
        self.client.createCollisionShape(
            heightfieldData=heights.ravel().tolist(), replaceHeightfieldIndex=self._heightfield_shape, **arguments
        )
        return self._heightfield_shape

    def _reset_scene(self, rng: np.random.Generator) -> None:
        self._build_ground(self._task, rng)
        self.reference = TwistReference(rng, self.episode_duration_s)
        self.client.resetBasePositionAndOrientation(self.body, [0.0, 0.0, 0.2 + self.ground_max_height_m], [0, 0, 0, 1])
        self.client.resetBaseVelocity(self.body, [0, 0, 0], [0, 0, 0])
        for index in self.wheel_indices:
            self.client.resetJointState(self.body, index, 0.0, 0.0)
        self._apply_task_live(self._task)
        # Let the robot settle on its wheels (0.2 s) before the episode starts.
        for _ in range(SETTLE_STEPS):
            self._apply_action_and_simulate(np.zeros(2))

    def _apply_task_live(self, task: HuskyTask) -> None:
        """Friction, slope, payload and motors apply at once; terrain shape at the next reset."""
        self.client.changeDynamics(self.ground, -1, lateralFriction=task.ground_friction)
        self.client.setGravity(-GRAVITY_M_S2 * math.sin(task.slope_rad), 0.0, -GRAVITY_M_S2 * math.cos(task.slope_rad))
        # The payload's own inertia adds to the chassis' (mass alone would make a loaded robot
        # turn as readily as an empty one); its centre of mass is taken at the chassis'.
        length, width, height = PAYLOAD_BOX_M
        payload_inertia_kg_m2 = (task.payload_mass_kg / 12.0) * np.array(
            [width**2 + height**2, length**2 + height**2, length**2 + width**2]
        )
        self.client.changeDynamics(
            self.body,
            CHASSIS_LINK_INDEX,
            mass=self.chassis_mass_kg + task.payload_mass_kg,
            localInertiaDiagonal=(self.chassis_inertia_kg_m2 + payload_inertia_kg_m2).tolist(),
        )
        self.max_wheel_torque_nm = NOMINAL_WHEEL_TORQUE_NM * task.motor_strength_scale

    def _apply_action_and_simulate(self, action: np.ndarray) -> None:
        left, right = float(action[0]), float(action[1])
        self._set_motors(
            self.body,
            self.wheel_indices,
            pybullet.VELOCITY_CONTROL,
            targetVelocities=[left, right, left, right],
            forces=[self.max_wheel_torque_nm] * 4,
        )
        for _ in range(self.substeps):
            self._step_simulation()

    def _observation(self) -> np.ndarray:
        _, orientation = self._get_pose(self.body)
        linear, angular = self._get_velocity(self.body)
        rotation = np.asarray(self._matrix_from_quaternion(orientation)).reshape(3, 3)
        linear_body = rotation.T @ np.asarray(linear)
        angular_body = rotation.T @ np.asarray(angular)
        slope = self._task.slope_rad
        tilt = np.array(
            [
                [math.cos(slope), 0.0, math.sin(slope)],
                [0.0, 1.0, 0.0],
                [-math.sin(slope), 0.0, math.cos(slope)],
            ]
        )
        attitude = tilt.T @ rotation  # body orientation in the gravity-aligned frame
        roll = math.atan2(attitude[2, 1], attitude[2, 2])
        pitch = -math.asin(max(-1.0, min(1.0, attitude[2, 0])))
        wheels = [s[1] for s in self._get_joint_states(self.body, self.wheel_indices)]
        reference = self.reference.at(self.elapsed_steps / self.control_rate_hz)
        return np.array(
            [
                linear_body[0],
                linear_body[1],
                angular_body[2],
                roll,
                pitch,
                angular_body[0],
                angular_body[1],
                *wheels,
                *reference,
            ],
            dtype=np.float32,
        )

    def chassis_position_m(self) -> np.ndarray:
        """World position of the chassis (m): where the robot is, for spatial terrain patches."""
        position, _ = self._get_pose(self.body)
        return np.asarray(position)

    def _reward(self, tracking_error: float, action: np.ndarray) -> float:
        return -tracking_error

    def tracking_error(self, obs: np.ndarray) -> float:
        """Twist error (m/s): linear error combined with the angular error at the wheel track."""
        (linear, linear_reference), (angular, angular_reference) = self._tracked
        linear_error = obs[linear] - obs[linear_reference]
        angular_error = (obs[angular] - obs[angular_reference]) * self._half_track_m
        return float(math.hypot(linear_error, angular_error))

    def _camera(self) -> tuple[list[float], float, float, float]:
        position, _ = self.client.getBasePositionAndOrientation(self.body)
        return list(position), 3.0, 30.0, -30.0
