"""``metarl bench policy``: the evidence for the policy-based meta-learners, one experiment per call.

- ``--experiment maml-nav``: MAML-PPO on 2-D navigation against the paper's *pretrained* baseline
  (the same policy and PPO, trained on all goals without an inner step, on as many environment
  steps), both fine-tuned on held-out goals with 0–3 policy-gradient steps (MAML's Fig. 4).
- ``--experiment rl2-nav``: RL² on 2-D navigation: the return of each episode of a trial on
  held-out goals, and the same policy starting every episode as a trial's first (the ablation
  that shows the rise comes from what the hidden state carries).
- ``--experiment robot``: RL² and MAML-PPO on the Panda payload task: their held-out return
  against environment steps, and the steps each needs to reach the scores of the model-based mode
  (GrBAL's adaptive MPC, ``configs/panda.yaml``) and of the fixed nominal controller on the same
  held-out tasks.

Each experiment trains one run per seed under ``runs/bench_policy/<experiment>/`` (a run a
previous call finished is reused, one it left unfinished is resumed, so a long experiment can be
run in pieces), evaluates, and stores its figures in ``docs/benchmarks/policy_<experiment>.json``
and ``docs/images/policy_<experiment>.png``. The ``policy`` section of BENCHMARKS.md is rendered
from the stored results of every experiment, so refreshing one keeps the others' figures.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

import sim  # noqa: F401  (registers the environment ids)
from benchmarks.machine import describe_machine
from metarl_core.policy.evaluate import (
    MAML_EVAL_TASKS,
    RL2_EVAL_TRIALS,
    maml_adaptation_curve,
    plot_curves,
    rl2_episode_returns,
)
from metarl_core.policy.maml_ppo import MamlPPOConfig, adaptation_returns
from metarl_core.policy.policy_checkpoint import load_policy_checkpoint
from metarl_core.policy.rl2 import RL2Config, run_trials
from metarl_core.policy.sampling import HELD_OUT_SEED, PolicyEnv, held_out_tasks
from metarl_core.policy.train import load_policy_config, train_policy
from metarl_core.run.checkpoint_io import CHECKPOINT_NAME

EXPERIMENTS = ("maml-nav", "rl2-nav", "robot")
EXTENDED_TRIAL = 4
"""Episodes of the longer trial RL² is also scored on (it was trained on shorter ones)."""
CONFIGS = Path("configs")
MAML_PAPER = (
    "MAML paper (Finn et al., ICML 2017, Fig. 4; TRPO outer loop, 20 goals × 20 trajectories, same reward and "
    "horizon): after 1 step MAML ≈ −20 to −25, pretrained ≈ −40 (read off a log-scale plot, approximate)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``metarl bench policy``."""
    parser.add_argument("--experiment", choices=EXPERIMENTS, required=True)
    parser.add_argument("--seeds", type=int, default=3, help="training seeds (the spread is reported)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/bench_policy"))
    parser.add_argument("--results-dir", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("--figures-dir", type=Path, default=Path("docs/images"))


def train_seeds(config_path: Path, seeds: int, runs_dir: Path) -> list[Path]:
    """One run of ``config_path`` per seed 0..seeds-1, reused or resumed where one exists."""
    base = load_policy_config(config_path)
    runs = []
    for seed in range(seeds):
        config = dataclasses.replace(base, seed=seed, name=f"{base.name}_seed{seed}")
        runs.append(train_policy(config, runs_dir / config.name, resume=True))
    return runs


def env_steps_of(run: Path) -> int:
    """Environment steps a policy run trained on (its checkpoint's count)."""
    return int(load_policy_checkpoint(run)[1]["env_steps"])


def maml_nav(args: argparse.Namespace) -> dict[str, Any]:
    """MAML-PPO vs pretrained, 0–3 inner steps on held-out (interp) goals, per training seed."""
    runs_dir = args.runs_dir / "maml-nav"
    maml_config = CONFIGS / "point_nav_maml_ppo.yaml"
    methods = {
        "MAML-PPO": train_seeds(maml_config, args.seeds, runs_dir),
        "pretrained (same PPO, no meta)": train_seeds(CONFIGS / "point_nav_pretrained.yaml", args.seeds, runs_dir),
    }
    # Both adapt on MAML's fast batch per step (the pretrained run trained on twice as many
    # episodes per task, to match MAML's support + query data).
    episodes = load_policy_config(maml_config).episodes_per_task
    curves = {
        name: [
            maml_adaptation_curve(load_policy_checkpoint(run)[0], "interp", 0, episodes_per_task=episodes).tolist()
            for run in runs
        ]
        for name, runs in methods.items()
    }
    plot_curves(
        {name: np.array(c) for name, c in curves.items()},
        "policy-gradient steps on the held-out goal",
        args.figures_dir / "policy_maml_nav.png",
        title="2-D navigation, held-out goals",
    )
    return {
        "curves": curves,
        "env_steps": {name: [env_steps_of(run) for run in runs] for name, runs in methods.items()},
    }


def rl2_nav(args: argparse.Namespace) -> dict[str, Any]:
    """RL² per-episode returns on held-out (interp) goals, with and without the carried state."""
    runs = train_seeds(CONFIGS / "point_nav_rl2.yaml", args.seeds, args.runs_dir / "rl2-nav")
    policies = [load_policy_checkpoint(run)[0] for run in runs]
    curves = {
        "RL² (hidden state carried, as trained)": [rl2_episode_returns(p, "interp", seed=0).tolist() for p in policies],
        f"RL², trial extended to {EXTENDED_TRIAL} episodes": [
            rl2_episode_returns(p, "interp", seed=0, episodes=EXTENDED_TRIAL).tolist() for p in policies
        ],
        "ablation: every episode starts as a trial's first": [
            rl2_episode_returns(p, "interp", seed=0, carry_hidden=False).tolist() for p in policies
        ],
    }
    plot_curves(
        {name: np.array(c) for name, c in curves.items()},
        "episode of the trial",
        args.figures_dir / "policy_rl2_nav.png",
        first_x=1,
        title="RL², 2-D navigation, held-out goals",
    )
    return {"curves": curves, "env_steps": [env_steps_of(run) for run in runs]}


def controller_score(
    env_id: str, controller: Any, tasks: list, resets: list[list[int | None]], duration: float
) -> list[float]:
    """Mean return over ``tasks`` of each episode slot for a per-step controller (``reset()``,
    ``obs -> action``): task ``k``'s episodes are reset with ``resets[k]`` in turn (None: the
    environment's own stream goes on, as an RL² trial's later episodes are). Given a policy
    protocol's resets, the controller meets the references the policy met."""
    env = gymnasium.make(env_id, episode_duration_s=duration)
    returns = np.zeros((len(tasks), len(resets[0])))
    for index, task in enumerate(tasks):
        env.unwrapped.set_task(task)
        for slot, seed in enumerate(resets[index]):
            obs, _ = env.reset(seed=seed)
            controller.reset()
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(controller(obs))
                total, done = total + reward, terminated or truncated
            returns[index, slot] = total
    env.close()
    return returns.mean(axis=0).tolist()


def rl2_resets(tasks: int, episodes: int) -> list[list[int | None]]:
    """The resets of RL²'s held-out score: trial ``k`` starts at ``HELD_OUT_SEED + k`` and its
    later episodes continue that environment's stream."""
    return [[HELD_OUT_SEED + k] + [None] * (episodes - 1) for k in range(tasks)]


def maml_post_step_resets(tasks: int, per_task: int) -> list[list[int | None]]:
    """The resets of the episodes MAML-PPO's post-step policy is scored on (the second round of
    ``adaptation_returns``, environment ``k · per_task + j`` of ``tasks · per_task``)."""
    first = HELD_OUT_SEED + tasks * per_task
    return [[first + k * per_task + j for j in range(per_task)] for k in range(tasks)]


def final_scores(run: Path, tasks: list) -> list[float]:
    """The trained policy's deterministic held-out returns on ``tasks``, by the protocol of its
    training-time score: RL², each episode of one trial per task (``[episode 1, episode 2]``);
    MAML-PPO, before and after its inner step on sampled episodes of each task (``[pre, post]``)."""
    policy, _ = load_policy_checkpoint(run)
    env = PolicyEnv.of_run(policy.env_id, policy.config)
    noise = torch.Generator().manual_seed(0)
    if policy.algo == "rl2":
        episodes = policy.episodes_per_trial
        backend = env.backend(len(tasks))
        rollouts = run_trials(
            policy.params, policy.stats, backend, env, tasks, episodes, HELD_OUT_SEED, noise, deterministic=True
        )
        scores = rollouts.episode_returns(episodes).mean(0).tolist()
    else:
        config = MamlPPOConfig.from_dict(policy.config)
        backend = env.backend(len(tasks) * config.episodes_per_task)
        returns = adaptation_returns(
            policy.params,
            policy.stats,
            backend,
            env,
            tasks,
            config.episodes_per_task,
            config.inner_steps,
            policy.inner_step_size,
            config.ppo,
            HELD_OUT_SEED,
            noise,
            deterministic_scores=True,
        )
        scores = returns.mean(axis=1).tolist()
    backend.close()
    env.close()
    return scores


def heldout_curve(run: Path) -> tuple[list[int], list[float]]:
    """(environment steps, held-out return) at each scored iteration of an RL² run."""
    steps, scores = [], []
    with open(run / "metrics.csv", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            score = float(row["charts/heldout_episode_return"])
            if not math.isnan(score):
                steps.append(int(float(row["charts/env_steps"])))
                scores.append(score)
    return steps, scores


ROBOT_CONFIGS = {"RL²": CONFIGS / "panda_rl2.yaml", "MAML-PPO": CONFIGS / "panda_maml_ppo.yaml"}
"""The policy-based meta-learners of the robot experiment; both score the same held-out tasks."""
ROBOT_SPLITS = ("interp", "extrap")
"""Held-out splits the final policies and the references are scored on (training scores interp)."""


def robot(args: argparse.Namespace) -> dict[str, Any]:
    """RL² and MAML-PPO on the Panda against GrBAL's adaptive MPC and the nominal controller,
    all scored on the same held-out tasks: along training on the interp split, and the final
    policies on both held-out splits."""
    from metarl_core.model_based.adaptive_mpc import AdaptiveMPCController
    from metarl_core.model_based.checkpoint import load_checkpoint
    from metarl_core.model_based.exploration import ROBOTS
    from metarl_core.model_based.train import run_training

    config = RL2Config.from_yaml(ROBOT_CONFIGS["RL²"])
    runs = {name: train_seeds(path, args.seeds, args.runs_dir / "robot") for name, path in ROBOT_CONFIGS.items()}

    grbal_dir = args.runs_dir / "robot" / "grbal_panda"
    grbal_run = run_training(CONFIGS / "panda.yaml", grbal_dir, "cpu", resume=(grbal_dir / "checkpoint.pt").exists())
    model, state = load_checkpoint(grbal_run)
    grbal_steps = int(sum(buffer.num_transitions for buffer in state["replay_buffers"]))

    env = PolicyEnv(config.env_id, config.episode_duration_s)
    tasks = {split: held_out_tasks(env, config.eval_trials, split) for split in ROBOT_SPLITS}
    env.close()
    episodes, duration = config.episodes_per_trial, config.episode_duration_s
    per_task = MamlPPOConfig.from_yaml(ROBOT_CONFIGS["MAML-PPO"]).episodes_per_task
    resets = rl2_resets(len(tasks[config.eval_split]), episodes)
    nominal = ROBOTS["panda"][1]()
    per_episode = {
        split: {
            "GrBAL adaptive MPC (model-based)": controller_score(
                config.env_id, AdaptiveMPCController(model, seed=0), split_tasks, resets, duration
            ),
            "fixed nominal controller": controller_score(config.env_id, nominal, split_tasks, resets, duration),
            "fixed nominal controller, on MAML-PPO's post-step resets": controller_score(
                config.env_id, nominal, split_tasks, maml_post_step_resets(len(split_tasks), per_task), duration
            ),
        }
        for split, split_tasks in tasks.items()
    }
    references = {
        name: float(np.mean(per_episode[config.eval_split][name]))
        for name in ("GrBAL adaptive MPC (model-based)", "fixed nominal controller")
    }
    curves = {name: [heldout_curve(run) for run in method_runs] for name, method_runs in runs.items()}
    reached = {
        method: {
            name: [next((s for s, r in zip(*curve, strict=True) if r >= score), None) for curve in method_curves]
            for name, score in references.items()
        }
        for method, method_curves in curves.items()
    }
    finals = {
        split: {method: [final_scores(run, split_tasks) for run in method_runs] for method, method_runs in runs.items()}
        for split, split_tasks in tasks.items()
    }
    _plot_robot(curves, references, grbal_steps, args.figures_dir / "policy_robot.png")
    return {
        "curves": {
            method: [{"env_steps": c[0], "heldout_return": c[1]} for c in method_curves]
            for method, method_curves in curves.items()
        },
        "references": references,
        "references_per_episode": per_episode,
        "final_scores": finals,
        "grbal_env_steps": grbal_steps,
        "steps_to_reach": reached,
        "env_steps": {method: [env_steps_of(run) for run in method_runs] for method, method_runs in runs.items()},
        "training_minutes": {
            method: [training_minutes(run) for run in method_runs] for method, method_runs in runs.items()
        },
        "held_out": {
            "split": config.eval_split,
            "tasks": config.eval_trials,
            "episodes": episodes,
            "episode_s": duration,
        },
    }


def training_minutes(run: Path) -> float | None:
    """Wall-clock minutes from a run's start to its last checkpoint: the start is the Unix time
    in the name of its first TensorBoard event file (``events.out.tfevents.<time>.…``, one per
    training session; a reused run's later sessions add files but no checkpoint). None without
    TensorBoard. For a run trained in one session this is its training time."""
    events = sorted(int(path.name.split(".")[3]) for path in (run / "tensorboard").glob("events.out.tfevents.*"))
    if not events:
        return None
    return ((run / CHECKPOINT_NAME).stat().st_mtime - events[0]) / 60.0


def _plot_robot(curves: dict, references: dict[str, float], grbal_steps: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for (method, method_curves), color in zip(curves.items(), ("tab:blue", "tab:green"), strict=False):
        for seed, (steps, scores) in enumerate(method_curves):
            axis.plot(steps, scores, marker=".", color=color, alpha=0.8, label=method if seed == 0 else None)
    for (name, score), style in zip(references.items(), ("--", ":"), strict=False):
        axis.axhline(score, linestyle=style, color="black", label=f"{name}: {score:.1f}")
    axis.axvline(grbal_steps, color="tab:red", alpha=0.5, label=f"GrBAL's training data: {grbal_steps} steps")
    axis.set_xscale("log")
    axis.set_xlabel("environment steps of training")
    axis.set_ylabel("held-out episode return")
    axis.set_title("Panda payload task, held-out tasks (one line per training seed)")
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def separation(better: np.ndarray, other: np.ndarray) -> str:
    """How far ``better``'s seed interval (mean ± std) lies above ``other``'s, in words."""
    gap = (better.mean() - better.std()) - (other.mean() + other.std())
    difference = better.mean() - other.mean()
    verdict = "outside the seed spread" if gap > 0 else "NOT outside the seed spread"
    return f"{difference:+.2f} ({verdict}: intervals {'apart by' if gap > 0 else 'overlap by'} {abs(gap):.2f})"


def paired_gain(later: np.ndarray, first: np.ndarray) -> str:
    """Each seed's own gain ``later − first``, in words: the within-trial rise, with the spread of
    how well the seeds trained (which moves both episodes together) taken out."""
    gains = later - first
    per_seed = ", ".join(f"{g:+.2f}" for g in gains)
    low = gains.mean() - gains.std()
    verdict = "above zero" if low > 0 else "NOT above zero"
    rising = int(np.count_nonzero(gains > 0))
    return (
        f"{per_seed} (mean {gains.mean():+.2f} ± {gains.std():.2f}: interval {verdict}; "
        f"{rising} of {len(gains)} seeds rise)"
    )


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def render_maml_nav(result: dict[str, Any]) -> list[str]:
    curves = {name: np.array(c) for name, c in result["curves"].items()}
    maml, pretrained = curves["MAML-PPO"], curves["pretrained (same PPO, no meta)"]
    seeds = maml.shape[0]
    lines = [
        "### MAML-PPO on 2-D navigation (held-out goals)",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}. {seeds} training seeds (mean ± std over them); each policy is scored on the",
        f"same {MAML_EVAL_TASKS} held-out goals of the interp split (the diagonal sectors no training goal lies in),",
        "20 fresh episodes per goal and per step (actions sampled, as in the paper); a step is one",
        "policy-gradient step (MAML's inner step, the same step size for both) on the episodes of the",
        "policy adapted so far.",
        "",
        "| policy | 0 steps (pre-update) | 1 step | 2 steps | 3 steps | training env steps |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in curves.items():
        cells = " | ".join(_mean_std(values[:, k]) for k in range(values.shape[1]))
        lines.append(f"| {name} | {cells} | {np.mean(result['env_steps'][name]):.3g} |")
    lines += [
        "",
        "Criterion: the seed intervals (mean ± std) of MAML-PPO after one step and of each competitor do not overlap.",
        "",
    ]
    for name, values in (
        ("its own pre-update policy", maml[:, 0]),
        ("the pretrained policy, pre-update", pretrained[:, 0]),
        ("the pretrained policy after its step", pretrained[:, 1]),
    ):
        lines.append(f"- MAML-PPO after 1 step vs {name}: {separation(maml[:, 1], values)}")
    lines += [
        "",
        f"{MAML_PAPER}.",
        "",
        f"![MAML-PPO vs pretrained]({result['figure']})",
    ]
    return lines


def render_rl2_nav(result: dict[str, Any]) -> list[str]:
    curves = {name: np.array(c) for name, c in result["curves"].items()}
    carried = next(iter(curves.values()))
    trained, columns = carried.shape[1], max(c.shape[1] for c in curves.values())
    lines = [
        "### RL² on 2-D navigation: return per episode of a trial (held-out goals)",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}. {carried.shape[0]} training seeds (mean ± std over them), "
        f"{np.mean(result['env_steps']):.3g} training env steps each, trials of {trained} episodes;",
        f"{RL2_EVAL_TRIALS} held-out goals of the interp split, one trial each, actions sampled as in training. The",
        "ablation starts every episode as a trial's first (zero hidden state, and zero previous action,",
        "reward and done): what it loses in episode 2 is what the carried state held.",
        "",
        "| policy | " + " | ".join(f"episode {k + 1}" for k in range(columns)) + " |",
        "|---|" + "---|" * columns,
    ]
    for name, values in curves.items():
        cells = [_mean_std(values[:, k]) if k < values.shape[1] else "" for k in range(columns)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Episode {trained} against episode 1, hidden state carried, each seed against itself: "
        f"{paired_gain(carried[:, -1], carried[:, 0])}; criterion: the interval (mean ± std) of the per-seed "
        "gains lies above zero.",
        "",
        f"The same comparison across seeds (unpaired): {separation(carried[:, -1], carried[:, 0])}.",
        "",
        f"![RL² per-episode return]({result['figure']})",
    ]
    return lines


def render_robot(result: dict[str, Any]) -> list[str]:
    held = result["held_out"]
    lines = [
        "### Sample efficiency on the Panda payload task: RL² and MAML-PPO against the model-based mode",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}. Score: mean episode return on the same {held['tasks']} held-out tasks "
        f"({held['split']} split), {held['episodes']} episodes of {held['episode_s']:g} s each, mean action "
        "(RL²: one trial; MAML-PPO: after its inner step on sampled episodes of each task). Final: the score after "
        "the last iteration; best: the highest score along training (picked on the held-out tasks, so optimistic).",
        "",
        "| controller | held-out return, final | best along training | training env steps |",
        "|---|---|---|---|",
    ]
    for method, method_curves in result["curves"].items():
        final = [c["heldout_return"][-1] for c in method_curves]
        best = [max(c["heldout_return"]) for c in method_curves]
        steps = np.mean(result["env_steps"][method])
        lines.append(f"| {method} | {_mean_std(final)} | {_mean_std(best)} | {steps:.3g} per seed |")
    for name, score in result["references"].items():
        steps = f"{result['grbal_env_steps']:,}" if "GrBAL" in name else "none (hand-designed)"
        lines.append(f"| {name} | {score:.2f} | | {steps} |")
    lines += [
        "",
        "| method | score to reach | env steps to reach it, per seed | GrBAL env steps |",
        "|---|---|---|---|",
    ]
    for method, per_reference in result["steps_to_reach"].items():
        for name, per_seed in per_reference.items():
            cells = ", ".join(
                f"{s:,}" if s is not None else f"not reached in {n:,}"
                for s, n in zip(per_seed, result["env_steps"][method], strict=True)
            )
            lines.append(
                f"| {method} | {name} ({result['references'][name]:.2f}) | {cells} | {result['grbal_env_steps']:,} |"
            )
    if "final_scores" in result:
        lines += render_robot_targets(result)
    lines += ["", f"![Policy-based meta-RL on the Panda: held-out return against training steps]({result['figure']})"]
    return lines


FINAL_ROWS = {
    "RL²": ("RL², episode 1", "RL², episode 2"),
    "MAML-PPO": ("MAML-PPO, before its step", "MAML-PPO, after its step"),
}
"""What each column of a method's ``final_scores`` is."""
NOMINAL = "fixed nominal controller"
MPC = "GrBAL adaptive MPC (model-based)"
NOMINAL_MAML = "fixed nominal controller, on MAML-PPO's post-step resets"


def render_robot_targets(result: dict[str, Any]) -> list[str]:
    """The final policies on both held-out splits against the references on the same resets,
    and the issue's targets (RL²'s episode 2 and MAML-PPO after its step above the nominal
    controller), met or not, seed by seed."""
    finals, per_episode = result["final_scores"], result["references_per_episode"]
    splits = list(finals)
    held = result["held_out"]
    lines = [
        "",
        f"Final policies (mean action) on {held['tasks']} held-out tasks of each split, the references on the same "
        "resets: RL² and the references' episodes 1 and 2 are the trial's two episodes (same reference "
        "trajectories); MAML-PPO is scored on its own resets (each task's episodes before and after its inner "
        "step), the nominal controller also on MAML-PPO's post-step resets. Mean ± std over training seeds.",
        "",
        "| controller | " + " | ".join(f"{split}: episode 1 | {split}: episode 2" for split in splits) + " |",
        "|---|" + "---|---|" * len(splits),
    ]
    for name in (MPC, NOMINAL):
        cells = " | ".join(f"{per_episode[split][name][0]:.2f} | {per_episode[split][name][1]:.2f}" for split in splits)
        lines.append(f"| {name} | {cells} |")
    rl2 = {split: np.array(finals[split]["RL²"]) for split in splits}
    cells = " | ".join(f"{_mean_std(rl2[split][:, 0])} | {_mean_std(rl2[split][:, 1])}" for split in splits)
    lines.append(f"| RL² (one trial) | {cells} |")
    lines += [
        "",
        "| controller | " + " | ".join(f"{split}: before step | {split}: after step" for split in splits) + " |",
        "|---|" + "---|---|" * len(splits),
    ]
    maml = {split: np.array(finals[split]["MAML-PPO"]) for split in splits}
    cells = " | ".join(f"{_mean_std(maml[split][:, 0])} | {_mean_std(maml[split][:, -1])}" for split in splits)
    lines.append(f"| MAML-PPO | {cells} |")
    nominal_maml = " | ".join(f"{np.mean(per_episode[split][NOMINAL_MAML]):.2f} | " for split in splits)
    lines.append(f"| {NOMINAL_MAML} | {nominal_maml}")
    lines += ["", "Targets (each seed above the nominal controller on the same resets):", ""]
    for split in splits:
        for method, ours, nominal, mpc in (
            ("RL² episode 2", rl2[split][:, 1], per_episode[split][NOMINAL][1], per_episode[split][MPC][1]),
            (
                "MAML-PPO after its step",
                maml[split][:, -1],
                float(np.mean(per_episode[split][NOMINAL_MAML])),
                float(np.mean(per_episode[split][MPC])),
            ),
        ):
            above = int(np.count_nonzero(ours > nominal))
            verdict = "met" if above == len(ours) else "NOT met"
            gains = ", ".join(f"{g:+.2f}" for g in ours - nominal)
            lines.append(
                f"- {split}, {method} vs nominal {nominal:.2f}: {gains} ({above} of {len(ours)} seeds above: "
                f"{verdict}); distance to the adaptive MPC ({mpc:.2f}): {np.mean(ours) - mpc:+.2f}"
            )
    minutes = result.get("training_minutes", {})
    for method, values in minutes.items():
        per_seed = ", ".join("?" if m is None else f"{m:.1f}" for m in values)
        lines.append(
            f"- {method}: {np.mean(result['env_steps'][method]):,.0f} training env steps and "
            f"{per_seed} min of training per seed (one core)"
        )
    return lines


RENDERERS = {"maml-nav": render_maml_nav, "rl2-nav": render_rl2_nav, "robot": render_robot}
RUNNERS = {"maml-nav": maml_nav, "rl2-nav": rl2_nav, "robot": robot}


def run(args: argparse.Namespace) -> str:
    """Run ``args.experiment``, store its results, and return the whole ``policy`` section."""
    args.results_dir.mkdir(parents=True, exist_ok=True)
    args.figures_dir.mkdir(parents=True, exist_ok=True)
    result = RUNNERS[args.experiment](args)
    result["command"] = f"metarl bench policy --experiment {args.experiment} --seeds {args.seeds}"
    result["machine"] = describe_machine()
    result["figure"] = str(args.figures_dir / f"policy_{args.experiment.replace('-', '_')}.png")
    path = args.results_dir / f"policy_{args.experiment}.json"
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    lines = ["## Policy-based meta-RL: MAML-PPO and RL²", ""]
    for name in EXPERIMENTS:
        stored = args.results_dir / f"policy_{name}.json"
        if stored.exists():
            lines += [*RENDERERS[name](json.loads(stored.read_text(encoding="utf-8"))), ""]
    return "\n".join(lines)
