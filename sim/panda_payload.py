"""``metarl/PandaPayload-v0``: a torque-controlled Franka Panda tracking a joint-space reference
while holding an unknown payload, with unknown joint damping and friction.

The payload is a separate rigid body held in the hand by a fixed constraint: unlike
``changeDynamics`` on the hand link (which cannot move a link's centre of mass), a constraint
lets both the mass and the centre-of-mass offset change on a live episode.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pybullet

from sim.pybullet_task_env import PyBulletTaskEnv
from sim.reward_spec import RewardSpec
from sim.robot_description import RobotDescription
from sim.tasks import PandaTask

PANDA_URDF = "franka_panda/panda.urdf"
ARM_JOINT_NAMES: tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))
ARM_JOINTS: list[int] = list(range(7))
FINGER_JOINTS: list[int] = [9, 10]
FINGER_JOINT_NAMES: tuple[str, ...] = ("panda_finger_joint1", "panda_finger_joint2")
HAND_LINK = 8
HAND_LINK_NAME = "panda_hand"
"""The URDF link of ``HAND_LINK``, whose frame holds the payload."""
EFFORT_LIMIT_NM = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])
JOINT_LOWER_RAD = np.array([-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671])
JOINT_UPPER_RAD = np.array([2.9671, 1.8326, 2.9671, 0.0, 2.9671, 3.8223, 2.9671])
HOME_RAD = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8])
NOMINAL_DAMPING_NMS = np.array([0.5, 0.5, 0.5, 0.5, 0.2, 0.2, 0.2])
"""Viscous joint damping of the nominal arm, N·m·s/rad (scaled by the task)."""
NOMINAL_FRICTION_NM = np.array([0.8, 0.8, 0.8, 0.8, 0.3, 0.3, 0.3])
"""Coulomb joint friction of the nominal arm, N·m (scaled by the task)."""
PAYLOAD_RADIUS_M = 0.05
"""The payload's inertia is that of a solid sphere of this radius."""
GRASP_OFFSET_M = (0.0, 0.0, 0.105)
"""Grasp point in the hand frame (between the fingertips), where a zero offset puts the payload."""
MAX_JOINT_SPEED_RAD_S = 20.0
FINGER_OPENING_M = 0.02
"""Each finger's closed-on-payload position, held by its position motor."""

PANDA = RobotDescription(
    name="panda",
    joint_names=ARM_JOINT_NAMES,
    state_fields=tuple(f"joint_states.position:{j}" for j in ARM_JOINT_NAMES)
    + tuple(f"joint_states.velocity:{j}" for j in ARM_JOINT_NAMES),
    reference_fields=tuple(f"reference.position:{j}" for j in ARM_JOINT_NAMES)
    + tuple(f"reference.velocity:{j}" for j in ARM_JOINT_NAMES),
    action_low=tuple(float(-x) for x in EFFORT_LIMIT_NM),
    action_high=tuple(float(x) for x in EFFORT_LIMIT_NM),
    control_rate_hz=100.0,
    command_interface="effort_forward",
)
PANDA_REWARD = RewardSpec(
    name="joint_position_rms_effort_penalty",
    constants={"effort_penalty": 1e-3, "effort_limits": tuple(float(x) for x in EFFORT_LIMIT_NM)},
)
"""Minus the RMS joint position error (rad), minus ``effort_penalty`` times the mean squared
torque as a fraction of each joint's effort limit (N·m)."""


class SinusoidReference:
    """A smooth joint-space reference: per joint, a sum of sinusoids around a random centre.

    Amplitudes are bounded so the reference stays inside the joint limits with a margin, and
    frequencies are low enough (≤ 0.5 Hz) for a torque-limited arm to follow.
    """

    N_COMPONENTS = 3
    MARGIN_RAD = 0.3

    def __init__(self, rng: np.random.Generator) -> None:
        joints = PANDA.joint_count
        amplitude_total = rng.uniform(0.15, 0.45, size=joints)
        weights = rng.dirichlet(np.ones(self.N_COMPONENTS), size=joints)
        self.amplitude_rad = amplitude_total[:, None] * weights
        self.omega_rad_s = 2.0 * np.pi * rng.uniform(0.1, 0.5, size=(joints, self.N_COMPONENTS))
        self.phase_rad = rng.uniform(0.0, 2.0 * np.pi, size=(joints, self.N_COMPONENTS))
        low = JOINT_LOWER_RAD + self.MARGIN_RAD + amplitude_total
        high = JOINT_UPPER_RAD - self.MARGIN_RAD - amplitude_total
        self.centre_rad = np.clip(HOME_RAD + rng.uniform(-0.3, 0.3, size=joints), low, high)

    def __call__(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Reference positions (rad) and velocities (rad/s) at time ``t_s``."""
        position, velocity = self.at_times(np.array([t_s]))
        return position[0], velocity[0]

    def at_times(self, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reference positions (rad) and velocities (rad/s), shape ``(len(times_s), joints)`` each."""
        angle = self.omega_rad_s[None] * times_s[:, None, None] + self.phase_rad[None]
        position = self.centre_rad + np.sum(self.amplitude_rad * np.sin(angle), axis=2)
        velocity = np.sum(self.amplitude_rad * self.omega_rad_s * np.cos(angle), axis=2)
        return position, velocity


class PandaPayloadEnv(PyBulletTaskEnv[PandaTask]):
    """Joint-torque control of the 7 arm joints; fingers held closed on the payload.

    Observation: 7 joint positions (rad), 7 velocities (rad/s), then the reference's 7 positions
    and 7 velocities. Action: 7 joint torques (N·m), clipped to the URDF effort limits.
    Reward (``PANDA_REWARD``): minus the RMS joint position error (rad) minus a small torque penalty.
    """

    task_type = PandaTask
    robot = PANDA
    reward_spec = PANDA_REWARD

    def __init__(
        self,
        episode_duration_s: float = 5.0,
        physics_dt_s: float = 1.0 / 500.0,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (320, 240),
    ) -> None:
        super().__init__(physics_dt_s, self.robot.control_rate_hz, episode_duration_s, render_mode, render_size)
        self.action_space = gym.spaces.Box(
            np.array(self.robot.action_low, dtype=np.float32),
            np.array(self.robot.action_high, dtype=np.float32),
            dtype=np.float32,
        )
        # State and reference alike: joint positions (rad), then joint velocities (rad/s).
        position_low = (JOINT_LOWER_RAD - 0.5).astype(np.float32)
        position_high = (JOINT_UPPER_RAD + 0.5).astype(np.float32)
        speed = np.full(self.robot.joint_count, np.inf, dtype=np.float32)
        low = np.concatenate([position_low, -speed, position_low, -speed])
        high = np.concatenate([position_high, speed, position_high, speed])
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        robot = self.robot
        self._observation_dim = robot.state_dim + robot.reference_dim
        self._positions = robot.observation_slice("joint_states.position")
        self._velocities = robot.observation_slice("joint_states.velocity")
        self._reference_part = slice(robot.state_dim, self._observation_dim)
        self._reference_positions = robot.observation_slice("reference.position")
        self._reference_velocities = robot.observation_slice("reference.velocity")
        self._effort_penalty = float(self.reward_spec.constants["effort_penalty"])
        self._inverse_effort_limits = 1.0 / np.asarray(self.reward_spec.constants["effort_limits"])
        self._build_scene()
        self._reference = SinusoidReference(np.random.default_rng(0))
        self._t_s = 0.0

    def _build_scene(self) -> None:
        client = self.client
        client.setGravity(0.0, 0.0, -9.81)
        self.arm = client.loadURDF(PANDA_URDF, useFixedBase=True, flags=pybullet.URDF_USE_INERTIA_FROM_FILE)
        for joint in ARM_JOINTS:
            client.changeDynamics(self.arm, joint, maxJointVelocity=MAX_JOINT_SPEED_RAD_S)
        self.payload = client.createMultiBody(baseMass=0.0, baseCollisionShapeIndex=-1)
        # A floor for the camera only: no collision shape, so the physics is the arm's alone.
        floor = client.createVisualShape(
            pybullet.GEOM_BOX, halfExtents=[1.0, 1.0, 0.005], rgbaColor=[0.55, 0.6, 0.65, 1.0]
        )
        client.createMultiBody(baseMass=0.0, baseVisualShapeIndex=floor, basePosition=[0.0, 0.0, -0.005])
        self._payload_constraint: int | None = None
        # Bound methods cached once: BulletClient builds a partial on every attribute access.
        self._set_motors = client.setJointMotorControlArray
        self._step_simulation = client.stepSimulation
        self._get_joint_states = client.getJointStates

    # -- task ------------------------------------------------------------------------
    def _apply_task_live(self, task: PandaTask) -> None:
        client = self.client
        for joint in ARM_JOINTS:
            client.changeDynamics(
                self.arm, joint, jointDamping=float(NOMINAL_DAMPING_NMS[joint] * task.joint_damping_scale)
            )
        # Coulomb friction: a velocity motor towards zero speed whose force limit is the friction.
        client.setJointMotorControlArray(
            self.arm,
            ARM_JOINTS,
            pybullet.VELOCITY_CONTROL,
            targetVelocities=[0.0] * len(ARM_JOINTS),
            forces=list(NOMINAL_FRICTION_NM * task.joint_friction_scale),
        )
        self._attach_payload(task.payload_mass_kg, task.payload_com_offset_m)

    def _attach_payload(self, mass_kg: float, offset_m: tuple[float, float, float]) -> None:
        """Hold a payload of ``mass_kg`` at ``offset_m`` from the grasp point (hand frame)."""
        client = self.client
        if self._payload_constraint is not None:
            client.removeConstraint(self._payload_constraint)
            self._payload_constraint = None
        if mass_kg <= 0.0:
            client.changeDynamics(self.payload, -1, mass=0.0)
            return
        pivot_in_link = np.add(GRASP_OFFSET_M, offset_m)
        link_position, link_orientation = client.getLinkState(self.arm, HAND_LINK, computeForwardKinematics=True)[4:6]
        position, orientation = client.multiplyTransforms(
            link_position, link_orientation, pivot_in_link.tolist(), [0.0, 0.0, 0.0, 1.0]
        )
        # Start the payload moving with the hand (v + ω × r) so attaching it mid-motion is no jolt.
        hand_state = client.getLinkState(self.arm, HAND_LINK, computeLinkVelocity=True)
        hand_com_m, linear_m_s, angular_rad_s = hand_state[0], hand_state[6], hand_state[7]
        linear_m_s = np.add(linear_m_s, np.cross(angular_rad_s, np.subtract(position, hand_com_m)))
        client.resetBasePositionAndOrientation(self.payload, position, orientation)
        client.resetBaseVelocity(self.payload, linear_m_s.tolist(), angular_rad_s)
        inertia = 0.4 * mass_kg * PAYLOAD_RADIUS_M**2
        client.changeDynamics(self.payload, -1, mass=mass_kg, localInertiaDiagonal=[inertia] * 3)
        # The constraint's parent frame is the hand's inertial frame: express the pivot in it.
        inertial_position, inertial_orientation = client.getDynamicsInfo(self.arm, HAND_LINK)[3:5]
        inverse_position, inverse_orientation = client.invertTransform(inertial_position, inertial_orientation)
        pivot_in_inertial, _ = client.multiplyTransforms(
            inverse_position, inverse_orientation, pivot_in_link.tolist(), [0.0, 0.0, 0.0, 1.0]
        )
        self._payload_constraint = client.createConstraint(
            self.arm,
            HAND_LINK,
            self.payload,
            -1,
            pybullet.JOINT_FIXED,
            [0.0, 0.0, 0.0],
            pivot_in_inertial,
            [0.0, 0.0, 0.0],
            parentFrameOrientation=inverse_orientation,
        )
        client.changeConstraint(self._payload_constraint, maxForce=1e5)

    # -- episode -------------------------------------------------------------------------
    def _reset_scene(self, rng: np.random.Generator) -> None:
        self._reference = SinusoidReference(rng)
        self._t_s = 0.0
        # The whole episode's reference, tabulated once: a per-step lookup instead of trigonometry.
        times_s = np.arange(self.max_episode_steps + 1) / self.control_rate_hz
        self._reference_table = np.concatenate(self._reference.at_times(times_s), axis=1).astype(np.float32)
        position, velocity = self._reference(0.0)
        for joint in ARM_JOINTS:
            self.client.resetJointState(self.arm, joint, float(position[joint]), float(velocity[joint]))
        for joint in FINGER_JOINTS:
            self.client.resetJointState(self.arm, joint, FINGER_OPENING_M, 0.0)
        self.client.setJointMotorControlArray(
            self.arm,
            FINGER_JOINTS,
            pybullet.POSITION_CONTROL,
            targetPositions=[FINGER_OPENING_M] * 2,
            forces=[20.0, 20.0],
        )
        self._apply_task_live(self._task)

    def _apply_action_and_simulate(self, action: np.ndarray) -> None:
        torques = action.tolist()
        for _ in range(self.substeps):
            # Joint torques are cleared by every physics step, so they are re-applied each sub-step.
            self._set_motors(self.arm, ARM_JOINTS, pybullet.TORQUE_CONTROL, forces=torques)
            self._step_simulation()
        self._t_s += 1.0 / self.control_rate_hz

    def _observation(self) -> np.ndarray:
        states = self._get_joint_states(self.arm, ARM_JOINTS)
        obs = np.empty(self._observation_dim, dtype=np.float32)
        obs[self._positions] = [s[0] for s in states]
        obs[self._velocities] = [s[1] for s in states]
        if self.elapsed_steps < len(self._reference_table):
            obs[self._reference_part] = self._reference_table[self.elapsed_steps]
        else:  # stepped on past the episode's end, ignoring ``truncated``: compute directly
            obs[self._reference_positions], obs[self._reference_velocities] = self._reference(self._t_s)
        return obs

    def _reward(self, tracking_error: float, action: np.ndarray) -> float:
        scaled = action * self._inverse_effort_limits
        return -tracking_error - self._effort_penalty * float(scaled @ scaled) / len(scaled)

    def tracking_error(self, obs: np.ndarray) -> float:
        """RMS joint position error (rad) between state and reference in one observation."""
        error = np.asarray(obs[self._positions], dtype=np.float64) - obs[self._reference_positions]
        return math.sqrt(float(error @ error) / len(error))

    def _camera(self) -> tuple[list[float], float, float, float]:
        return [0.3, 0.0, 0.4], 1.7, 50.0, -25.0
