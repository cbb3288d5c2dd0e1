"""``metarl bench runtime``: latency of the robot-side bundle (ORT) against torch eager.

Each operation is timed call by call at one intra-op thread (as on the robot), and p50/p99 are
reported: a control loop is judged by its tail, not its mean. The model is Panda-sized with the
default hidden layers, and the RL² policy a Panda GRU of ``--rl2-hidden`` units; weights are
random, which does not change the cost of a forward or gradient pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import describe_machine
from export.onnx_export import export_trained_dynamics
from export.recurrent_export import export_trained_policy
from metarl_core.model_based.adaptation import Adaptation
from metarl_core.model_based.adaptive_mpc import make_planner
from metarl_core.model_based.checkpoint import TrainedDynamics
from metarl_core.model_based.dynamics_model import ModelShape, Normalizer, init_params, predict_next_state, window_loss
from metarl_core.model_based.replay_buffer import Transitions
from metarl_core.policy.policy_checkpoint import TrainedPolicy
from metarl_core.policy.recurrent_policy import RecurrentPolicyShape, init_recurrent_policy, recurrent_step
from metarl_runtime.model_runtime import AdaptiveRuntime
from metarl_runtime.mppi import MPPIConfig
from metarl_runtime.recurrent_runtime import RecurrentRuntime
from sim.panda_payload import PANDA

DEFAULT_PLANNER = {
    "samples": 96,
    "horizon": 6,
    "noise_fraction": 0.02,
    "model_inverse": True,
    "feedback_kp": [300.0] * 4 + [60.0] * 3,
    "feedback_kd": [30.0] * 4 + [4.0] * 3,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=2000, help="timed calls per operation")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="hidden layer sizes")
    parser.add_argument("--rl2-hidden", type=int, default=64, help="GRU units of the RL² policy")


def percentiles_ms(function: Callable[[], object], repeats: int, pause_s: float = 0.0) -> tuple[float, float]:
    """p50 and p99 of one call (ms), after a warm-up. ``pause_s`` idles between calls, as a
    control loop does between ticks: caches go cold and a call costs more than back to back."""
    for _ in range(min(50, repeats)):
        function()
    samples = np.empty(repeats)
    for i in range(repeats):
        time.sleep(pause_s)
        start = time.perf_counter()
        function()
        samples[i] = time.perf_counter() - start
    return float(np.percentile(samples, 50) * 1e3), float(np.percentile(samples, 99) * 1e3)


def _model(hidden: list[int], inner_steps: int) -> TrainedDynamics:
    rng = np.random.default_rng(0)
    s, a = PANDA.state_dim, PANDA.action_dim
    normalizer = Normalizer.fit(
        rng.normal(size=(256, s)).astype(np.float32),
        (rng.normal(size=(256, a)) * 10).astype(np.float32),
        (rng.normal(size=(256, s)) * 0.01).astype(np.float32),
    )
    shape = ModelShape(s, a, tuple(hidden))
    params = init_params(shape, torch.Generator().manual_seed(0))
    sizes = {k: torch.full_like(v, 0.01) for k, v in params.items()}
    return TrainedDynamics(
        PANDA, shape, params, normalizer, 64, Adaptation("gradient", inner_steps), sizes, planner=DEFAULT_PLANNER
    )


def _time_adapt(
    runtime: AdaptiveRuntime, model: TrainedDynamics, window: tuple[np.ndarray, ...], repeats: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """p50/p99 of one adaptation, ORT (with its guard) and torch eager (same losses and steps)."""
    stats = model.normalizer.torch()
    tensors = Transitions(*window).to_torch()

    def torch_adapt() -> None:
        with torch.no_grad():
            window_loss(model.params, *tensors, stats)
            adapted = model.adaptation.adapt(model.params, tensors, stats, model.step_sizes)
            window_loss(adapted, *tensors, stats)

    return percentiles_ms(lambda: runtime.adapt(*window), repeats), percentiles_ms(torch_adapt, repeats)


def _time_recurrent_step(hidden_size: int, directory: Path, repeats: int) -> tuple[tuple[float, float], ...]:
    """p50/p99 of one RL² policy step (batch 1, hidden state carried), ORT and torch eager."""
    shape = RecurrentPolicyShape(PANDA.state_dim + PANDA.reference_dim, PANDA.action_dim, hidden_size)
    params = init_recurrent_policy(shape, torch.Generator().manual_seed(0))
    stats = {"obs_mean": torch.zeros(1, shape.obs_dim), "obs_std": torch.ones(1, shape.obs_dim)}
    policy = TrainedPolicy(
        "rl2", "metarl/PandaPayload-v0", shape, params, stats, PANDA.action_low, PANDA.action_high, PANDA
    )
    runtime = RecurrentRuntime.load(export_trained_policy(policy, directory))
    inputs = [
        np.random.default_rng(2).normal(size=(1, shape.obs_dim)).astype(np.float32),
        np.zeros((1, shape.action_dim), np.float32),
        np.full((1, 1), -0.1, np.float32),
        np.zeros((1, 1), np.float32),
    ]
    tensors = [torch.from_numpy(x) for x in inputs]
    hidden = torch.zeros(1, hidden_size)

    def torch_step() -> None:
        nonlocal hidden
        with torch.no_grad():
            _, _, hidden = recurrent_step(params, stats, *tensors, hidden)

    return percentiles_ms(lambda: runtime.step(*inputs), repeats), percentiles_ms(torch_step, repeats)


def run(args: argparse.Namespace) -> str:
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for inner_steps in (1, 3):
            model = _model(args.hidden, inner_steps)
            runtime = AdaptiveRuntime.load(export_trained_dynamics(model, Path(tmp) / f"n{inner_steps}"))
            for window in (16, 32, 64):
                states = rng.normal(size=(window, 14)).astype(np.float32)
                actions = rng.normal(size=(window, 7)).astype(np.float32)
                nexts = states + 0.01 * rng.normal(size=(window, 14)).astype(np.float32)
                ort_ms, torch_ms = _time_adapt(runtime, model, (states, actions, nexts), args.repeats)
                rows.append((f"adapt, gradient, M={window}, n={inner_steps}", ort_ms, torch_ms))
        rls_model = dataclasses.replace(
            _model(args.hidden, 1), adaptation=Adaptation("rls", 1, rls_prior_precision=1.0)
        )
        rls_runtime = AdaptiveRuntime.load(export_trained_dynamics(rls_model, Path(tmp) / "rls"))
        for window in (16, 32, 64):
            states = rng.normal(size=(window, 14)).astype(np.float32)
            actions = rng.normal(size=(window, 7)).astype(np.float32)
            nexts = states + 0.01 * rng.normal(size=(window, 14)).astype(np.float32)
            rows.append(
                (
                    f"adapt, last-layer RLS, M={window}",
                    *_time_adapt(rls_runtime, rls_model, (states, actions, nexts), args.repeats),
                )
            )
        # Prediction and the full control step with the last model (n = 3, M = 64 in the bundle).
        stats = model.normalizer.torch()
        planner = MPPIConfig.from_dict(DEFAULT_PLANNER)
        batch_states = rng.normal(size=(planner.samples, 14)).astype(np.float32)
        batch_actions = rng.normal(size=(planner.samples, 7)).astype(np.float32)
        names = model.shape.parameter_names()

        def torch_predict(params, s, a):
            with torch.no_grad():
                named = dict(zip(names, params, strict=True))
                return predict_next_state(named, torch.from_numpy(s), torch.from_numpy(a), stats).numpy()

        torch_params = [model.params[k] for k in names]
        rows.append(
            (
                f"predict, batch {planner.samples}",
                percentiles_ms(lambda: runtime.predict(runtime.meta_params, batch_states, batch_actions), args.repeats),
                percentiles_ms(lambda: torch_predict(torch_params, batch_states, batch_actions), args.repeats),
            )
        )
        state, reference = batch_states[0], np.concatenate([batch_states[0, :7], np.zeros(7)])
        window = 16
        states, actions = batch_states[:window], batch_actions[:window]
        nexts = states + 0.01
        torch_planner = make_planner(model)
        tensors = Transitions(states, actions, nexts).to_torch()

        def ort_control() -> None:
            result = runtime.adapt(states, actions, nexts)
            runtime.plan(result.params, state, reference)

        def torch_control() -> None:
            adapted = model.adaptation.adapt(model.params, tensors, stats, model.step_sizes)
            torch_planner.plan(torch_predict, [adapted[k].detach() for k in names], state, reference)

        control_repeats = max(200, args.repeats // 5)
        control = f"control step: adapt (M={window}, n=3) + MPPI ({planner.samples}×{planner.horizon})"
        rows.append(
            (control, percentiles_ms(ort_control, control_repeats), percentiles_ms(torch_control, control_repeats))
        )
        pause_s = PANDA.control_period_s  # the paced row: one call per Panda control period
        rows.append(
            (
                f"{control}, one per {pause_s * 1e3:g} ms",
                percentiles_ms(ort_control, control_repeats, pause_s),
                percentiles_ms(torch_control, control_repeats, pause_s),
            )
        )
        rows.append(
            (
                f"RL² policy step (GRU, H={args.rl2_hidden}, hidden state carried)",
                *_time_recurrent_step(args.rl2_hidden, Path(tmp) / "rl2", args.repeats),
            )
        )

    lines = [
        "## Runtime: on-robot latency (ONNX Runtime vs torch eager)",
        "",
        f"Command: `metarl bench runtime --repeats {args.repeats} --hidden {' '.join(map(str, args.hidden))} "
        f"--rl2-hidden {args.rl2_hidden}`  ",
        f"Machine: {describe_machine()}; one intra-op thread for both.",
        "",
        "Panda-sized dynamics model (14-D state, 7 torques). ORT adapt includes the robot's guard",
        "(finite check, loss comparison); torch adapt computes the same losses and inner steps.",
        "",
        "| operation | ORT p50 (ms) | ORT p99 (ms) | torch p50 (ms) | torch p99 (ms) | speed-up (p50) |",
        "|---|---|---|---|---|---|",
    ]
    for name, (ort_p50, ort_p99), (torch_p50, torch_p99) in rows:
        speed_up = torch_p50 / ort_p50
        lines.append(
            f"| {name} | {ort_p50:.3f} | {ort_p99:.3f} | {torch_p50:.3f} | {torch_p99:.3f} | {speed_up:.1f}× |"
        )
    lines += [
        "",
        "RLS rows: features from ONNX, the output layer's closed form in numpy (float64 solve).",
        "RL² row: one step of the recurrent bundle's policy graph (its adaptation is the carried hidden state).",
        f"*One per {1e3 / PANDA.control_rate_hz:g} ms*: the call paced at the {PANDA.control_rate_hz:g} Hz control "
        "rate, idle in",
        "between as on the robot; the figure `metarl bench ros` sees in the node's ticks.",
    ]
    return "\n".join(lines)
