"""``metarl bench husky-limits``: how much tracking any controller can win on the Husky's tasks.

The Husky's control figures (``metarl eval``, issue 13) compare learned controllers with a PI on
the same tasks. A ratio says something about adaptation only where the robot *can* track: on a
steep, slippery slope with weak motors and 80 kg on the deck, no wheel command reaches the
reference and every controller's error is the physics'. This benchmark measures, with no learned
model, on exactly the tasks and reference twists ``metarl eval`` tracks on (its task draws, its
two heaviest-payload tasks per seed, its reset seeds):

- *full effort*: the forward speed the robot reaches with both sides at the wheel-speed limit,
  against the fastest forward reference of the episode (``reachable`` when it is at least that);
- the PI baseline (``sim.baseline_controllers.HuskyPIController``) at the gains of ``--gains``:
  its RMSE at the baseline's own gains, at the best of them, and the share of ticks on which a
  wheel motor is at its torque limit (the simulator's applied torque; nothing here reaches a
  controller);
- the terrain-change patch (``sim.scenarios.terrain_change``) at the frictions of
  ``--patch-frictions``: the baseline's error before and at steady state after the crossing and
  its torque-limited ticks on the patch.

A task on which full effort does not reach the reference, or on which the best-tuned PI is no
better than the baseline, leaves a learned controller no error to remove; the summary says how
much of the baseline's squared error such tasks hold.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

import gymnasium
import numpy as np

import sim  # noqa: F401  (registers the environment ids)
from benchmarks.machine import describe_machine
from metarl_core.model_based.evaluate import (
    SETTLE_S,
    EvaluationSettings,
    change_reset_seed,
    control_reset_seed,
    control_task_indices,
    held_out_tasks,
)
from sim.baseline_controllers import HUSKY_PI_KI, HUSKY_PI_KP, HuskyPIController
from sim.husky_terrain import HUSKY
from sim.scenarios.terrain_change import (
    DEFAULT_PATCH,
    EPISODE_S,
    FLAT_GROUND,
    STEADY_AFTER_S,
    TerrainChange,
)
from sim.scenarios.terrain_change import SETTLE_S as CHANGE_SETTLE_S
from sim.tasks import HuskyTask

BASELINE_GAINS = (HUSKY_PI_KP, HUSKY_PI_KI)
TORQUE_LIMIT_FRACTION = 0.99
"""A wheel counts as torque-limited when its motor applies at least this fraction of its limit."""
FULL_EFFORT_AVERAGE_S = 1.0
"""Full effort's forward speed is its mean over the episode's last second (the robot has come up to speed)."""

Controller = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class TrackingRun:
    """One episode's figures: RMSE after settling (m/s) and the share of ticks with a wheel at its torque limit."""

    rmse_m_s: float
    torque_limited: float


@dataclasses.dataclass(frozen=True)
class TaskLimits:
    """What one control task allows, and what the PI gets on it."""

    split: str
    seed: int
    task: HuskyTask
    full_effort_m_s: float
    fastest_reference_m_s: float
    pi: dict[tuple[float, float], TrackingRun]

    @property
    def reachable(self) -> bool:
        return self.full_effort_m_s >= self.fastest_reference_m_s

    @property
    def baseline(self) -> TrackingRun:
        return self.pi[BASELINE_GAINS]

    @property
    def best_gains(self) -> tuple[float, float]:
        return min(self.pi, key=lambda gains: self.pi[gains].rmse_m_s)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``metarl bench husky-limits``."""
    parser.add_argument("--eval-seeds", type=int, default=3, help="evaluation seeds, as metarl eval --seeds")
    parser.add_argument("--splits", nargs="+", choices=("interp", "extrap"), default=["extrap", "interp"])
    parser.add_argument(
        "--gains",
        nargs="+",
        default=["1,2", "2,5", "3,10", "5,20"],
        metavar="KP,KI",
        help="PI gains to run (the baseline's own 1,2 is always one)",
    )
    parser.add_argument(
        "--patch-frictions", type=float, nargs="*", default=[1.2, DEFAULT_PATCH.ground_friction, 1.4, 1.8]
    )


def _wheel_torque_limited(env: gymnasium.Env) -> bool:
    """Whether any wheel motor applied its torque limit over the last control step."""
    husky = env.unwrapped
    states = husky.client.getJointStates(husky.body, husky.wheel_indices)
    return max(abs(state[3]) for state in states) >= TORQUE_LIMIT_FRACTION * husky.max_wheel_torque_nm


def _episode(env: gymnasium.Env, obs: np.ndarray, controller: Controller) -> tuple[np.ndarray, np.ndarray, list]:
    """Tracking error, torque-limited flag and observation per tick until the episode ends."""
    errors, limited, observations, done = [], [], [], False
    while not done:
        obs, _, terminated, truncated, info = env.step(controller(obs))
        errors.append(info["tracking_error"])
        limited.append(_wheel_torque_limited(env))
        observations.append(obs)
        done = terminated or truncated
    return np.asarray(errors), np.asarray(limited), observations


def task_limits(
    env: gymnasium.Env, split: str, seed: int, task: HuskyTask, gains: list[tuple[float, float]]
) -> TaskLimits:
    """Full effort and the PI at each of ``gains`` on ``task``, from evaluation seed ``seed``'s reset."""
    husky = env.unwrapped
    settle = round(SETTLE_S * HUSKY.control_rate_hz)
    husky.set_task(task)
    obs, _ = env.reset(seed=control_reset_seed(seed))
    ticks = round(husky.episode_duration_s * HUSKY.control_rate_hz)
    fastest = max(husky.reference.at(tick / HUSKY.control_rate_hz)[0] for tick in range(ticks))
    full = np.asarray(HUSKY.action_high, np.float32)
    _, _, observations = _episode(env, obs, lambda _: full)
    last = observations[-round(FULL_EFFORT_AVERAGE_S * HUSKY.control_rate_hz) :]
    forward = HUSKY.state_fields.index("odom.twist.linear.x")
    full_effort = float(np.mean([o[forward] for o in last]))
    runs = {}
    for kp, ki in gains:
        obs, _ = env.reset(seed=control_reset_seed(seed))
        errors, limited, _ = _episode(env, obs, HuskyPIController(kp=kp, ki=ki))
        runs[(kp, ki)] = TrackingRun(float(np.sqrt(np.mean(errors[settle:] ** 2))), float(np.mean(limited[settle:])))
    return TaskLimits(split, seed, task, full_effort, float(fastest), runs)


def patch_figures(friction: float, seed: int) -> dict[str, float]:
    """The PI baseline through the terrain change onto a patch of ``friction``: RMS error before
    and at steady state after the crossing (m/s), torque-limited share of ticks on the patch."""
    env = TerrainChange(
        gymnasium.make("metarl/HuskyTerrain-v0", episode_duration_s=EPISODE_S),
        dataclasses.replace(DEFAULT_PATCH, ground_friction=friction),
    )
    env.unwrapped.set_task(FLAT_GROUND)
    obs, _ = env.reset(seed=seed)
    errors, limited, _ = _episode(env, obs, HuskyPIController())
    env.close()
    rate = HUSKY.control_rate_hz
    if env.crossing_tick is None:
        return {"before": float("nan"), "steady_after": float("nan"), "torque_limited": float("nan")}
    crossing = env.crossing_tick
    return {
        "before": float(np.sqrt(np.mean(errors[round(CHANGE_SETTLE_S * rate) : crossing] ** 2))),
        "steady_after": float(np.sqrt(np.mean(errors[crossing + round(STEADY_AFTER_S * rate) :] ** 2))),
        "torque_limited": float(np.mean(limited[crossing:])),
    }


def _gains(text: list[str]) -> list[tuple[float, float]]:
    """``["1,2", …]`` as (kp, ki) pairs, the baseline's first; a malformed pair is a ValueError naming it."""
    pairs = [BASELINE_GAINS]
    for item in text:
        parts = item.split(",")
        try:
            kp, ki = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"--gains {item!r}: expected KP,KI, e.g. 2,5") from None
        if not (np.isfinite(kp) and np.isfinite(ki) and kp >= 0.0 and ki >= 0.0):
            raise ValueError(f"--gains {item!r}: gains must be finite and >= 0")
        if (kp, ki) not in pairs:
            pairs.append((kp, ki))
    return pairs


def _gains_text(gains: tuple[float, float]) -> str:
    return f"{gains[0]:g}/{gains[1]:g}"


def _split_markdown(split: str, rows: list[TaskLimits]) -> list[str]:
    lines = [
        f"### {split} split",
        "",
        "| seed | task | full effort (m/s) | fastest reference (m/s) | reachable | PI RMSE (m/s) "
        "| torque-limited ticks | best gains | best RMSE (m/s) | PI ÷ best |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        best = row.pi[row.best_gains]
        lines.append(
            f"| {row.seed} | {row.task.summary()} | {row.full_effort_m_s:+.2f} | {row.fastest_reference_m_s:.2f} "
            f"| {'yes' if row.reachable else '**no**'} | {row.baseline.rmse_m_s:.3f} "
            f"| {100 * row.baseline.torque_limited:.0f} % | {_gains_text(row.best_gains)} | {best.rmse_m_s:.3f} "
            f"| {row.baseline.rmse_m_s / best.rmse_m_s:.2f} |"
        )
    squared = np.array([row.baseline.rmse_m_s**2 for row in rows])
    unreachable = np.array([not row.reachable for row in rows])
    reachable_rmse = [row.baseline.rmse_m_s for row in rows if row.reachable]
    best_mean = float(np.mean([row.pi[row.best_gains].rmse_m_s for row in rows]))
    baseline_mean = float(np.mean([row.baseline.rmse_m_s for row in rows]))
    lines += [
        "",
        f"- Full effort does not reach the reference on {int(unreachable.sum())} of {len(rows)} tasks; they hold "
        f"{100 * squared[unreachable].sum() / squared.sum():.0f} % of the PI's squared error.",
        f"- PI RMSE, mean over tasks: {baseline_mean:.4f} m/s on all, "
        + (f"{np.mean(reachable_rmse):.4f} m/s on the reachable ones." if reachable_rmse else "no task is reachable."),
        f"- Best gains per task, mean: {best_mean:.4f} m/s, {best_mean / baseline_mean:.2f}× the baseline's gains.",
        "",
    ]
    return lines


def run(args: argparse.Namespace) -> str:
    """Measure every split's control tasks and the patch frictions; the section's markdown."""
    if args.eval_seeds < 1:
        raise ValueError(f"--eval-seeds={args.eval_seeds}: expected at least 1")
    gains = _gains(args.gains)
    settings = EvaluationSettings()
    draw_env = gymnasium.make("metarl/HuskyTerrain-v0")
    control_env = gymnasium.make("metarl/HuskyTerrain-v0", episode_duration_s=settings.control_episode_s)
    lines = [
        "## Husky: what the tracking tasks allow (issue 13)",
        "",
        f"Command: `metarl bench husky-limits --eval-seeds {args.eval_seeds} --splits {' '.join(args.splits)} "
        f"--gains {' '.join(args.gains)} --patch-frictions {' '.join(f'{f:g}' for f in args.patch_frictions)}`  ",
        f"Machine: {describe_machine()}.",
        "",
        f"The control tasks of `metarl eval` (the {settings.control_tasks_per_seed} heaviest-payload of "
        f"{settings.tasks_per_seed} drawn per evaluation seed, its reset seeds, {settings.control_episode_s:g} s "
        f"episodes, RMSE after {SETTLE_S:g} s), with no learned model. *Full effort*: both sides at "
        f"{HUSKY.action_high[0]:g} rad/s, forward speed over the last {FULL_EFFORT_AVERAGE_S:g} s. *Torque-limited*: "
        f"a wheel motor applies ≥ {100 * TORQUE_LIMIT_FRACTION:g} % of its torque limit (the PI at its own gains "
        f"{_gains_text(BASELINE_GAINS)}). *Best gains*: the lowest RMSE of {', '.join(_gains_text(g) for g in gains)}.",
        "",
    ]
    for split in args.splits:
        rows = []
        for seed in range(args.eval_seeds):
            tasks, _ = held_out_tasks(draw_env, split, seed, settings)
            for index in control_task_indices(tasks, settings.control_tasks_per_seed):
                rows.append(task_limits(control_env, split, seed, tasks[index], gains))
        lines += _split_markdown(split, rows)
    draw_env.close()
    control_env.close()
    if args.patch_frictions:
        lines += [
            "### Terrain-change patch",
            "",
            "The PI baseline through `sim.scenarios.terrain_change` (friction 1 onto the patch, the steady arc), "
            f"steady state from {STEADY_AFTER_S:g} s after the crossing; evaluation seed 0's reset.",
            "",
            "| patch friction | RMS error before (m/s) | steady after (m/s) | torque-limited ticks on the patch |",
            "|---|---|---|---|",
        ]
        for friction in args.patch_frictions:
            figures = patch_figures(friction, seed=change_reset_seed(0))
            lines.append(
                f"| {friction:g} | {figures['before']:.4f} | {figures['steady_after']:.4f} "
                f"| {100 * figures['torque_limited']:.0f} % |"
            )
    return "\n".join(lines)
