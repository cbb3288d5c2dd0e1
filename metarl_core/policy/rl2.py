"""RL² (Duan et al., 2016; Wang et al., 2016): a recurrent policy whose hidden state is the learner.

The GRU of ``recurrent_policy`` sees ``(observation, previous action, previous reward, previous
done)``. A *trial* is ``episodes_per_trial`` episodes of one task: the hidden state starts at zero
at the trial's start and is carried across its episode boundaries, so what the policy learnt
about the task in episode 1 is still there in episode 2. PPO maximises the return of whole
trials: GAE runs across episode boundaries and stops only at the trial's end, and every
minibatch re-runs the GRU over complete trials from a zero hidden state (back-propagation
through the whole trial).

Per iteration: ``trials_per_iteration`` training tasks, one trial each (one environment per
trial, lock-step), then ``ppo.epochs`` passes of PPO over minibatches of trials. Every
``eval_interval`` iterations the policy is scored on a fixed set of held-out tasks: the curve of
held-out return against environment steps is the sample-efficiency figure.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from metarl_core.policy.policy_checkpoint import TrainedPolicy, save_policy_checkpoint
from metarl_core.policy.ppo import (
    PPOConfig,
    PPOLoss,
    gaussian_entropy,
    gaussian_log_prob,
    generalized_advantages,
    ppo_loss,
    ppo_update,
    standardize,
    validate_ppo_config,
)
from metarl_core.policy.recurrent_policy import Params, RecurrentPolicyShape, init_recurrent_policy, recurrent_step
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
class RL2Config(RunConfig):
    """RL²: a GRU policy trained with PPO over trials of several episodes of one task."""

    algo: str = "rl2"
    """Which trainer reads this file (rl2 here)."""
    name: str = "point_nav_rl2"
    """Run name: the default run directory is runs/<name>."""
    env_id: str = "metarl/PointNavigation-v0"
    """Registered environment with the task API (sample_tasks, set_task)."""
    episode_duration_s: float = 0.0
    """Episode length for the robot tasks (s); 0 keeps the environment's registered length."""
    seed: int = 0
    """Seeds tasks, initialisation and action noise."""
    iterations: int = 300
    """PPO iterations (each: one trial on each of ``trials_per_iteration`` tasks, then the update)."""
    trials_per_iteration: int = 32
    """Trials per iteration, one training task and one environment each."""
    episodes_per_trial: int = 2
    """Episodes of one task the hidden state is carried across."""
    hidden_size: int = 64
    """GRU hidden units."""
    initial_log_std: float = -0.5
    """Initial log standard deviation of the Gaussian policy (normalised action units)."""
    normalize_observations: bool = False
    """Standardise observations with statistics of the initial policy's trials (fixed afterwards)."""
    action: str = "torque"
    """How the normalised action reaches the robot: ``torque`` scales it to the effort limits;
    ``residual`` adds a correction of at most ``residual_torque_fraction`` of them to the nominal
    computed-torque controller (Panda only), and the policy also sees the tracking error."""
    residual_torque_fraction: float = 0.1
    """``action: residual``: the largest correction, as a fraction of each joint's effort limit."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this for the value targets and advantages (the policy input is unscaled)."""
    eval_interval: int = 0
    """Score the policy on held-out tasks every this many iterations, and after the last; 0: never."""
    eval_split: str = "interp"
    """Split of the held-out tasks."""
    eval_trials: int = 16
    """Held-out tasks (one trial each) in each score."""
    eval_deterministic: bool = False
    """Score with the Gaussian's mean action instead of a sampled one (for torque-controlled robots,
    where the exploration noise alone costs tracking accuracy)."""
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(learning_rate=1e-3, epochs=4, minibatches=4))
    """PPO over trials (minibatches are sets of whole trials)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RL2Config:
        config = config_from_dict(cls, data, source)
        require_own_algo(config, source, "rl2")
        require_at_least(
            config, source, 1, "iterations", "trials_per_iteration", "episodes_per_trial", "hidden_size", "eval_trials"
        )
        require_at_least(config, source, 0, "eval_interval", "episode_duration_s", "seed")
        if config.reward_scale <= 0:
            raise ValueError(f"{source}: field 'reward_scale'={config.reward_scale} must be > 0")
        if config.eval_split not in SPLITS:
            raise ValueError(f"{source}: field 'eval_split'={config.eval_split!r} must be one of {SPLITS}")
        validate_action_mode(config, source)
        validate_ppo_config(config.ppo, source)
        return config


class RecurrentRunner:
    """Drives ``recurrent_step`` for the sampler; the hidden state is zeroed at each trial start only.

    ``carry_hidden=False`` is the ablation that shows what the carried state is worth: every
    episode then starts as a trial's first does (zero hidden state, and zero previous action,
    reward and done), so nothing learnt survives an episode.
    """

    def __init__(self, params: Params, stats: Params, carry_hidden: bool = True) -> None:
        self.params, self.stats, self.carry_hidden = params, stats, carry_hidden
        self.hidden = torch.zeros(0)

    def reset(self, num_envs: int) -> None:
        self.hidden = torch.zeros(num_envs, self.params["gru_hidden_weight"].shape[0])

    def step(self, obs, prev_action, prev_reward, prev_done):
        if not self.carry_hidden:
            keep = 1.0 - prev_done
            self.hidden, prev_action, prev_reward, prev_done = (
                self.hidden * keep,
                prev_action * keep,
                prev_reward * keep,
                prev_done * keep,
            )
        mean, value, self.hidden = recurrent_step(
            self.params, self.stats, obs, prev_action, prev_reward, prev_done, self.hidden
        )
        return mean, self.params["log_std"], value[:, 0]


def trial_forward(params: Params, stats: Params, rollouts: Rollouts) -> tuple[torch.Tensor, torch.Tensor]:
    """Action means ``(T, B, A)`` and values ``(T, B)`` of whole trials, the GRU run from a zero
    hidden state with exactly the inputs the sampler fed it."""
    prev_action, prev_reward, prev_done = rollouts.previous_inputs()
    hidden = torch.zeros(rollouts.observations.shape[1], params["gru_hidden_weight"].shape[0])
    means, values = [], []
    for t in range(rollouts.observations.shape[0]):
        mean, value, hidden = recurrent_step(
            params, stats, rollouts.observations[t], prev_action[t], prev_reward[t], prev_done[t], hidden
        )
        means.append(mean)
        values.append(value[:, 0])
    return torch.stack(means), torch.stack(values)


def select_trials(rollouts: Rollouts, trials: torch.Tensor) -> Rollouts:
    """The columns ``trials`` of time-major rollouts."""
    return Rollouts(*(getattr(rollouts, f)[:, trials] for f in rollouts.__dataclass_fields__))


def trial_advantages(
    rollouts: Rollouts, episodes_per_trial: int, config: RL2Config
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE advantages and value targets over whole trials: the only 'done' is the trial's end."""
    trial_end = rollouts.dones & (rollouts.episode_index == episodes_per_trial - 1)
    advantages = generalized_advantages(
        rollouts.rewards * config.reward_scale,
        rollouts.values,
        torch.zeros(rollouts.rewards.shape[1]),
        trial_end,
        config.ppo.gamma,
        config.ppo.gae_lambda,
    )
    return advantages, advantages + rollouts.values


def trial_objective(
    params: Params,
    stats: Params,
    rollouts: Rollouts,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    config: PPOConfig,
    trials: torch.Tensor,
) -> PPOLoss:
    """PPO loss (clipped surrogate, value MSE, entropy) of the chosen ``trials``."""
    chosen = select_trials(rollouts, trials)
    means, values = trial_forward(params, stats, chosen)
    log_std = params["log_std"][0]
    log_prob = gaussian_log_prob(means, log_std, chosen.actions)
    chosen_advantages = advantages[:, trials]
    if config.normalize_advantages:
        chosen_advantages = standardize(chosen_advantages, chosen.mask)
    return ppo_loss(
        log_prob,
        chosen.log_probs,
        chosen_advantages,
        gaussian_entropy(log_std).expand_as(log_prob),
        chosen.mask,
        config,
        values=values,
        returns=returns[:, trials],
    )


def run_trials(
    params: Params,
    stats: Params,
    backend: CollectionBackend,
    env: PolicyEnv,
    tasks: list,
    episodes_per_trial: int,
    seed: int,
    generator: torch.Generator,
    carry_hidden: bool = True,
    deterministic: bool = False,
) -> Rollouts:
    """One trial per task (``backend`` holds ``len(tasks)`` environments), hidden state zeroed at
    its start (and at every episode start when not ``carry_hidden``)."""
    backend.set_tasks(tasks)
    return sample_rollouts(
        backend,
        RecurrentRunner(params, stats, carry_hidden),
        episodes_per_trial,
        episodes_per_trial * env.max_episode_steps,
        seed,
        generator,
        env.action_low,
        env.action_high,
        deterministic,
    )


def train(
    config: RL2Config,
    run_dir: Path,
    resumed: tuple[TrainedPolicy, dict[str, Any]] | None,
    metrics: MetricsWriter,
) -> None:
    """Train (or resume) ``config`` into ``run_dir``, checkpointing atomically every iteration."""
    env = PolicyEnv.of_run(config.env_id, config.to_dict())
    trials, episodes = config.trials_per_iteration, config.episodes_per_trial
    backend = env.backend(trials)
    eval_backend = env.backend(config.eval_trials) if config.eval_interval else None
    shape = RecurrentPolicyShape(env.obs_dim, env.action_dim, config.hidden_size)

    # -- seeding, held-out tasks, parameters, optimiser (or their resumed state) --------------
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    held_out = held_out_tasks(env, config.eval_trials, config.eval_split)
    if resumed is None:
        params = init_recurrent_policy(shape, generator, config.initial_log_std, config.action == "residual")
        stats = identity_stats(env.obs_dim)
        start_iteration, env_steps = 0, 0
        if config.normalize_observations:
            # Statistics of the initial policy on training tasks, fixed for the whole run and
            # shipped with the checkpoint: the robot must normalise exactly as training did.
            rollouts = run_trials(
                params, stats, backend, env, env.sample_tasks(trials, rng, "train"), episodes, config.seed, generator
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
    optimizer = torch.optim.Adam(list(params.values()), lr=config.ppo.learning_rate)
    if resumed is not None:
        optimizer.load_state_dict(resumed[1]["optimizer"])

    progress = tqdm(total=config.iterations, initial=start_iteration, desc=f"rl2 {config.name}", unit="it")
    for iteration in range(start_iteration, config.iterations):
        # -- one trial on each of a batch of training tasks ------------------------------------
        detached = {k: v.detach() for k, v in params.items()}
        tasks = env.sample_tasks(trials, rng, "train")
        rollouts = run_trials(detached, stats, backend, env, tasks, episodes, config.seed + 7919 * iteration, generator)
        env_steps += rollouts.env_steps
        episode_returns = rollouts.episode_returns(episodes).mean(0)

        # -- PPO over whole trials --------------------------------------------------------------
        advantages, returns = trial_advantages(rollouts, episodes, config)
        objective = functools.partial(trial_objective, params, stats, rollouts, advantages, returns, config.ppo)
        losses = ppo_update(list(params.values()), optimizer, trials, objective, config.ppo, generator)

        # -- held-out score, metrics, then the checkpoint (a resume drops rows past it) -----------
        iteration_metrics = {
            "charts/trial_return": float(episode_returns.sum()),
            **{f"charts/episode_{k + 1}_return": float(episode_returns[k]) for k in range(episodes)},
            "charts/env_steps": env_steps,
            "charts/policy_std": float(torch.exp(params["log_std"].detach()).mean()),
            **losses,
        }
        if eval_backend is not None:
            # Same columns every row: NaN where the held-out score was not taken this iteration.
            scored = torch.full((1, episodes), float("nan"))
            if (iteration + 1) % config.eval_interval == 0 or iteration == config.iterations - 1:
                # The evaluation's own generator: scoring must not shift the training's noise stream.
                scored = run_trials(
                    detached,
                    stats,
                    eval_backend,
                    env,
                    held_out,
                    episodes,
                    HELD_OUT_SEED,
                    torch.Generator().manual_seed(0),
                    deterministic=config.eval_deterministic,
                ).episode_returns(episodes)
            iteration_metrics["charts/heldout_episode_return"] = float(scored.mean())
            for k in range(episodes):
                iteration_metrics[f"charts/heldout_episode_{k + 1}_return"] = float(scored[:, k].mean())
        metrics.log(iteration, iteration_metrics)
        save_policy_checkpoint(
            run_dir / CHECKPOINT_NAME,
            TrainedPolicy(
                algo="rl2",
                env_id=config.env_id,
                shape=shape,
                params={k: v.detach().cpu() for k, v in params.items()},
                stats=stats,
                action_low=tuple(env.action_low.tolist()),
                action_high=tuple(env.action_high.tolist()),
                robot=env.robot,
                episodes_per_trial=episodes,
                config=config.to_dict(),
            ),
            {
                "iteration": iteration,
                "env_steps": env_steps,
                "optimizer": optimizer.state_dict(),
                "torch_generator": generator.get_state(),
                "numpy_rng": rng.bit_generator.state,
            },
        )
        progress.update(1)
        progress.set_postfix(first=f"{episode_returns[0]:.1f}", last=f"{episode_returns[-1]:.1f}")
    progress.close()
    backend.close()
    if eval_backend is not None:
        eval_backend.close()
    env.close()
