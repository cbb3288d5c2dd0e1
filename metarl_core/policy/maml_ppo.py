"""MAML-PPO: a policy initialisation that one policy-gradient step on a new task makes good.

Finn et al. (ICML 2017, §5.3) with PPO in place of TRPO for the outer loop, as in ProMP and
garage. Per iteration:
1. draw ``meta_batch_size`` training tasks; run ``episodes_per_task`` episodes of the current
   policy θ on each (the *support* trajectories);
2. inner loop: per task, ``θ'_i = θ − α ∇θ L_PG(θ; support_i)``, L_PG the REINFORCE loss with a
   linear feature baseline (``inner_steps`` such steps, each on fresh support trajectories of
   the policy adapted so far);
3. run ``episodes_per_task`` episodes of each adapted policy θ'_i (the *query* trajectories);
4. outer loop: PPO's clipped objective on the query trajectories, with the ratio taken between
   ``θ'_i(θ)`` (the inner step recomputed from the current θ, so the gradient flows through it)
   and the ``θ'_i`` that collected them; second-order by default, first-order (inner gradients
   treated as constants) as an option. Tasks are ``vmap``-ed.

``inner_steps: 0`` turns the same code into the *pretrained* baseline of the paper: PPO on the
policy's own trajectories across all training tasks, no adaptation in training.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from metarl_core.policy.gaussian_mlp_policy import init_mlp_policy, mlp_action_mean, mlp_log_prob
from metarl_core.policy.linear_baseline import fit_linear_baseline
from metarl_core.policy.policy_checkpoint import TrainedPolicy, save_policy_checkpoint
from metarl_core.policy.ppo import (
    PPOConfig,
    PPOLoss,
    discounted_returns,
    gaussian_entropy,
    generalized_advantages,
    masked_mean,
    ppo_loss,
    ppo_update,
    standardize,
    validate_ppo_config,
)
from metarl_core.policy.recurrent_policy import Params, RecurrentPolicyShape
from metarl_core.policy.sampling import (
    HELD_OUT_SEED,
    PolicyEnv,
    Rollouts,
    held_out_tasks,
    identity_stats,
    observation_stats,
    sample_rollouts,
    validate_action_mode,
)
from metarl_core.run.checkpoint_io import CHECKPOINT_NAME
from metarl_core.run.config_loading import RunConfig, config_from_dict, require_at_least, require_own_algo
from metarl_core.run.run_metrics import MetricsWriter
from sim.tasks import SPLITS
from sim.vector_collection import CollectionBackend


@dataclass(frozen=True)
class MamlPPOConfig(RunConfig):
    """MAML with a policy-gradient inner loop and a PPO outer loop."""

    algo: str = "maml-ppo"
    """Which trainer reads this file (maml-ppo here)."""
    name: str = "point_nav_maml_ppo"
    """Run name: the default run directory is runs/<name>."""
    env_id: str = "metarl/PointNavigation-v0"
    """Registered environment with the task API (sample_tasks, set_task)."""
    episode_duration_s: float = 0.0
    """Episode length for the robot tasks (s); 0 keeps the environment's registered length."""
    seed: int = 0
    """Seeds tasks, initialisation and action noise."""
    iterations: int = 100
    """Meta-iterations (each: support, inner step, query, outer PPO update)."""
    meta_batch_size: int = 20
    """Training tasks per meta-iteration."""
    episodes_per_task: int = 20
    """Episodes per task for each inner step, and again for the query (MAML's fast batch)."""
    inner_steps: int = 1
    """Policy-gradient steps of the adaptation; 0 trains the non-meta 'pretrained' baseline."""
    inner_lr: float = 0.1
    """α: step size of the inner policy-gradient step (MAML used 0.1 to 1 on 2-D navigation)."""
    learn_inner_lr: bool = False
    """Meta-learn α as well (one scalar, as Meta-SGD does per entry), starting from ``inner_lr``."""
    first_order: bool = False
    """Treat the inner gradients as constants in the meta-gradient (cheaper, less exact)."""
    hidden_size: int = 100
    """Width of each of the policy MLP's two tanh hidden layers."""
    initial_log_std: float = 0.0
    """Initial log standard deviation of the Gaussian policy (normalised action units)."""
    normalize_observations: bool = False
    """Standardise observations with statistics of the initial policy's rollouts on a batch of
    training tasks drawn for that purpose before the first iteration."""
    action: str = "torque"
    """How the normalised action reaches the robot: ``torque`` scales it to the effort limits;
    ``residual`` adds a correction of at most ``residual_torque_fraction`` of them to the nominal
    computed-torque controller (Panda only), and the policy also sees the tracking error."""
    residual_torque_fraction: float = 0.1
    """``action: residual``: the largest correction, as a fraction of each joint's effort limit."""
    eval_interval: int = 0
    """Score the policy on held-out tasks every this many iterations, and after the last; 0: never.
    The score is the return after ``inner_steps`` steps of adaptation to each held-out task."""
    eval_split: str = "interp"
    """Split of the held-out tasks."""
    eval_tasks: int = 8
    """Held-out tasks in each score (``episodes_per_task`` episodes each, per step)."""
    eval_deterministic: bool = False
    """Score with the Gaussian's mean action (adaptation still samples), as RL²'s option of the name."""
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(learning_rate=1e-3, epochs=5, minibatches=1))
    """The outer loop's PPO (``value_coef`` unused: the baseline is fitted, not learned)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> MamlPPOConfig:
        config = config_from_dict(cls, data, source)
        require_own_algo(config, source, "maml-ppo")
        require_at_least(
            config, source, 1, "iterations", "meta_batch_size", "episodes_per_task", "hidden_size", "eval_tasks"
        )
        require_at_least(config, source, 0, "inner_steps", "episode_duration_s", "eval_interval", "seed")
        if config.eval_split not in SPLITS:
            raise ValueError(f"{source}: field 'eval_split'={config.eval_split!r} must be one of {SPLITS}")
        if config.inner_lr <= 0:
            raise ValueError(f"{source}: field 'inner_lr'={config.inner_lr} must be > 0")
        if config.learn_inner_lr and config.inner_steps == 0:
            raise ValueError(f"{source}: field 'learn_inner_lr'=True needs inner_steps >= 1 (there is no inner step)")
        validate_action_mode(config, source)
        validate_ppo_config(config.ppo, source)
        return config


@dataclass
class TaskBatch:
    """Trajectories of ``K`` tasks, task-major ``(K, T, N, ...)``: what the inner and outer losses
    read. ``advantages`` are constants (from the linear baseline), standardised per task."""

    observations: torch.Tensor
    actions: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor
    log_probs: torch.Tensor
    """Log-probabilities under the policy that collected them (the PPO ratio's denominator)."""

    def select(self, tasks: torch.Tensor) -> TaskBatch:
        return TaskBatch(*(getattr(self, f)[tasks] for f in self.__dataclass_fields__))


def policy_gradient_loss(
    params: Params, stats: Params, observations: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor, mask
) -> torch.Tensor:
    """REINFORCE with a baseline: ``−mean(log π(a|s) · Â)`` over the real steps (the inner loss)."""
    return -masked_mean(mlp_log_prob(params, stats, observations, actions) * advantages, mask)


def adapt_policy(
    params: Params,
    stats: Params,
    supports: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]],
    step_size: float | torch.Tensor,
    first_order: bool,
) -> Params:
    """One policy-gradient step per support batch ``(obs, actions, advantages, mask)`` of one task.

    Pure and ``vmap``-able over tasks (``torch.func.grad``). The result stays differentiable
    with respect to ``params`` through the gradients (second order) unless ``first_order``.
    """
    grad_fn = torch.func.grad(policy_gradient_loss)
    adapted = dict(params)
    for observations, actions, advantages, mask in supports:
        grads = grad_fn(adapted, stats, observations, actions, advantages, mask)
        if first_order:
            grads = {k: g.detach() for k, g in grads.items()}
        adapted = {k: adapted[k] - step_size * grads[k] for k in adapted}
    return adapted


def adapt_tasks(task_params: Params, stats: Params, batch: TaskBatch, step_size: float) -> Params:
    """One inner step for each task of ``batch`` from its own parameters ``(K, ...)``, for sampling
    (no graph is kept: the outer loss recomputes the step from θ)."""
    with torch.no_grad():
        return torch.func.vmap(lambda p, o, a, adv, m: adapt_policy(p, stats, [(o, a, adv, m)], step_size, True))(
            task_params, batch.observations, batch.actions, batch.advantages, batch.mask
        )


class TaskBatchedMLPRunner:
    """Samples ``N`` environments per task, each task with its own (adapted) parameters ``(K, ...)``."""

    def __init__(self, task_params: Params, stats: Params, envs_per_task: int) -> None:
        self.task_params, self.stats, self.envs_per_task = task_params, stats, envs_per_task
        self._mean = torch.func.vmap(mlp_action_mean, in_dims=(0, None, 0))

    def reset(self, num_envs: int) -> None:
        """Stateless: nothing carries over between steps."""

    def step(self, obs, prev_action, prev_reward, prev_done):
        tasks = self.task_params["log_std"].shape[0]
        mean = self._mean(self.task_params, self.stats, obs.view(tasks, self.envs_per_task, -1))
        log_std = self.task_params["log_std"].expand(tasks, self.envs_per_task, -1)
        return mean.reshape(obs.shape[0], -1), log_std.reshape(obs.shape[0], -1), torch.zeros(obs.shape[0])


def task_batch(rollouts: Rollouts, tasks: int, ppo: PPOConfig) -> TaskBatch:
    """Split lock-step rollouts of ``tasks × N`` environments (task-major) into per-task
    trajectories, with GAE advantages over a linear baseline fitted per task on its own data."""
    steps, num_envs = rollouts.rewards.shape
    per_task = num_envs // tasks

    def by_task(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(steps, tasks, per_task, *x.shape[2:]).transpose(0, 1)

    returns = by_task(discounted_returns(rollouts.rewards, rollouts.dones, ppo.gamma))
    observations, mask, episode_step = (
        by_task(rollouts.observations),
        by_task(rollouts.mask),
        by_task(rollouts.episode_step),
    )
    values = torch.stack(
        [fit_linear_baseline(observations[k], episode_step[k], returns[k], mask[k]) for k in range(tasks)]
    )
    advantages = generalized_advantages(
        rollouts.rewards,
        values.transpose(0, 1).reshape(steps, num_envs),
        torch.zeros(num_envs),
        rollouts.dones,
        ppo.gamma,
        ppo.gae_lambda,
    )
    advantages = by_task(advantages)
    if ppo.normalize_advantages:
        advantages = torch.stack([standardize(advantages[k], mask[k]) for k in range(tasks)])
    return TaskBatch(observations, by_task(rollouts.actions), advantages, mask, by_task(rollouts.log_probs))


def mean_episode_return(rollouts: Rollouts) -> float:
    """Average undiscounted return of the (one per environment) episodes of ``rollouts``."""
    return float(rollouts.episode_returns(1).mean())


def expand_to_tasks(params: Params, tasks: int) -> Params:
    """The same parameters for each of ``tasks`` tasks, as a ``(K, ...)`` batch (no copy)."""
    return {k: v.unsqueeze(0).expand(tasks, *v.shape) for k, v in params.items()}


def adaptation_returns(
    params: Params,
    stats: Params,
    backend: CollectionBackend,
    env: PolicyEnv,
    tasks: list,
    episodes_per_task: int,
    inner_steps: int,
    step_size: float,
    ppo: PPOConfig,
    seed: int,
    generator: torch.Generator,
    deterministic_scores: bool = False,
) -> np.ndarray:
    """Mean return per task after 0, 1, …, ``inner_steps`` policy-gradient steps ``(steps + 1, K)``.

    The test-time protocol of MAML's Fig. 4: each step samples ``episodes_per_task`` fresh
    episodes of the policy adapted so far, reports their return, and adapts on them.
    ``backend`` holds ``len(tasks) × episodes_per_task`` environments. With
    ``deterministic_scores`` the reported return is that of the Gaussian's mean action on the
    same resets instead (adaptation still learns from sampled episodes): on a torque-controlled
    robot the exploration noise alone costs tracking accuracy, and the robot runs the mean.
    """
    backend.set_tasks([task for task in tasks for _ in range(episodes_per_task)])
    task_params = expand_to_tasks(params, len(tasks))
    returns = []

    def mean_returns(rollouts: Rollouts) -> np.ndarray:
        return rollouts.episode_returns(1)[:, 0].reshape(len(tasks), episodes_per_task).mean(1).numpy()

    for step in range(inner_steps + 1):
        runner = TaskBatchedMLPRunner(task_params, stats, episodes_per_task)
        # Each step's episodes start from resets of their own (environment i of a round is reset
        # with its seed + i): a step is judged on references it has not adapted on.
        round_seed = seed + step * backend.num_envs
        sample = functools.partial(sample_rollouts, backend, runner, 1, env.max_episode_steps, round_seed, generator)
        adapting = step < inner_steps
        sampled = sample(env.action_low, env.action_high) if adapting or not deterministic_scores else None
        scored = sample(env.action_low, env.action_high, deterministic=True) if deterministic_scores else sampled
        returns.append(mean_returns(scored))
        if adapting:
            task_params = adapt_tasks(task_params, stats, task_batch(sampled, len(tasks), ppo), step_size)
    return np.stack(returns)


def train(
    config: MamlPPOConfig,
    run_dir: Path,
    resumed: tuple[TrainedPolicy, dict[str, Any]] | None,
    metrics: MetricsWriter,
) -> None:
    """Meta-train (or resume) ``config`` into ``run_dir``, checkpointing atomically every iteration."""
    env = PolicyEnv.of_run(config.env_id, config.to_dict())
    tasks_per_batch, per_task = config.meta_batch_size, config.episodes_per_task
    backend = env.backend(tasks_per_batch * per_task)
    eval_backend = env.backend(config.eval_tasks * per_task) if config.eval_interval else None
    held_out = held_out_tasks(env, config.eval_tasks, config.eval_split)
    shape = RecurrentPolicyShape(env.obs_dim, env.action_dim, config.hidden_size)

    # -- seeding, parameters, optimiser (or their resumed state) ----------------------------
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if resumed is None:
        params = init_mlp_policy(shape, generator, config.initial_log_std, config.action == "residual")
        stats = identity_stats(env.obs_dim)
        start_iteration, env_steps = 0, 0
        if config.normalize_observations:
            # Statistics of the initial policy on training tasks, fixed for the whole run (and
            # shipped with the checkpoint): the policy must see inputs normalised as in training.
            backend.set_tasks([t for t in env.sample_tasks(tasks_per_batch, rng, "train") for _ in range(per_task)])
            runner = TaskBatchedMLPRunner(expand_to_tasks(params, tasks_per_batch), stats, per_task)
            rollouts = sample_rollouts(
                backend, runner, 1, env.max_episode_steps, config.seed, generator, env.action_low, env.action_high
            )
            env_steps += rollouts.env_steps
            stats = observation_stats(rollouts.observations, rollouts.mask)
    else:
        policy, state = resumed
        params, stats = policy.params, policy.stats
        generator.set_state(state["torch_generator"])
        rng.bit_generator.state = state["numpy_rng"]
        start_iteration, env_steps = state["iteration"] + 1, state["env_steps"]
    params = {k: v.requires_grad_() for k, v in params.items()}
    # α is meta-learned in log space (it stays positive); a fixed α is the same tensor, untrained.
    log_inner_lr = (
        torch.tensor(math.log(config.inner_lr)) if resumed is None else resumed[1]["log_inner_lr"]
    ).requires_grad_(config.learn_inner_lr)
    meta_variables = list(params.values()) + ([log_inner_lr] if config.learn_inner_lr else [])
    optimizer = torch.optim.Adam(meta_variables, lr=config.ppo.learning_rate)
    if resumed is not None:
        optimizer.load_state_dict(resumed[1]["optimizer"])

    progress = tqdm(total=config.iterations, initial=start_iteration, desc=f"maml-ppo {config.name}", unit="it")
    for iteration in range(start_iteration, config.iterations):
        # -- sample tasks; support trajectories and the inner steps -----------------------
        tasks = env.sample_tasks(tasks_per_batch, rng, "train")
        backend.set_tasks([task for task in tasks for _ in range(per_task)])
        task_params = expand_to_tasks({k: v.detach() for k, v in params.items()}, tasks_per_batch)
        supports: list[TaskBatch] = []
        for step in range(config.inner_steps + 1):
            rollouts = sample_rollouts(
                backend,
                TaskBatchedMLPRunner(task_params, stats, per_task),
                1,
                env.max_episode_steps,
                # A round's environment i is reset with its seed + i: rounds are num_envs apart, so
                # the query never replays a support episode's reference.
                config.seed + (7919 * iteration + step + 1) * backend.num_envs,
                generator,
                env.action_low,
                env.action_high,
            )
            env_steps += rollouts.env_steps
            if step == 0:
                pre_update_return = mean_episode_return(rollouts)
            batch = task_batch(rollouts, tasks_per_batch, config.ppo)
            if step == config.inner_steps:
                query = batch  # the adapted policy's own trajectories
                break
            supports.append(batch)
            task_params = adapt_tasks(task_params, stats, batch, float(log_inner_lr.detach().exp()))
        query_return = mean_episode_return(rollouts)

        # -- outer loop: PPO on the query trajectories, through the inner steps ---------------
        objective = functools.partial(meta_objective, params, stats, supports, query, log_inner_lr, config)
        losses = ppo_update(meta_variables, optimizer, tasks_per_batch, objective, config.ppo, generator)

        # -- checkpoint, then metrics ----------------------------------------------------------
        policy = TrainedPolicy(
            algo="maml-ppo",
            env_id=config.env_id,
            shape=shape,
            params={k: v.detach().cpu() for k, v in params.items()},
            stats=stats,
            action_low=tuple(env.action_low.tolist()),
            action_high=tuple(env.action_high.tolist()),
            robot=env.robot,
            inner_step_size=float(log_inner_lr.detach().exp()),
            config=config.to_dict(),
        )
        iteration_metrics = {
            "charts/pre_update_return": pre_update_return,
            "charts/post_update_return": query_return,
            "charts/env_steps": env_steps,
            "charts/policy_std": float(torch.exp(params["log_std"].detach()).mean()),
            "charts/inner_lr": float(log_inner_lr.detach().exp()),
            **losses,
        }
        if eval_backend is not None:
            # Same columns every row: NaN where the held-out score was not taken this iteration.
            scored = np.full(config.inner_steps + 1, np.nan)
            if (iteration + 1) % config.eval_interval == 0 or iteration == config.iterations - 1:
                # The evaluation's own generator: scoring must not shift the training's noise stream.
                scored = adaptation_returns(
                    {k: v.detach() for k, v in params.items()},
                    stats,
                    eval_backend,
                    env,
                    held_out,
                    per_task,
                    config.inner_steps,
                    float(log_inner_lr.detach().exp()),
                    config.ppo,
                    HELD_OUT_SEED,
                    torch.Generator().manual_seed(0),
                    deterministic_scores=config.eval_deterministic,
                ).mean(axis=1)
            iteration_metrics["charts/heldout_episode_return"] = float(scored[-1])
            iteration_metrics["charts/heldout_pre_update_return"] = float(scored[0])
        metrics.log(iteration, iteration_metrics)
        save_policy_checkpoint(
            run_dir / CHECKPOINT_NAME,
            policy,
            {
                "iteration": iteration,
                "env_steps": env_steps,
                "log_inner_lr": log_inner_lr.detach().clone(),
                "optimizer": optimizer.state_dict(),
                "torch_generator": generator.get_state(),
                "numpy_rng": rng.bit_generator.state,
            },
        )
        progress.update(1)
        progress.set_postfix(pre=f"{pre_update_return:.1f}", post=f"{query_return:.1f}")
    progress.close()
    backend.close()
    if eval_backend is not None:
        eval_backend.close()
    env.close()


def meta_objective(
    params: Params,
    stats: Params,
    supports: list[TaskBatch],
    query: TaskBatch,
    log_step_size: torch.Tensor,
    config: MamlPPOConfig,
    tasks: torch.Tensor,
) -> PPOLoss:
    """The outer loss of the chosen ``tasks``: PPO's clipped objective of the policies adapted
    from ``params`` on their supports, on their query trajectories (vmapped over tasks)."""
    step_size = log_step_size.exp()
    chosen = query.select(tasks)
    support_tensors = [(s.observations[tasks], s.actions[tasks], s.advantages[tasks], s.mask[tasks]) for s in supports]

    def one_task(supports_of_task, observations, actions):
        adapted = adapt_policy(params, stats, supports_of_task, step_size, config.first_order)
        return mlp_log_prob(adapted, stats, observations, actions), gaussian_entropy(adapted["log_std"][0])

    log_prob, entropy = torch.func.vmap(one_task)(support_tensors, chosen.observations, chosen.actions)
    return ppo_loss(
        log_prob,
        chosen.log_probs,
        chosen.advantages,
        entropy[:, None, None].expand_as(log_prob),
        chosen.mask,
        config.ppo,
    )
