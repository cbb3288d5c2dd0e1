"""``metarl eval`` for policy runs: how well a meta-trained policy adapts on held-out tasks.

- MAML-PPO: the average return after 0, 1, 2 and 3 policy-gradient steps, each on fresh episodes
  of the policy adapted so far (the test protocol of MAML's Fig. 4).
- RL²: the average return of each episode of a trial (hidden state carried across them): an RL²
  policy that learns within the trial does better in its later episodes than in its first.

Every figure is a mean ± std over evaluation seeds (each seed draws its own held-out tasks and
action noise). Writes ``eval_<split>.md`` and ``eval_<split>.png`` into the run, as the
model-based ``metarl eval`` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from metarl_core.policy.maml_ppo import MamlPPOConfig, adaptation_returns
from metarl_core.policy.policy_checkpoint import TrainedPolicy, load_policy_checkpoint
from metarl_core.policy.rl2 import run_trials
from metarl_core.policy.sampling import PolicyEnv

MAML_EVAL_TASKS = 40
"""Held-out tasks per seed for MAML-PPO (each with the run's ``episodes_per_task`` episodes per step)."""
MAML_EVAL_STEPS = 3
RL2_EVAL_TRIALS = 32
"""Held-out tasks per seed for RL², one trial each."""


def _evaluation_streams(seed: int) -> tuple[np.random.Generator, int, torch.Generator]:
    """What evaluation seed ``seed`` draws from: the held-out tasks, the environments' reset seed
    and the action noise. Apart from training's streams, and the same for every policy scored
    under that seed, so two policies meet the same tasks."""
    return np.random.default_rng(10_000 + seed), 20_000 + 1000 * seed, torch.Generator().manual_seed(30_000 + seed)


def maml_adaptation_curve(
    policy: TrainedPolicy, split: str, seed: int, tasks: int = MAML_EVAL_TASKS, episodes_per_task: int = 0
) -> np.ndarray:
    """Mean held-out return after 0..``MAML_EVAL_STEPS`` inner steps ``(steps + 1,)`` for one seed,
    each step on ``episodes_per_task`` episodes (0: the run's own ``episodes_per_task``; give two
    runs the same number to compare them on the same adaptation data). Scored with the mean
    action where the run's config says ``eval_deterministic``."""
    config = MamlPPOConfig.from_dict(policy.config)
    episodes = episodes_per_task or config.episodes_per_task
    env = PolicyEnv.of_run(policy.env_id, policy.config)
    task_rng, reset_seed, noise = _evaluation_streams(seed)
    held_out = env.sample_tasks(tasks, task_rng, split)
    backend = env.backend(tasks * episodes)
    try:
        returns = adaptation_returns(
            policy.params,
            policy.stats,
            backend,
            env,
            held_out,
            episodes,
            MAML_EVAL_STEPS,
            policy.inner_step_size,
            config.ppo,
            seed=reset_seed,
            generator=noise,
            deterministic_scores=config.eval_deterministic,
        )
    finally:
        backend.close()
        env.close()
    return returns.mean(axis=1)


def rl2_episode_returns(
    policy: TrainedPolicy,
    split: str,
    seed: int,
    trials: int = RL2_EVAL_TRIALS,
    carry_hidden: bool = True,
    episodes: int = 0,
) -> np.ndarray:
    """Mean held-out return of each episode of a trial ``(episodes,)`` for one seed; ``episodes``
    of 0 is the trial length the policy was trained with, a longer one asks whether it keeps
    improving. ``carry_hidden=False`` is the ablation in which every episode starts as a trial's
    first. Actions are the Gaussian's mean where the run's config says ``eval_deterministic``
    (as its training-time score and the robot do), sampled otherwise."""
    episodes = episodes or policy.episodes_per_trial
    env = PolicyEnv.of_run(policy.env_id, policy.config)
    task_rng, reset_seed, noise = _evaluation_streams(seed)
    held_out = env.sample_tasks(trials, task_rng, split)
    backend = env.backend(trials)
    try:
        rollouts = run_trials(
            policy.params,
            policy.stats,
            backend,
            env,
            held_out,
            episodes,
            seed=reset_seed,
            generator=noise,
            carry_hidden=carry_hidden,
            deterministic=policy.config.get("eval_deterministic", False),
        )
    finally:
        backend.close()
        env.close()
    return rollouts.episode_returns(episodes).mean(0).numpy()


def run_evaluation(run_dir: Path, split: str, seeds: int) -> Path:
    """Evaluate ``run_dir`` on ``split`` over ``seeds`` seeds; write and return a markdown table."""
    torch.set_num_threads(1)
    run_dir = Path(run_dir)
    policy, _ = load_policy_checkpoint(run_dir)
    command = f"metarl eval --run {run_dir} --split {split} --seeds {seeds}"
    actions = "mean action" if policy.config.get("eval_deterministic", False) else "actions sampled"
    if policy.algo == "maml-ppo":
        curves = np.stack([maml_adaptation_curve(policy, split, seed) for seed in range(seeds)])
        labels = [f"{k} step{'s' if k != 1 else ''}" for k in range(curves.shape[1])]
        what = (
            f"average return on {MAML_EVAL_TASKS} held-out tasks per seed after k policy-gradient steps "
            f"(step size {policy.inner_step_size:g}), each on {policy.config['episodes_per_task']} fresh episodes"
        )
        header, x_label = "| inner steps | average return |", "policy-gradient steps"
    else:
        curves = np.stack([rl2_episode_returns(policy, split, seed) for seed in range(seeds)])
        labels = [f"episode {k + 1}" for k in range(curves.shape[1])]
        what = f"average return of each episode of a trial on {RL2_EVAL_TRIALS} held-out tasks per seed"
        header, x_label = "| episode of the trial | average return |", "episode of the trial"
    lines = [
        f"## Evaluation of `{run_dir}` ({policy.algo}, {policy.env_id}) on the {split} split "
        f"({seeds} seeds, mean ± std)",
        "",
        f"Command: `{command}`; {what} ({actions}).",
        "",
        header,
        "|---|---|",
        *(f"| {label} | {curves[:, k].mean():.2f} ± {curves[:, k].std():.2f} |" for k, label in enumerate(labels)),
    ]
    table = run_dir / f"eval_{split}.md"
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    plot_curves(
        {policy.algo: curves}, x_label, run_dir / f"eval_{split}.png", first_x=0 if policy.algo == "maml-ppo" else 1
    )
    return table


def plot_curves(curves: dict[str, np.ndarray], x_label: str, path: Path, first_x: int = 0, title: str = "") -> None:
    """Mean ± std (over the seeds, axis 0) of each named curve against its index."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 4))
    for name, values in curves.items():
        x = np.arange(first_x, first_x + values.shape[1])
        mean, std = values.mean(0), values.std(0)
        axis.errorbar(x, mean, yerr=std, marker="o", capsize=4, label=name)
    axis.set_xticks(np.arange(first_x, first_x + max(v.shape[1] for v in curves.values())))
    axis.set_xlabel(x_label)
    axis.set_ylabel("average return")
    if title:
        axis.set_title(title)
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
