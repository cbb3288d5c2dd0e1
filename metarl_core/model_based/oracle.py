"""The oracle baseline: a dynamics model trained on the very task it is evaluated on.

Why "trained on the task" rather than "conditioned on the true task parameters": the held-out
tasks of the extrapolation split lie *outside* the training ranges (heavier payloads, stiffer
joints), so a model that takes the task parameters as input would have to extrapolate in its
input, which makes it no upper bound at all. A model fitted to plenty of the task's own data
knows the task without extrapolating, and it keeps the network, normaliser and planner of the
method unchanged, so the control comparison differs in the parameters only.

How: start from the MB parameters (already a good model of the robot) and fine-tune all of them
with Adam, cosine-annealed, on ``episodes`` exploration episodes of the task (tens of times the
adaptive model's window), keeping the parameters with the lowest loss on separate validation
episodes. The data come from their own reset and noise seeds, so an oracle never sees the
evaluation windows it is scored on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from metarl_core.model_based.dynamics_model import Params, window_loss
from metarl_core.model_based.exploration import exploration_controller
from metarl_core.model_based.replay_buffer import TaskReplayBuffer
from metarl_core.model_based.train import collect_episodes


@dataclass(frozen=True)
class OracleSettings:
    """How much of a task's data the oracle gets, and how long it is trained on it."""

    episodes: int = 32
    """Exploration episodes of the task to fit on (32 × 4 s = 12 800 transitions on the Panda)."""
    validation_episodes: int = 2
    """Further episodes, other reference trajectories, that pick the best parameters."""
    steps: int = 8000
    """Adam steps; the learning rate is cosine-annealed over them to 1 % of its start."""
    learning_rate: float = 1e-3
    """Initial Adam step size."""
    batch_size: int = 256
    """Transitions per Adam step."""
    validate_every: int = 200
    """Steps between validation losses (the best validated parameters are returned)."""

    def __post_init__(self) -> None:
        for name in ("episodes", "validation_episodes", "steps", "batch_size", "validate_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"OracleSettings.{name}={getattr(self, name)} must be >= 1")
        if not self.learning_rate > 0:
            raise ValueError(f"OracleSettings.learning_rate={self.learning_rate} must be > 0")


def fit_oracle(
    start: Params,
    train: TaskReplayBuffer,
    validation: TaskReplayBuffer,
    stats: dict[str, torch.Tensor],
    settings: OracleSettings,
    seed: int,
) -> tuple[Params, float]:
    """Fine-tune ``start`` on ``train``'s transitions; return the parameters with the lowest
    ``validation`` loss seen (``start`` itself included) and that loss.

    Keeping the best validated parameters makes the fit safe to run long: it converges on the
    training data without ever returning a model that has begun to overfit it.
    """
    generator = torch.Generator().manual_seed(seed)
    data = tuple(torch.from_numpy(x) for x in train.all_transitions())
    held_out = tuple(torch.from_numpy(x) for x in validation.all_transitions())
    params = {k: v.detach().clone().requires_grad_() for k, v in start.items()}
    optimizer = torch.optim.Adam(list(params.values()), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=settings.steps, eta_min=0.01 * settings.learning_rate
    )

    def validated() -> float:
        with torch.no_grad():
            return float(window_loss(params, *held_out, stats))

    best_loss, best = validated(), {k: v.detach().clone() for k, v in params.items()}
    for step in range(1, settings.steps + 1):
        batch = torch.randint(len(data[0]), (settings.batch_size,), generator=generator)
        loss = window_loss(params, *(x[batch] for x in data), stats)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % settings.validate_every == 0 or step == settings.steps:
            current = validated()
            if current < best_loss:
                best_loss, best = current, {k: v.detach().clone() for k, v in params.items()}
    return best, best_loss


def train_task_oracle(
    env: Any,
    task: Any,
    robot_name: str,
    mb_params: Params,
    stats: dict[str, torch.Tensor],
    noise_fraction: float,
    settings: OracleSettings,
    seed: int,
) -> Params:
    """Collect the task's own exploration data (reset seeds ``seed``, ``seed + 1``, ...) and fit
    the oracle on it from the MB parameters.

    ``seed`` must keep the data apart from the evaluation's windows: the caller picks it from a
    range its evaluation episodes never use.
    """
    robot = env.unwrapped.robot
    train = TaskReplayBuffer(robot.state_dim, robot.action_dim)
    validation = TaskReplayBuffer(robot.state_dim, robot.action_dim)
    explorer = exploration_controller(robot_name, noise_fraction, seed)
    collect_episodes(env, task, explorer, settings.episodes, seed, train)
    collect_episodes(env, task, explorer, settings.validation_episodes, seed + settings.episodes, validation)
    params, _ = fit_oracle(mb_params, train, validation, stats, settings, seed)
    return params
