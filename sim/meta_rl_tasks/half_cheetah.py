"""``metarl/HalfCheetahVelocity-v0``: the MAML locomotion task on PyBullet's MJCF half-cheetah.

The task is a signed target forward velocity: its sign is the direction (MAML's
forward/backward task), its magnitude the speed (MAML's goal-velocity task). Reward, as in the
authors' ``half_cheetah_env_rand.py``: ``−|v_x − v_target| − 0.05 · Σ a²`` with ``a`` the action
as a fraction of each joint's torque limit. The target is never in the observation.

The model is ``pybullet_data/mjcf/half_cheetah.xml`` loaded with ``loadMJCF`` into the env's own
``p.DIRECT`` client. PyBullet ignores the MJCF joint springs and dampers, so they are applied here
as torques at every physics sub-step (``τ = τ_cmd − k q − d q̇``, the file's ``stiffness`` and
``damping``); without them the legs fold and no gait is learnable. Control at 20 Hz (MuJoCo
HalfCheetah's 0.05 s step), 10 physics sub-steps of 5 ms, 200-step (10 s) episodes.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pybullet

from sim.meta_rl_tasks.tasks import CheetahVelocityTask
from sim.pybullet_task_env import PyBulletTaskEnv
from sim.robot_description import RobotDescription

CHEETAH_MJCF = "mjcf/half_cheetah.xml"
JOINT_NAMES: tuple[str, ...] = ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")
ROOT_JOINTS = [0, 1, 2]
"""The planar root: slide x, slide z, hinge about y (pitch)."""
LEG_JOINTS = [4, 6, 8, 10, 12, 14]
GEAR_NM = np.array([120.0, 90.0, 60.0, 120.0, 60.0, 30.0])
"""Torque limit of each leg joint (the MJCF motor gears with control range ±1), N·m."""
STIFFNESS_NM_RAD = np.array([240.0, 180.0, 120.0, 180.0, 120.0, 60.0])
DAMPING_NMS_RAD = np.array([6.0, 4.5, 3.0, 4.5, 3.0, 1.5])
CONTROL_COST = 0.05
"""Weight of the squared normalised action in the reward (MAML: 0.5 × 0.1)."""
GROUND_FRICTION = 0.8

HALF_CHEETAH = RobotDescription(
    name="half_cheetah",
    joint_names=JOINT_NAMES,
    state_fields=(
        "odom.pose.position.z",
        "imu.pitch",
        *(f"joint_states.position:{j}" for j in JOINT_NAMES),
        "odom.twist.linear.x",
        "odom.twist.linear.z",
        "imu.angular_velocity.y",
        *(f"joint_states.velocity:{j}" for j in JOINT_NAMES),
    ),
    reference_fields=(),
    action_low=tuple(float(-g) for g in GEAR_NM),
    action_high=tuple(float(g) for g in GEAR_NM),
    control_rate_hz=20.0,
    command_interface="effort_forward",
)
FORWARD_VELOCITY_INDEX = HALF_CHEETAH.state_fields.index("odom.twist.linear.x")


class HalfCheetahVelocityEnv(PyBulletTaskEnv[CheetahVelocityTask]):
    """Torque control of the six leg joints; the task is the forward velocity to hold.

    Observation (17): torso height above its start (m), pitch (rad), 6 joint angles (rad), forward
    and vertical velocity (m/s), pitch rate (rad/s), 6 joint velocities (rad/s); the x position is
    left out, as in gym's HalfCheetah. Action: 6 joint torques (N·m) within the motor gears.
    """

    task_type = CheetahVelocityTask
    robot = HALF_CHEETAH

    def __init__(
        self,
        episode_duration_s: float = 10.0,
        control_rate_hz: float = HALF_CHEETAH.control_rate_hz,
        physics_dt_s: float = 1.0 / 200.0,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (320, 240),
    ) -> None:
        super().__init__(physics_dt_s, control_rate_hz, episode_duration_s, render_mode, render_size)
        self.action_space = gym.spaces.Box(
            np.array(self.robot.action_low, dtype=np.float32),
            np.array(self.robot.action_high, dtype=np.float32),
            dtype=np.float32,
        )
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(17,), dtype=np.float32)
        client = self.client
        client.setGravity(0.0, 0.0, -9.81)
        self.ground = client.loadURDF("plane.urdf")
        (self.cheetah,) = client.loadMJCF(CHEETAH_MJCF)
        client.changeDynamics(self.ground, -1, lateralFriction=GROUND_FRICTION)
        # Free joints: switch off PyBullet's default velocity motors so torques act alone.
        all_joints = list(range(client.getNumJoints(self.cheetah)))
        client.setJointMotorControlArray(
            self.cheetah, all_joints, pybullet.VELOCITY_CONTROL, forces=[0.0] * len(all_joints)
        )
        self._set_motors = client.setJointMotorControlArray
        self._step_simulation = client.stepSimulation
        self._get_joint_states = client.getJointStates

    def _apply_task_live(self, task: CheetahVelocityTask) -> None:
        """The task is the reward's target only: nothing in the physics changes."""

    def _reset_scene(self, rng: np.random.Generator) -> None:
        """Start upright at rest, with gym's small random perturbation of every joint."""
        for joint in ROOT_JOINTS + LEG_JOINTS:
            self.client.resetJointState(
                self.cheetah, joint, float(rng.uniform(-0.1, 0.1)), float(0.1 * rng.standard_normal())
            )

    def _apply_action_and_simulate(self, action: np.ndarray) -> None:
        for _ in range(self.substeps):
            states = self._get_joint_states(self.cheetah, LEG_JOINTS)
            position = np.array([s[0] for s in states])
            velocity = np.array([s[1] for s in states])
            torque = action - STIFFNESS_NM_RAD * position - DAMPING_NMS_RAD * velocity
            self._set_motors(self.cheetah, LEG_JOINTS, pybullet.TORQUE_CONTROL, forces=torque.tolist())
            self._step_simulation()

    def _observation(self) -> np.ndarray:
        root = self._get_joint_states(self.cheetah, ROOT_JOINTS)
        legs = self._get_joint_states(self.cheetah, LEG_JOINTS)
        obs = np.empty(17, dtype=np.float32)
        obs[0:2] = [root[1][0], root[2][0]]
        obs[2:8] = [s[0] for s in legs]
        obs[8:11] = [root[0][1], root[1][1], root[2][1]]
        obs[11:17] = [s[1] for s in legs]
        return obs

    def _reward(self, tracking_error: float, action: np.ndarray) -> float:
        scaled = action / GEAR_NM
        return -tracking_error - CONTROL_COST * float(scaled @ scaled)

    def tracking_error(self, obs: np.ndarray) -> float:
        """Forward-velocity error (m/s) against the task's target."""
        return abs(float(obs[FORWARD_VELOCITY_INDEX]) - self._task.target_velocity_m_s)

    def _camera(self) -> tuple[list[float], float, float, float]:
        x = self.client.getJointState(self.cheetah, ROOT_JOINTS[0])[0]
        return [x, 0.0, 0.4], 3.0, 0.0, -15.0
