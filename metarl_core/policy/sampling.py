"""Lock-step collection of whole episodes for both policy-based meta-learners.

One sampler serves MAML-PPO (one episode per environment, many environments per task) and RL²
(one trial of several episodes per environment, the hidden state carried across them): a
``PolicyRunner`` maps ``(obs, previous action, previous reward, previous done)`` to the Gaussian's
mean and log-std and a value, and keeps whatever state it has between steps. Environments run in
a ``sim.vector_collection`` backend, which auto-resets an environment in the step that ends its
episode; an environment that has finished its quota of episodes keeps stepping (lock-step) but
its steps are masked out and never counted as experience.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import sim  # noqa: F401  (registers the environment ids)
from metarl_core.policy.ppo import gaussian_log_prob
from metarl_core.policy.recurrent_policy import scale_action
from metarl_core.policy.residual_env import make_policy_env
from metarl_runtime.residual_action import ACTION_MODES
from sim.robot_description import RobotDescription
from sim.tasks import Task
from sim.vector_collection import CollectionBackend, GymVectorBackend


class PolicyRunner(Protocol):
    """A policy as the sampler drives it, one batched step at a time."""

    def reset(self, num_envs: int) -> None:
        """Start of a batch of episodes (for RL²: of a trial): clear any carried state."""
        ...

    def step(
        self, obs: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor, prev_done: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(action mean (B, A), log_std (B, A) or (1, A), value (B,))`` for this step."""
        ...


@dataclass
class Rollouts:
    """Time-major experience ``(T, B, ...)`` of ``B`` environments; ``mask`` marks real steps."""

    observations: torch.Tensor
    actions: torch.Tensor
    """Normalised actions as sampled (before clipping): the ones their log-probabilities are of."""
    rewards: torch.Tensor
    dones: torch.Tensor
    """True where a step ends an episode (terminated or truncated)."""
    mask: torch.Tensor
    """1.0 for steps inside the environment's quota of episodes, 0.0 for lock-step filler."""
    log_probs: torch.Tensor
    values: torch.Tensor
    episode_index: torch.Tensor
    """Which episode of its environment's batch (of the trial, for RL²) each step belongs to."""
    episode_step: torch.Tensor
    """Steps since the episode began (0 at its first step)."""

    @property
    def env_steps(self) -> int:
        """Environment steps of real experience (filler excluded)."""
        return int(self.mask.sum().item())

    def episode_returns(self, episodes: int) -> torch.Tensor:
        """Undiscounted return of each episode ``(B, episodes)``."""
        one_hot = torch.nn.functional.one_hot(self.episode_index.clamp_max(episodes - 1), episodes)
        return ((self.rewards * self.mask).unsqueeze(-1) * one_hot).sum(0)

    def previous_inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What the policy saw besides the observation at each step: the previous (clipped)
        action, reward and done flag, zero at the first step. Exactly what the sampler fed."""
        prev_action = torch.zeros_like(self.actions)
        prev_action[1:] = self.actions[:-1].clamp(-1.0, 1.0)
        prev_reward = torch.zeros_like(self.rewards)
        prev_reward[1:] = self.rewards[:-1]
        prev_done = torch.zeros_like(self.rewards)
        prev_done[1:] = self.dones[:-1].to(self.rewards.dtype)
        return prev_action, prev_reward.unsqueeze(-1), prev_done.unsqueeze(-1)


def sample_rollouts(
    backend: CollectionBackend,
    runner: PolicyRunner,
    episodes_per_env: int,
    max_steps: int,
    seed: int,
    generator: torch.Generator,
    action_low: np.ndarray,
    action_high: np.ndarray,
    deterministic: bool = False,
) -> Rollouts:
    """Run every environment of ``backend`` for ``episodes_per_env`` episodes under ``runner``.

    The backend must already hold its tasks (``set_tasks``). Stops once every environment has
    finished its episodes, or after ``max_steps`` lock-step steps (a longer episode is cut there
    and its last step marked done). Action noise comes from ``generator`` (none when
    ``deterministic``: the Gaussian's mean is applied, for scoring); environment resets are
    seeded with ``seed + i`` for environment ``i``.
    """
    obs_np = backend.reset(seed)
    num_envs = backend.num_envs
    runner.reset(num_envs)
    finished = np.zeros(num_envs, dtype=np.int64)
    episode_step = np.zeros(num_envs, dtype=np.int64)
    obs = torch.as_tensor(obs_np, dtype=torch.float32)
    prev_action = torch.zeros(num_envs, len(action_low))
    prev_reward = torch.zeros(num_envs, 1)
    prev_done = torch.zeros(num_envs, 1)
    columns: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("observations", "actions", "rewards", "dones", "mask", "log_probs", "values", "index", "step")
    }
    with torch.no_grad():
        for t in range(max_steps):
            active = finished < episodes_per_env
            if not active.any():
                break
            mean, log_std, value = runner.step(obs, prev_action, prev_reward, prev_done)
            noise = torch.zeros(mean.shape) if deterministic else torch.randn(mean.shape, generator=generator)
            action = mean + torch.exp(log_std) * noise
            clipped = action.clamp(-1.0, 1.0)
            env_action = scale_action(clipped.numpy().astype(np.float64), action_low, action_high)
            next_obs, reward, terminated, truncated, _ = backend.step(env_action.astype(np.float32))
            done = np.logical_or(terminated, truncated)
            if t == max_steps - 1:
                done = np.ones_like(done)
            columns["observations"].append(obs)
            columns["actions"].append(action)
            columns["rewards"].append(torch.as_tensor(reward, dtype=torch.float32))
            columns["dones"].append(torch.as_tensor(done))
            columns["mask"].append(torch.as_tensor(active, dtype=torch.float32))
            columns["log_probs"].append(gaussian_log_prob(mean, log_std, action))
            columns["values"].append(value)
            columns["index"].append(torch.as_tensor(finished.copy()))
            columns["step"].append(torch.as_tensor(episode_step.copy()))
            finished += done
            episode_step = np.where(done, 0, episode_step + 1)
            obs = torch.as_tensor(next_obs, dtype=torch.float32)
            prev_action = clipped
            prev_reward = torch.as_tensor(reward, dtype=torch.float32).unsqueeze(-1)
            prev_done = torch.as_tensor(done, dtype=torch.float32).unsqueeze(-1)
    stacked = {k: torch.stack(v) for k, v in columns.items()}
    return Rollouts(
        observations=stacked["observations"],
        actions=stacked["actions"],
        rewards=stacked["rewards"],
        dones=stacked["dones"],
        mask=stacked["mask"],
        log_probs=stacked["log_probs"],
        values=stacked["values"],
        episode_index=stacked["index"],
        episode_step=stacked["step"],
    )


class PolicyEnv:
    """What a policy learner needs of an environment id: its spaces, time limit and robot, read
    from one instance that stays open to draw tasks from (``sample_tasks``).

    ``action`` is how the policy's normalised action reaches the robot (``ACTION_MODES``): scaled
    to the effort limits (``torque``), or a correction of at most ``residual_torque_fraction`` of
    them over the nominal controller (``residual``, ``metarl_core.policy.residual_env``), whose
    spaces are then the wrapper's ([-1, 1] actions, observations with the tracking error).
    """

    def __init__(
        self, env_id: str, episode_duration_s: float, action: str = "torque", residual_torque_fraction: float = 0.1
    ) -> None:
        """``episode_duration_s`` of 0 keeps the registered episode length."""
        if action not in ACTION_MODES:
            raise ValueError(f"action={action!r} must be one of {ACTION_MODES}")
        self.env_id = env_id
        self.env_kwargs: dict[str, Any] = {"episode_duration_s": episode_duration_s} if episode_duration_s > 0 else {}
        self._factory = functools.partial(make_policy_env, env_id, action, residual_torque_fraction, **self.env_kwargs)
        self._env = self._factory()
        self.obs_dim = int(self._env.observation_space.shape[0])
        self.action_dim = int(self._env.action_space.shape[0])
        self.action_low = np.asarray(self._env.action_space.low, dtype=np.float64)
        self.action_high = np.asarray(self._env.action_space.high, dtype=np.float64)
        self.max_episode_steps = int(self._env.unwrapped.max_episode_steps)
        self.robot: RobotDescription | None = getattr(self._env.unwrapped, "robot", None)
        """The robot of a suite task (exported with RL² bundles); None for the point."""

    @classmethod
    def of_run(cls, env_id: str, config: dict[str, Any]) -> PolicyEnv:
        """The environment a run of ``config`` (its ``to_dict()``, as a checkpoint stores it) trained in."""
        return cls(
            env_id,
            config.get("episode_duration_s", 0.0),
            config.get("action", "torque"),
            config.get("residual_torque_fraction", 0.1),
        )

    def sample_tasks(self, n: int, rng: np.random.Generator, split: str) -> list[Task]:
        """``n`` tasks of ``split``, through the environment's own task API."""
        return self._env.unwrapped.sample_tasks(n, rng, split)

    def backend(self, num_envs: int) -> CollectionBackend:
        """``num_envs`` in-process environments: policy steps are batched across them, and on a
        two-core machine worker processes would only compete with the learner."""
        return GymVectorBackend(SyncVectorEnv([self._factory] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP))

    def close(self) -> None:
        self._env.close()


HELD_OUT_SEED = 1_000_003
"""Seeds the held-out tasks scored during training, and their episodes' resets."""


def held_out_tasks(env: PolicyEnv, count: int, split: str) -> list[Task]:
    """The fixed held-out tasks of the training-time score, the same whatever the training seed
    or algorithm, so that the scores of seeds, of RL² and MAML-PPO, and of other controllers are
    taken on the same tasks (their episodes' resets follow each algorithm's own protocol)."""
    return env.sample_tasks(count, np.random.default_rng(HELD_OUT_SEED), split)


def identity_stats(obs_dim: int) -> dict[str, torch.Tensor]:
    """Observation statistics that leave observations as they are."""
    return {"obs_mean": torch.zeros(1, obs_dim), "obs_std": torch.ones(1, obs_dim)}


def observation_stats(observations: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean and std ``(1, O)`` of the masked observations (std floored at 1e-2 so a constant
    entry does not blow up)."""
    flat = observations.reshape(-1, observations.shape[-1])[mask.reshape(-1) > 0]
    return {"obs_mean": flat.mean(0, keepdim=True), "obs_std": flat.std(0, keepdim=True).clamp_min(1e-2)}


def validate_action_mode(config: Any, source: str) -> None:
    """Both learners' ``action`` and ``residual_torque_fraction`` fields, named in the error."""
    if config.action not in ACTION_MODES:
        raise ValueError(f"{source}: field 'action'={config.action!r} must be one of {ACTION_MODES}")
    if not 0.0 < config.residual_torque_fraction <= 1.0:
        raise ValueError(
            f"{source}: field 'residual_torque_fraction'={config.residual_torque_fraction} must be in (0, 1]"
        )
