"""``metarl train`` for ``algo: grbal-residual``: meta-train the residual torque model of adaptive
computed torque (``metarl_core.model_based.residual_model``).

In the order it runs: seeding; training tasks; exploration episodes of the task suite's nominal
computed-torque controller plus noise (the states a tracking arm visits, excited); each
transition turned into a residual pair by the nominal model, from sensors only
(``NominalArm.regression_pairs``); the statistics; then per iteration GrBAL's meta-steps on
windows of M past and K future consecutive pairs of one task, metrics and an atomic checkpoint
(data, optimiser and RNG states included, so ``--resume`` continues the same run).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pybullet_data
import torch
from tqdm import tqdm

import sim  # noqa: F401  (registers the environment ids)
from metarl_core.model_based.adaptation import Adaptation
from metarl_core.model_based.dynamics_model import init_mlp
from metarl_core.model_based.episode_collection import open_episode_collector
from metarl_core.model_based.exploration import exploration_controller
from metarl_core.model_based.meta_objective import make_step_sizes
from metarl_core.model_based.residual_model import (
    RESIDUAL_RULES,
    NominalDescription,
    RegressionWindow,
    RegressionWindows,
    ResidualStats,
    TrainedResidual,
    load_residual_checkpoint,
    residual_meta_loss,
    save_residual_checkpoint,
)
from metarl_core.run.checkpoint_io import CHECKPOINT_NAME
from metarl_core.run.config_loading import (
    RunConfig,
    config_from_dict,
    require_at_least,
    require_fraction,
    require_own_algo,
    require_positive,
)
from metarl_core.run.run_directory import open_run_directory
from metarl_core.run.run_metrics import MetricsWriter
from metarl_runtime.residual_torque import RESIDUAL_INPUT_NAMES, ResidualPairs
from sim.baseline_controllers import FRICTION_SMOOTHING_RAD_S, PANDA_KD_PER_S, PANDA_KP_PER_S2
from sim.episode_jobs import EpisodeJob
from sim.panda_payload import (
    FINGER_JOINT_NAMES,
    FINGER_OPENING_M,
    NOMINAL_DAMPING_NMS,
    NOMINAL_FRICTION_NM,
    PANDA_URDF,
)


@dataclass(frozen=True)
class ResidualConfig(RunConfig):
    """Meta-training of the Panda's residual torque model over its nominal rigid-body model."""

    algo: str = "grbal-residual"
    """Which trainer reads this file."""
    name: str = "panda_residual"
    """Run name: the default run directory is runs/<name>."""
    env_id: str = "metarl/PandaPayload-v0"
    """Registered task-suite environment (the Panda: the nominal model is its URDF)."""
    seed: int = 0
    """Seeds tasks, data collection, initialisation and batches."""
    episode_duration_s: float = 4.0
    """Length of each collected episode (s)."""
    train_tasks: int = 48
    """Training tasks drawn from the train split."""
    exploration_episodes_per_task: int = 2
    """Episodes per task of the noisy nominal controller."""
    exploration_noise_fraction: float = 0.05
    """Gaussian torque noise, as a fraction of each joint's half range."""
    iterations: int = 4
    """Outer iterations (a checkpoint and a metrics row after each)."""
    gradient_steps_per_iteration: int = 500
    """Adam steps on the meta-objective per iteration."""
    task_batch_size: int = 16
    """Tasks per meta-batch."""
    windows_per_task: int = 8
    """Windows per task in each meta-batch."""
    past_window: int = 24
    """M: transitions the robot adapts on."""
    future_window: int = 24
    """K: transitions the adapted model is judged on."""
    adaptation: str = "physical"
    """How the robot adapts the residual: "physical" (ridge over the payload's inertial parameters
    and each joint's damping, friction and bias), "rls" (the MLP's output layer in closed form) or
    "gradient" (n SGD steps on the MLP)."""
    rls_prior_precision: float = 1.0
    """Ridge precision pulling the output layer toward the meta-learned one ("rls"), in meta-training."""
    rls_forgetting: float = 1.0
    """λ in (0, 1] of the RLS solve: a transition a steps older than the window's newest weighs λᵃ
    (``Adaptation.rls_forgetting``), in meta-training and on the robot alike."""
    deployed_rls_prior_precision: float = 0.0
    """The same precision on the robot (the bundle's); 0 means ``rls_prior_precision``. Why they may
    differ: meta-training windows come from one task each, while on the robot the window after a
    switch holds a task the prior knows nothing of, where trusting the window more pays."""
    deployed_rls_forgetting: float = 0.0
    """λ on the robot (the bundle's); 0 means ``rls_forgetting``. Why it may differ, as for the
    precision: right after a switch the newest transitions are the only ones of the new task."""
    deployed_warm_start: float = 0.0
    """w in [0, 1) of the gradient rule on the robot: each adaptation's n steps start from
    θ* + w (θ_last − θ*), the last adaptation's parameters pulled back toward the meta-learned
    ones, instead of from θ* itself (w = 0, as meta-trained). Why: one step from θ* on 8 pairs
    moves the MLP only part of the way to a payload outside the training range, every tick anew,
    so the error settled 3-6× above its level before a switch; started where the last tick ended,
    the steps accumulate over ticks, and the pull-back forgets an old payload at (1 − w) per tick."""
    inner_steps: int = 1
    """n: SGD steps of the gradient rule."""
    inner_lr: float = 0.05
    """Initial inner step size (gradient rule)."""
    learn_step_sizes: bool = True
    """Meta-SGD: learn one step size per parameter entry (gradient rule)."""
    first_order: bool = False
    """Ignore second derivatives in the meta-gradient."""
    outer_lr: float = 1e-3
    """Adam learning rate of the meta-parameters."""
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layers of the residual MLP."""
    feedback_kp_per_s2: float = PANDA_KP_PER_S2
    """Position gain of the controller's desired acceleration (1/s²); the default is the task
    suite's nominal computed-torque controller's (``sim.baseline_controllers``)."""
    feedback_kd_per_s: float = PANDA_KD_PER_S
    """Velocity gain of the desired acceleration (1/s)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ResidualConfig:
        config = config_from_dict(cls, data, source)
        require_at_least(
            config,
            source,
            1,
            "train_tasks",
            "exploration_episodes_per_task",
            "iterations",
            "gradient_steps_per_iteration",
            "task_batch_size",
            "windows_per_task",
            "past_window",
            "future_window",
            "inner_steps",
        )
        require_at_least(config, source, 0, "exploration_noise_fraction", "seed", "deployed_rls_prior_precision")
        require_positive(
            config,
            source,
            "inner_lr",
            "outer_lr",
            "episode_duration_s",
            "rls_prior_precision",
            "feedback_kp_per_s2",
            "feedback_kd_per_s",
        )
        if not config.hidden_sizes or any(size < 1 for size in config.hidden_sizes):
            raise ValueError(f"{source}: field 'hidden_sizes'={config.hidden_sizes} must list at least one size >= 1")
        if config.adaptation not in RESIDUAL_RULES:
            raise ValueError(
                f"{source}: field 'adaptation'={config.adaptation!r} must be one of {list(RESIDUAL_RULES)}"
            )
        require_fraction(config, source, "rls_forgetting")
        if config.deployed_rls_forgetting:
            require_fraction(config, source, "deployed_rls_forgetting")
        if not 0.0 <= config.deployed_warm_start < 1.0:
            raise ValueError(f"{source}: field 'deployed_warm_start'={config.deployed_warm_start} must be in [0, 1)")
        if config.deployed_warm_start and config.adaptation != "gradient":
            rule = config.adaptation
            raise ValueError(f"{source}: field 'deployed_warm_start' is the gradient rule's, not {rule!r}'s")
        if config.env_id != "metarl/PandaPayload-v0":
            raise ValueError(f"{source}: field 'env_id'={config.env_id!r}: the nominal model is the Panda's only")
        require_own_algo(config, source, "grbal-residual")
        return config

    def inner_adaptation(self) -> Adaptation | None:
        """The MLP's adaptation rule ("rls", "gradient"); None for the physical rule."""
        if self.adaptation == "physical":
            return None
        return Adaptation(self.adaptation, self.inner_steps, self.rls_prior_precision, self.rls_forgetting)  # type: ignore[arg-type]

    def deployed_adaptation(self) -> Adaptation | None:
        """The rule the robot runs: :meth:`inner_adaptation` with the deployed RLS precision and
        forgetting where they are set."""
        adaptation = self.inner_adaptation()
        if adaptation is None:
            return None
        return dataclasses.replace(
            adaptation,
            rls_prior_precision=self.deployed_rls_prior_precision or adaptation.rls_prior_precision,
            rls_forgetting=self.deployed_rls_forgetting or adaptation.rls_forgetting,
        )


def panda_nominal(kp_per_s2: float = PANDA_KP_PER_S2, kd_per_s: float = PANDA_KD_PER_S) -> NominalDescription:
    """The Panda as its manufacturer describes it: the payload-free URDF (fingers closed at the
    grasp opening), nominal damping and friction; and the controller's gains."""
    urdf = (Path(pybullet_data.getDataPath()) / PANDA_URDF).read_text(encoding="utf-8")
    return NominalDescription(
        urdf=urdf,
        held_positions=dict.fromkeys(FINGER_JOINT_NAMES, FINGER_OPENING_M),
        damping_nms=tuple(float(x) for x in NOMINAL_DAMPING_NMS),
        friction_nm=tuple(float(x) for x in NOMINAL_FRICTION_NM),
        friction_smoothing_rad_s=FRICTION_SMOOTHING_RAD_S,
        kp_per_s2=kp_per_s2,
        kd_per_s=kd_per_s,
    )


TaskPairs = list[ResidualPairs]
"""One task's episodes, each the residual pairs of its consecutive transitions."""


def sample_regression_windows(
    tasks: list[TaskPairs], chosen: np.ndarray, past: int, future: int, count: int, rng: np.random.Generator
) -> RegressionWindows:
    """``count`` windows of ``past`` then ``future`` consecutive pairs of one episode, per chosen
    task (a window never spans two episodes: the pair across a reset is not dynamics)."""
    length = past + future
    picked: list[list[np.ndarray]] = [[], [], []]
    for task in chosen:
        episodes = tasks[int(task)]
        starts = [(e, s) for e, pairs in enumerate(episodes) for s in range(len(pairs.inputs) - length + 1)]
        if not starts:
            raise ValueError(f"no episode of task {task} holds {past}+{future} consecutive transitions")
        for index in rng.integers(len(starts), size=count):
            episode, start = starts[index]
            for part, array in zip(picked, episodes[episode], strict=True):
                part.append(array[start : start + length])
    x, y, d = (torch.from_numpy(np.stack(part)) for part in picked)
    return RegressionWindows(
        RegressionWindow(x[:, :past], y[:, :past], d[:, :past]), RegressionWindow(x[:, past:], y[:, past:], d[:, past:])
    )


def collect_residual_data(config: ResidualConfig, env: Any, nominal: NominalDescription) -> list[TaskPairs]:
    """Exploration episodes on ``config.train_tasks`` training tasks, as residual pairs."""
    robot = env.unwrapped.robot
    arm = nominal.arm(robot.joint_names, 1.0 / robot.control_rate_hz)
    rng = np.random.default_rng(config.seed)
    tasks = env.unwrapped.sample_tasks(config.train_tasks, rng, "train")
    jobs = [
        EpisodeJob(
            task=task,
            reset_seeds=tuple(config.seed + 1000 * index + e for e in range(config.exploration_episodes_per_task)),
            controller_seed=config.seed + index,
        )
        for index, task in enumerate(tasks)
    ]
    collector = open_episode_collector(env, "local", config.env_id, 1, "", episode_duration_s=config.episode_duration_s)
    explorer = functools.partial(exploration_controller, robot.name, config.exploration_noise_fraction)
    data: list[TaskPairs] = []
    try:
        for records in collector.run(explorer, jobs, progress="exploration"):
            data.append(
                [
                    arm.regression_pairs(
                        r.observations[:, : robot.state_dim], r.actions, r.next_observations[:, : robot.state_dim]
                    )
                    for r in records
                ]
            )
    finally:
        collector.close()
    return data


def run_residual_training(config_path: Path, run_dir: Path | None, device: str, resume: bool) -> Path:
    """Train (or resume) the ``grbal-residual`` run of ``config_path``; return its directory.

    Meta-training runs on the CPU (``device`` must be "cpu": the model is small and the batches
    are built in numpy), one thread being enough for a 10-minute budget per seed."""
    if device != "cpu":
        raise ValueError(f"--device {device}: grbal-residual runs train on the CPU only")
    config = ResidualConfig.from_yaml(Path(config_path))
    run_dir, resumed = open_run_directory(config, run_dir, resume, load_residual_checkpoint)
    torch.manual_seed(config.seed)
    env = gymnasium.make(config.env_id, episode_duration_s=config.episode_duration_s)
    robot = env.unwrapped.robot
    adaptation = config.inner_adaptation()
    if resumed is not None:
        model, state = resumed
        nominal, stats_values = model.nominal, model.stats
        data = [[ResidualPairs(*(t.numpy() for t in pairs)) for pairs in task] for task in state["data"]]
        prior = {k: v.requires_grad_() for k, v in model.physical_prior.items()}
        params = {k: v.requires_grad_() for k, v in model.params.items()}
        step_sizes = (
            {k: v.requires_grad_() for k, v in model.step_sizes.items()}
            if isinstance(model.step_sizes, dict)
            else model.step_sizes
        )
        rng = np.random.default_rng()
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        start_iteration = state["iteration"] + 1
    else:
        nominal = panda_nominal(config.feedback_kp_per_s2, config.feedback_kd_per_s)
        data = collect_residual_data(config, env, nominal)
        stats_values = ResidualStats.fit(
            np.concatenate([p.inputs for task in data for p in task]),
            np.concatenate([p.targets for task in data for p in task]),
        )
        width = data[0][0].design.shape[-1]
        prior = {"mean": torch.zeros(width).requires_grad_(), "log_precision": torch.zeros(width).requires_grad_()}
        sizes = (len(RESIDUAL_INPUT_NAMES) * robot.joint_count, *config.hidden_sizes, robot.joint_count)
        params = init_mlp(sizes, torch.Generator().manual_seed(config.seed))
        params = {k: v.requires_grad_() for k, v in params.items()}
        step_sizes = make_step_sizes(params, config.inner_lr, config.learn_step_sizes)
        rng = np.random.default_rng(config.seed + 17)
        start_iteration = 0
        state = {}
    env.close()
    meta_variables = list(params.values()) + (list(step_sizes.values()) if isinstance(step_sizes, dict) else [])
    if config.adaptation == "physical":
        meta_variables += list(prior.values())
    optimizer = torch.optim.Adam(meta_variables, lr=config.outer_lr)
    if state:
        optimizer.load_state_dict(state["optimizer"])
    stats = stats_values.torch()
    metrics_writer = MetricsWriter(run_dir)
    total = config.iterations * config.gradient_steps_per_iteration
    progress = tqdm(total=total, initial=start_iteration * config.gradient_steps_per_iteration, desc="meta-train")
    for iteration in range(start_iteration, config.iterations):
        losses = []
        for _ in range(config.gradient_steps_per_iteration):
            chosen = rng.choice(len(data), size=min(config.task_batch_size, len(data)), replace=False)
            windows = sample_regression_windows(
                data, chosen, config.past_window, config.future_window, config.windows_per_task, rng
            )
            loss = residual_meta_loss(
                params, step_sizes, prior, windows, stats, config.adaptation, adaptation, config.first_order
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            progress.update(1)
            progress.set_postfix(meta_loss=f"{losses[-1]:.4f}")
        model = TrainedResidual(
            robot=robot,
            hidden_sizes=tuple(config.hidden_sizes),
            params={k: v.detach().cpu().clone() for k, v in params.items()},
            stats=stats_values,
            window_size=config.past_window,
            rule=config.adaptation,
            adaptation=config.deployed_adaptation(),
            warm_start=config.deployed_warm_start,
            step_sizes=(
                {k: v.detach().cpu().clone() for k, v in step_sizes.items()}
                if isinstance(step_sizes, dict)
                else step_sizes
            ),
            physical_prior={k: v.detach().cpu().clone() for k, v in prior.items()},
            nominal=nominal,
            config=config.to_dict(),
        )
        metrics_writer.log(iteration, {"losses/meta_loss": float(np.mean(losses))})
        save_residual_checkpoint(
            run_dir / CHECKPOINT_NAME,
            model,
            {
                "iteration": iteration,
                "optimizer": optimizer.state_dict(),
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "data": [[tuple(torch.from_numpy(a) for a in pairs) for pairs in task] for task in data],
            },
        )
    progress.close()
    metrics_writer.close()
    return run_dir
