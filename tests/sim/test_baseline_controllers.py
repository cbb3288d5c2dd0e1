"""The fixed controllers know only the nominal robot, so the task distribution must show in
their tracking error: that is what makes the tasks worth adapting to."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import sim  # noqa: F401
from sim.baseline_controllers import HuskyPIController, PandaPDGravityController
from sim.tasks import HuskyTask, PandaTask

EPISODE_S = 2.0
HARDEST_PANDA = PandaTask(
    payload_mass_kg=5.0,
    payload_com_offset_m=(0.05, 0.05, 0.05),
    joint_damping_scale=4.0,
    joint_friction_scale=4.0,
)
HARDEST_HUSKY = HuskyTask(
    ground_friction=0.2,
    slope_rad=0.25,
    terrain_type="bumps",
    terrain_roughness_m=0.04,
    payload_mass_kg=80.0,
    motor_strength_scale=0.3,
)


def mean_tracking_error(env: gymnasium.Env, controller, task, seed: int = 0) -> float:
    env.unwrapped.set_task(task)
    obs, _ = env.reset(seed=seed)
    controller.reset()
    errors = []
    done = False
    while not done:
        action = controller(obs)
        assert env.action_space.contains(action)
        obs, _, terminated, truncated, info = env.step(action)
        errors.append(info["tracking_error"])
        done = terminated or truncated
    return float(np.mean(errors))


@pytest.mark.parametrize(
    ("env_id", "controller_type", "nominal", "hardest"),
    [
        ("metarl/PandaPayload-v0", PandaPDGravityController, PandaTask(), HARDEST_PANDA),
        ("metarl/HuskyTerrain-v0", HuskyPIController, HuskyTask(), HARDEST_HUSKY),
    ],
)
def test_hardest_held_out_task_triples_the_fixed_controllers_error(env_id, controller_type, nominal, hardest) -> None:
    env = gymnasium.make(env_id, episode_duration_s=EPISODE_S)
    env.unwrapped.sample_tasks(1, np.random.default_rng(0), "extrap")[0].validate()
    hardest.validate()
    controller = controller_type()
    easy = mean_tracking_error(env, controller, nominal)
    hard = mean_tracking_error(env, controller, hardest)
    assert hard >= 3.0 * easy, f"{env_id}: error {hard:.4f} on the hardest task vs {easy:.4f} nominal"
    env.close()


def test_panda_controller_tracks_the_nominal_arm_closely() -> None:
    env = gymnasium.make("metarl/PandaPayload-v0", episode_duration_s=EPISODE_S)
    assert mean_tracking_error(env, PandaPDGravityController(), PandaTask()) < 0.01  # rad
    env.close()


def test_held_out_panda_tasks_are_harder_than_training_tasks_on_average() -> None:
    env = gymnasium.make("metarl/PandaPayload-v0", episode_duration_s=1.0)
    controller = PandaPDGravityController()
    rng = np.random.default_rng(0)
    train = [mean_tracking_error(env, controller, t) for t in env.unwrapped.sample_tasks(3, rng, "train")]
    extrap = [mean_tracking_error(env, controller, t) for t in env.unwrapped.sample_tasks(3, rng, "extrap")]
    assert np.mean(extrap) > np.mean(train)
    env.close()


def test_controllers_reset_their_memory() -> None:
    controller = HuskyPIController()
    obs = np.zeros(13, dtype=np.float32)
    obs[11] = 1.0
    first = controller(obs)
    controller(obs)
    controller.reset()
    np.testing.assert_array_equal(controller(obs), first)
