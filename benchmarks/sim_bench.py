"""``metarl bench sim``: how fast the simulated robots step, and what the gymnasium layer costs.

Three figures per robot:
- the environment's control steps per second (``gymnasium.make``, wrappers included);
- bare PyBullet doing the same physics work per control step: the same robot, the same physics
  sub-steps and motor commands, and the same sensor reads, with no Python layer around it. The
  ratio env / bare is the price of the environment (target ≥ 80 %);
- the worker-process vector env (``sim.vector_collection``) at 1 and 2 workers: total steps per
  second across workers, and the scaling from 1 to 2 (target ≥ 1.6× on two free cores).

Each figure is the median of ``--repeats`` timed runs after a warm-up run, because the machine
may be shared: a single run measures the neighbours as much as the code. Figures that are
compared (env with bare, one worker count with another) are measured interleaved, one run of
each in turn, so a change in the neighbours' load falls on both sides of a ratio alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

import gymnasium
import numpy as np
import pybullet
import pybullet_data

from benchmarks.machine import describe_machine
from sim import registered_env_class
from sim.vector_collection import make_process_backend

ENV_IDS = {"panda": "metarl/PandaPayload-v0", "husky": "metarl/HuskyTerrain-v0"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``metarl bench sim``."""
    parser.add_argument("--robots", default="panda,husky", help="comma-separated: panda, husky")
    parser.add_argument("--steps", type=int, default=2000, help="control steps per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (median reported)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts for the vector env")


RunOnce = Callable[[], float]
"""One timed run; returns its rate (steps per second)."""


def interleaved_median_rates(runs: Sequence[RunOnce], repeats: int) -> list[float]:
    """Median rate of each run over ``repeats`` rounds (one run of each per round, in turn),
    after one untimed warm-up round."""
    for run_once in runs:
        run_once()
    samples: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run_once, rates in zip(runs, samples, strict=True):
            rates.append(run_once())
    return [statistics.median(rates) for rates in samples]


def episode_duration_s(env_id: str, steps: int) -> float:
    """An episode one control period longer than ``steps``: a timed run never resets mid-way."""
    return (steps + 1) * registered_env_class(env_id).robot.control_period_s


@contextmanager
def env_run(env_id: str, steps: int) -> Iterator[RunOnce]:
    """Timed runs of one environment, as ``gymnasium.make`` builds it (wrappers included)."""
    env = gymnasium.make(env_id, episode_duration_s=episode_duration_s(env_id, steps))
    actions = (
        np.random.default_rng(0)
        .uniform(0.2 * env.action_space.low, 0.2 * env.action_space.high, (steps, *env.action_space.shape))
        .astype(np.float32)
    )

    def run_once() -> float:
        env.reset(seed=0)
        start = time.perf_counter()
        for action in actions:
            env.step(action)
        return steps / (time.perf_counter() - start)

    try:
        yield run_once
    finally:
        env.close()


@contextmanager
def bare_panda_run(substeps: int, physics_dt_s: float, steps: int) -> Iterator[RunOnce]:
    """The Panda env's physics work per control step in bare PyBullet: torques re-applied each
    sub-step, then the arm's joint states read."""
    client = pybullet.connect(pybullet.DIRECT)
    pybullet.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=client)
    pybullet.setTimeStep(physics_dt_s, physicsClientId=client)
    pybullet.setGravity(0, 0, -9.81, physicsClientId=client)
    arm = pybullet.loadURDF(
        "franka_panda/panda.urdf",
        useFixedBase=True,
        flags=pybullet.URDF_USE_INERTIA_FROM_FILE,
        physicsClientId=client,
    )
    joints = list(range(7))
    pybullet.setJointMotorControlArray(arm, joints, pybullet.VELOCITY_CONTROL, forces=[0.8] * 7, physicsClientId=client)
    torques = np.random.default_rng(0).uniform(-5.0, 5.0, (steps, 7)).tolist()

    def run_once() -> float:
        for joint in joints:
            pybullet.resetJointState(arm, joint, 0.0, 0.0, physicsClientId=client)
        start = time.perf_counter()
        for torque in torques:
            for _ in range(substeps):
                pybullet.setJointMotorControlArray(
                    arm, joints, pybullet.TORQUE_CONTROL, forces=torque, physicsClientId=client
                )
                pybullet.stepSimulation(physicsClientId=client)
            pybullet.getJointStates(arm, joints, physicsClientId=client)
        return steps / (time.perf_counter() - start)

    try:
        yield run_once
    finally:
        pybullet.disconnect(client)


@contextmanager
def bare_husky_run(substeps: int, physics_dt_s: float, steps: int) -> Iterator[RunOnce]:
    """The Husky env's physics work per control step in bare PyBullet: one velocity-motor command,
    the sub-steps, then the base pose, base velocity and wheel states read."""
    client = pybullet.connect(pybullet.DIRECT)
    pybullet.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=client)
    pybullet.setTimeStep(physics_dt_s, physicsClientId=client)
    pybullet.setGravity(0, 0, -9.81, physicsClientId=client)
    pybullet.loadURDF("plane.urdf", physicsClientId=client)
    husky = pybullet.loadURDF("husky/husky.urdf", [0.0, 0.0, 0.2], physicsClientId=client)
    wheels = [2, 3, 4, 5]
    speeds = np.random.default_rng(0).uniform(-2.0, 2.0, (steps, 2)).tolist()

    def run_once() -> float:
        pybullet.resetBasePositionAndOrientation(husky, [0, 0, 0.2], [0, 0, 0, 1], physicsClientId=client)
        start = time.perf_counter()
        for left, right in speeds:
            pybullet.setJointMotorControlArray(
                husky,
                wheels,
                pybullet.VELOCITY_CONTROL,
                targetVelocities=[left, right, left, right],
                forces=[25.0] * 4,
                physicsClientId=client,
            )
            for _ in range(substeps):
                pybullet.stepSimulation(physicsClientId=client)
            pybullet.getBasePositionAndOrientation(husky, physicsClientId=client)
            pybullet.getBaseVelocity(husky, physicsClientId=client)
            pybullet.getJointStates(husky, wheels, physicsClientId=client)
        return steps / (time.perf_counter() - start)

    try:
        yield run_once
    finally:
        pybullet.disconnect(client)


@contextmanager
def vector_run(env_id: str, workers: int, steps: int) -> Iterator[RunOnce]:
    """Timed runs of ``workers`` worker processes, one env each; the rate is their total."""
    backend = make_process_backend(env_id, workers, episode_duration_s=episode_duration_s(env_id, steps))
    action_space = backend.single_action_space
    actions = (
        np.random.default_rng(0)
        .uniform(0.2 * action_space.low, 0.2 * action_space.high, (steps, workers, *action_space.shape))
        .astype(np.float32)
    )

    def run_once() -> float:
        backend.reset(seed=0)
        start = time.perf_counter()
        for action in actions:
            backend.step(action)
        return workers * steps / (time.perf_counter() - start)

    try:
        yield run_once
    finally:
        backend.close()


BARE_RUNS = {"panda": bare_panda_run, "husky": bare_husky_run}


def measure_robot(robot: str, steps: int, repeats: int, worker_counts: Sequence[int]) -> dict[str, float]:
    """Env and bare rates (interleaved), then the vector rates (interleaved across worker counts).

    The two groups are timed apart: while the workers of a vector env wait for their next
    command they hold no core, but an in-process env timed beside them would compete with them.
    """
    env_id = ENV_IDS[robot]
    probe = gymnasium.make(env_id)
    substeps, physics_dt_s = probe.unwrapped.substeps, probe.unwrapped.physics_dt_s
    probe.close()
    with ExitStack() as stack:
        runs = [
            stack.enter_context(env_run(env_id, steps)),
            stack.enter_context(BARE_RUNS[robot](substeps, physics_dt_s, steps)),
        ]
        env_rate, bare_rate = interleaved_median_rates(runs, repeats)
    with ExitStack() as stack:
        runs = [stack.enter_context(vector_run(env_id, n, steps)) for n in worker_counts]
        vector_rates = interleaved_median_rates(runs, repeats)
    return {
        "substeps": substeps,
        "physics_dt_s": physics_dt_s,
        "env": env_rate,
        "bare": bare_rate,
        **{f"vector_{n}": rate for n, rate in zip(worker_counts, vector_rates, strict=True)},
    }


def run(args: argparse.Namespace) -> str:
    """Measure and return the markdown section for BENCHMARKS.md."""
    robots = [name.strip() for name in args.robots.split(",") if name.strip()]
    unknown = sorted(set(robots) - set(ENV_IDS))
    if unknown:
        raise SystemExit(f"metarl bench sim: unknown robot(s) {unknown}; choose from {sorted(ENV_IDS)}")
    worker_counts = [int(n) for n in args.workers.split(",")]
    if not worker_counts or min(worker_counts) < 1:
        raise SystemExit(f"metarl bench sim: --workers {args.workers!r} must list worker counts >= 1")
    command = (
        f"metarl bench sim --robots {','.join(robots)} --steps {args.steps} "
        f"--repeats {args.repeats} --workers {args.workers}"
    )
    lines = [
        "## Simulation: env steps per second",
        "",
        f"Command: `{command}`  ",
        f"Machine: {describe_machine()}",
        "",
        "A step is one 10 ms control step (several physics sub-steps). *Bare* is PyBullet doing the",
        "same physics work per step (same robot, sub-steps, motor commands and sensor reads) with no",
        "Python layer; the ratio is the cost of the environment. Vector: worker processes, one env",
        "each, total steps/s; scaling is the last worker count's rate over the first's. Medians of",
        "the repeats after a warm-up; compared figures are timed interleaved, one run each in turn.",
        "",
        "| robot | sub-steps | env steps/s | bare PyBullet steps/s | env / bare | "
        + " | ".join(f"vector {n}w steps/s" for n in worker_counts)
        + " | scaling |",
        "|---|---|---|---|---|" + "---|" * len(worker_counts) + "---|",
    ]
    for robot in robots:
        rates = measure_robot(robot, args.steps, args.repeats, worker_counts)
        vector_rates = [rates[f"vector_{n}"] for n in worker_counts]
        scaling = vector_rates[-1] / vector_rates[0]
        print(f"{robot}: {rates}", file=sys.stderr)
        lines.append(
            f"| {robot} | {rates['substeps']} × {rates['physics_dt_s'] * 1e3:g} ms | {rates['env']:.0f} | "
            f"{rates['bare']:.0f} | {rates['env'] / rates['bare']:.0%} | "
            + " | ".join(f"{rate:.0f}" for rate in vector_rates)
            + f" | {scaling:.2f}× |"
        )
    return "\n".join(lines) + "\n"
