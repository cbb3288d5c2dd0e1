"""``metarl bench train``: where meta-training's time goes, and what a GPU or Ray buys back.

Two tables:
- meta-gradient steps per second of GrBAL's objective (``meta_loss``: vmapped inner step,
  second order, Meta-SGD step sizes, then Adam), against the task batch (tasks × windows per
  task) and the model's hidden sizes, on each device asked for. Windows are synthetic, of the
  Panda's sizes (14-D state, 7 torques, M = K = 16): the cost does not depend on their values.
  A device this machine lacks gets a row that says so instead of a figure;
- env steps per second of collection (a fixed feedback policy on the Panda) through the
  process backend and the Ray backend at each worker count; for Ray both ways to drive it:
  whole rollouts inside the actors (the policy put once into the object store) and the
  lock-step protocol (one actor call per env per step).

Every figure is a median of ``--repeats`` timed runs after a warm-up run. The collection runs
are interleaved, one run of each backend and worker count in turn (ABAB…), so that the load of
a shared machine falls on both sides of every ratio alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from benchmarks.machine import describe_machine
from benchmarks.sim_bench import RunOnce, episode_duration_s, interleaved_median_rates
from metarl_core.model_based.adaptation import Adaptation
from metarl_core.model_based.dynamics_model import ModelShape, init_params
from metarl_core.model_based.meta_objective import make_step_sizes, meta_loss
from metarl_core.model_based.replay_buffer import Transitions, TransitionWindows
from sim.vector_collection import collect_rollouts, make_process_backend

STATE_DIM, ACTION_DIM, WINDOW = 14, 7, 16
"""The Panda's sizes, and the past/future window length of configs/panda.yaml."""
ENV_ID = "metarl/PandaPayload-v0"
DEFAULT_CASES = "8x4@64,64;64x4@64,64;64x256@64,64;8x4@256,256;64x4@256,256"
COLLECTION_KINDS = ("process", "ray", "ray-lockstep")


@dataclass(frozen=True)
class MetaCase:
    """One meta-batch shape: ``tasks`` × ``windows_per_task`` windows through a ``hidden`` MLP."""

    tasks: int
    windows_per_task: int
    hidden: tuple[int, ...]

    @property
    def windows(self) -> int:
        return self.tasks * self.windows_per_task


def parse_cases(text: str) -> list[MetaCase]:
    """``"TASKSxWINDOWS@H1,H2;..."`` (e.g. ``8x4@64,64``) as cases; ``SystemExit`` naming a bad one."""
    cases = []
    for item in (part.strip() for part in text.split(";")):
        try:
            batch, hidden = item.split("@")
            tasks, windows = (int(n) for n in batch.split("x"))
            sizes = tuple(int(n) for n in hidden.split(","))
        except ValueError:
            raise SystemExit(
                f"metarl bench train: case {item!r} must read TASKSxWINDOWS@H1,H2 (e.g. 8x4@64,64)"
            ) from None
        if min(tasks, windows, *sizes) < 1:
            raise SystemExit(f"metarl bench train: case {item!r}: every size must be >= 1")
        cases.append(MetaCase(tasks, windows, sizes))
    return cases


def parse_counts(text: str, option: str) -> list[int]:
    """A comma-separated list of counts >= 1, or ``SystemExit`` naming ``option``."""
    try:
        counts = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise SystemExit(f"metarl bench train: {option} {text!r} must list counts >= 1")
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``metarl bench train``."""
    parser.add_argument("--cases", default=DEFAULT_CASES, help="meta-batches, TASKSxWINDOWS@HIDDEN;… (e.g. 8x4@64,64)")
    parser.add_argument("--devices", default="cpu,cuda", help="comma-separated torch devices for the meta-gradient")
    parser.add_argument(
        "--min-time-s", type=float, default=1.0, help="each timed meta-gradient run lasts at least this"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (median reported)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts for collection")
    parser.add_argument("--collect-steps", type=int, default=2000, help="control steps per env per collection run")
    parser.add_argument("--collect-repeats", type=int, default=5, help="interleaved rounds of collection runs")
    parser.add_argument(
        "--collection", default=",".join(COLLECTION_KINDS), help=f"which of {', '.join(COLLECTION_KINDS)} to time"
    )


def synthetic_windows(case: MetaCase, device: torch.device, seed: int = 0) -> TransitionWindows[torch.Tensor]:
    """Past and future windows ``(B, WINDOW, dim)`` of random values, made on the CPU from a
    seeded generator (the same values whatever the device) and moved to ``device``."""
    generator = torch.Generator().manual_seed(seed)

    def window() -> Transitions[torch.Tensor]:
        dims = (STATE_DIM, ACTION_DIM, STATE_DIM)
        return Transitions(*(torch.randn(case.windows, WINDOW, d, generator=generator).to(device) for d in dims))

    return TransitionWindows(window(), window())


def identity_stats(device: torch.device) -> dict[str, torch.Tensor]:
    """Normaliser statistics that leave values as they are."""
    sizes = {"state": STATE_DIM, "action": ACTION_DIM, "delta": STATE_DIM}
    stats = {}
    for name, size in sizes.items():
        stats[f"{name}_mean"] = torch.zeros(size, device=device)
        stats[f"{name}_std"] = torch.ones(size, device=device)
    return stats


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so a timer measures it (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def meta_gradient_run(case: MetaCase, device: torch.device, min_time_s: float) -> Callable[[], tuple[float, float]]:
    """A timed run of Adam steps on the meta-objective of ``case`` on ``device``: as many steps
    as fit in ``min_time_s`` (at least one). Returns steps per wall-clock second, and steps per
    second of this process's CPU time (all its threads): on a loaded machine the first counts
    the waits for a core, the second does not."""
    shape = ModelShape(STATE_DIM, ACTION_DIM, case.hidden)
    params = {k: v.to(device).requires_grad_() for k, v in init_params(shape, torch.Generator().manual_seed(0)).items()}
    step_sizes = make_step_sizes(params, 0.01, learned=True)
    optimizer = torch.optim.Adam([*params.values(), *step_sizes.values()], lr=1e-3)
    windows = synthetic_windows(case, device)
    stats = identity_stats(device)

    def run_once() -> float:
        synchronize(device)
        start, cpu_start, steps = time.perf_counter(), time.process_time(), 0
        while steps == 0 or time.perf_counter() - start < min_time_s:
            loss = meta_loss(
                params, step_sizes, windows, stats, Adaptation("gradient", inner_steps=1), first_order=False
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            synchronize(device)
            steps += 1
        return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu_start)

    return run_once


def device_missing(name: str) -> str | None:
    """Why ``name`` cannot be measured here, or None when it can."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        return "not measured: no CUDA device on the machine that ran this"
    return None


def measure_meta_gradient(cases: Sequence[MetaCase], devices: Sequence[str], min_time_s: float, repeats: int) -> dict:
    """``{(device, case): steps/s or the reason it was not measured}``, plus for the CPU
    ``{("cpu-time", case): steps per CPU-second}``; medians of ``repeats`` runs after a warm-up."""
    results: dict[tuple[str, MetaCase], float | str] = {}
    for name in devices:
        reason = device_missing(name)
        for case in cases:
            if reason is not None:
                results[name, case] = reason
                continue
            run_once = meta_gradient_run(case, torch.device(name), min_time_s)
            run_once()
            wall, cpu = zip(*(run_once() for _ in range(repeats)), strict=True)
            results[name, case] = statistics.median(wall)
            if name == "cpu":
                results["cpu-time", case] = statistics.median(cpu)
            print(f"meta-gradient {name} {case}: {results[name, case]:.3g} steps/s", file=sys.stderr)
    return results


def feedback_policy(obs: np.ndarray) -> np.ndarray:
    """A fixed policy that reads each row of the observation (joint positions against the
    reference's): module-level so that it pickles into Ray's object store."""
    return (np.tanh(obs[:, STATE_DIM : STATE_DIM + ACTION_DIM] - obs[:, :ACTION_DIM]) * 20.0).astype(np.float32)


@contextmanager
def collection_run(kind: str, workers: int, steps: int) -> Iterator[RunOnce]:
    """Timed collection of ``steps`` control steps in each of ``workers`` envs through backend
    ``kind``; the rate is env steps per second over all of them."""
    env_kwargs = {"episode_duration_s": episode_duration_s(ENV_ID, steps)}
    if kind == "process":
        backend = make_process_backend(ENV_ID, workers, **env_kwargs)

        def collect() -> None:
            collect_rollouts(backend, feedback_policy, steps, seed=0)
    else:
        from sim.ray_collection import make_ray_backend

        backend = make_ray_backend(ENV_ID, workers, **env_kwargs)
        if kind == "ray":

            def collect() -> None:
                backend.rollouts(feedback_policy, steps, seed=0)
        else:

            def collect() -> None:
                collect_rollouts(backend, feedback_policy, steps, seed=0)

    def run_once() -> float:
        start = time.perf_counter()
        collect()
        return workers * steps / (time.perf_counter() - start)

    try:
        yield run_once
    finally:
        backend.close()


def measure_collection(kinds: Sequence[str], worker_counts: Sequence[int], steps: int, repeats: int) -> dict:
    """``{(kind, workers): env steps/s}``, all runs interleaved round by round."""
    keys = [(kind, n) for n in worker_counts for kind in kinds]
    with ExitStack() as stack:
        if any(kind != "process" for kind in kinds):
            from sim.ray_collection import connect_ray, import_ray

            # Logical CPUs for every Ray actor alive at once; only one backend runs at a time.
            ray_actors = sum(n for kind, n in keys if kind != "process")
            if connect_ray(num_cpus=ray_actors):
                stack.callback(import_ray().shutdown)
        runs = [stack.enter_context(collection_run(kind, n, steps)) for kind, n in keys]
        rates = interleaved_median_rates(runs, repeats)
    return dict(zip(keys, rates, strict=True))


def _ratio(numerator: float | None, denominator: float | None) -> str:
    return "–" if numerator is None or denominator is None else f"{numerator / denominator:.2f}×"


def speed_up(meta: dict, device: str, case: MetaCase) -> float | None:
    """``device``'s meta-gradient steps/s over the CPU's for ``case``, None unless both were measured."""
    mine, cpu = meta.get((device, case)), meta.get(("cpu", case))
    if isinstance(mine, float) and isinstance(cpu, float):
        return mine / cpu
    return None


def crossover(meta: dict, device: str, cases: Sequence[MetaCase]) -> str:
    """For each model size, the smallest batch (in windows) from which ``device`` beats the CPU
    at every larger batch measured; "not measured" where a ratio is missing."""
    parts = []
    for hidden in dict.fromkeys(case.hidden for case in cases):
        sized = sorted((c for c in cases if c.hidden == hidden), key=lambda c: c.windows)
        ratios = [speed_up(meta, device, c) for c in sized]
        name = "×".join(str(h) for h in hidden)
        if any(r is None for r in ratios):
            parts.append(f"hidden {name}: not measured")
            continue
        wins = [i for i in range(len(sized)) if all(r > 1.0 for r in ratios[i:])]
        if wins:
            parts.append(f"hidden {name}: faster from {sized[wins[0]].windows} windows on")
        else:
            parts.append(f"hidden {name}: not faster at any batch measured (up to {sized[-1].windows} windows)")
    return "; ".join(parts)


def render(
    command: str,
    cases: Sequence[MetaCase],
    devices: Sequence[str],
    meta: dict,
    kinds: Sequence[str],
    worker_counts: Sequence[int],
    collection: dict,
) -> str:
    """The markdown section from the measured figures."""
    others = [d for d in devices if d != "cpu"] if "cpu" in devices else []
    lines = [
        "## Training throughput: meta-gradient steps/s (CPU vs CUDA) and collection env steps/s (processes vs Ray)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {describe_machine()}; torch {torch.__version__}, {torch.get_num_threads()} intra-op threads",
        "",
        "Meta-gradient: one Adam step on GrBAL's meta-objective (vmapped inner step, second order,",
        "Meta-SGD step sizes) over tasks × windows per task windows of the Panda's sizes (14-D state,",
        "7 torques, M = K = 16); median of the repeats after a warm-up. Steps/s are per wall-clock",
        "second; per CPU-second counts this process's CPU time only, which the waits for a core on a",
        "loaded machine do not inflate.",
        "",
        "| task batch (tasks × windows) | windows | hidden | "
        + " | ".join(f"{d} steps/s" for d in devices)
        + "".join(f" | {d} / cpu" for d in others)
        + (" | cpu steps per CPU-second" if "cpu" in devices else "")
        + " |",
        "|---|---|---|" + "---|" * (len(devices) + len(others) + ("cpu" in devices)),
    ]
    for case in cases:
        cells = []
        for device in devices:
            value = meta[device, case]
            cells.append(value if isinstance(value, str) else f"{value:.3g}")
        for device in others:
            ratio = speed_up(meta, device, case)
            cells.append("–" if ratio is None else f"{ratio:.2f}×")
        if "cpu" in devices:
            value = meta.get(("cpu-time", case))
            cells.append(f"{value:.3g}" if isinstance(value, float) else "–")
        hidden = "×".join(str(h) for h in case.hidden)
        lines.append(
            f"| {case.tasks} × {case.windows_per_task} | {case.windows} | {hidden} | " + " | ".join(cells) + " |"
        )
    for device in others:
        lines += ["", f"{device} crossover: {crossover(meta, device, cases)}"]
    if collection:
        lines += [
            "",
            "Collection: a fixed feedback policy on the Panda, each env stepping the command's control",
            "steps; env steps/s over all envs. *process*: worker processes driven in lock-step (the policy",
            "in the driver); *ray*: whole rollouts in Ray actors (the policy put once into the object",
            "store, trajectories back as numpy); *ray-lockstep*: the same actors driven step by step.",
            "Runs interleaved, one of each in turn, medians of the rounds after a warm-up round.",
            "",
            "| backend | " + " | ".join(f"{n}w env steps/s" for n in worker_counts) + " | scaling | vs process |",
            "|---|" + "---|" * len(worker_counts) + "---|---|",
        ]
        first, last = worker_counts[0], worker_counts[-1]
        for kind in kinds:
            rates = [collection[kind, n] for n in worker_counts]
            versus = (
                "–"
                if kind == "process" or "process" not in kinds
                else (", ".join(f"{n}w {_ratio(collection[kind, n], collection['process', n])}" for n in worker_counts))
            )
            lines.append(
                f"| {kind} | "
                + " | ".join(f"{r:.0f}" for r in rates)
                + f" | {_ratio(collection[kind, last], collection[kind, first])} | {versus} |"
            )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> str:
    """Measure and return the markdown section for BENCHMARKS.md."""
    cases = parse_cases(args.cases)
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    for name in devices:
        try:
            torch.device(name)
        except RuntimeError:
            raise SystemExit(f"metarl bench train: --devices {name!r} is not a torch device") from None
    worker_counts = parse_counts(args.workers, "--workers")
    kinds = [k.strip() for k in args.collection.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(COLLECTION_KINDS))
    if unknown:
        raise SystemExit(f"metarl bench train: --collection {unknown} unknown; choose from {list(COLLECTION_KINDS)}")
    if args.repeats < 1 or args.collect_repeats < 1 or args.collect_steps < 1 or args.min_time_s <= 0:
        raise SystemExit(
            "metarl bench train: --repeats, --collect-repeats, --collect-steps must be >= 1, --min-time-s > 0"
        )
    command = (
        f"metarl bench train --cases '{args.cases}' --devices {','.join(devices)} --min-time-s {args.min_time_s:g} "
        f"--repeats {args.repeats} --threads {args.threads} --workers {args.workers} "
        f"--collect-steps {args.collect_steps} --collect-repeats {args.collect_repeats} --collection {','.join(kinds)}"
    )
    if args.threads < 0:
        raise SystemExit(f"metarl bench train: --threads {args.threads} must be >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    meta = measure_meta_gradient(cases, devices, args.min_time_s, args.repeats)
    collection = measure_collection(kinds, worker_counts, args.collect_steps, args.collect_repeats) if kinds else {}
    print(f"collection: {collection}", file=sys.stderr)
    section = render(command, cases, devices, meta, kinds, worker_counts, collection)
    return section.replace(
        "\n\nMeta-gradient:", "  \n" + describe_load(load_before, os.getloadavg()[0]) + "\n\nMeta-gradient:", 1
    )


def describe_load(before: float, after: float, cores: int | None = None) -> str:
    """The load around the runs, and a warning where other work held more than half the cores:
    then a second worker finds no free core, and the worker-count ratios understate scaling."""
    cores = cores or os.cpu_count() or 1
    text = f"Load average (1 min) before / after the runs: {before:.1f} / {after:.1f} on {cores} cores."
    if max(before, after) > cores / 2:
        text += (
            " The machine was busy with other work: more workers than free cores cannot scale, so the"
            " worker-count ratios below understate what free cores give."
        )
    return text
