"""Adaptation after the command (issue 17): what the new ordering of a tick changes, and what not.

With ``adapt_after_command=True`` (the node's ``adapt_after_publish``) tick t plans with the
parameters adapted at the end of tick t-1, on the window ending with the transition into t-1;
by default (and before issue 17) tick t adapts on the window ending with the transition into t
and plans with that. The plan itself, its random
stream, the accept guard, the hold and the clamping are the same code: given the same parameters
the commands are the same bit for bit, which these tests pin against a replay and against the
tick as it was (``TickBeforeIssue17``), along with the ticks where the two orderings must agree
(the first two after a reset, adaptation off, every adaptation refused).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from export.onnx_export import export_trained_dynamics
from metarl_core.model_based.checkpoint import TrainedDynamics
from metarl_runtime.controllers import OnlineAdaptiveController
from metarl_runtime.model_runtime import AdaptiveRuntime
from tests.conftest import tiny_model
from tests.metarl_runtime.test_tick_glue_parity import (
    PLANNER,
    TICKS,
    TickBeforeIssue17,
    _input_stream,
    _runtime_before,
)


def _bundle(tmp_path: Path, mode: str = "gradient", step_size: float | None = None) -> tuple[TrainedDynamics, Path]:
    model = dataclasses.replace(tiny_model(2, seed=3), planner=PLANNER)
    if step_size is not None:
        model = dataclasses.replace(model, step_sizes=step_size)
    if mode == "rls":
        model = dataclasses.replace(model, adaptation=dataclasses.replace(model.adaptation, rule="rls"))
    return model, export_trained_dynamics(model, tmp_path / f"bundle_{mode}")


def _same_params(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("mode", ["gradient", "rls"])
def test_each_command_is_the_plan_through_the_parameters_adapted_a_tick_before(tmp_path: Path, mode: str) -> None:
    """Driven as the node drives it (call, publish, ``after_command``): every command equals the
    old plan run on a second runtime with the parameters in force before the call, and every
    adaptation equals the runtime's own on the window the tick left."""
    model, bundle = _bundle(tmp_path, mode)
    controller = OnlineAdaptiveController(AdaptiveRuntime.load(bundle), adapt_after_command=True)
    replay = AdaptiveRuntime.load(bundle)
    meta = controller.runtime.meta_params
    for tick, (state, reference) in enumerate(_input_stream(model, seed=11), start=1):
        in_force = controller.params
        command = controller(state, reference)
        expected = np.clip(replay.plan(in_force, state, reference), controller.low, controller.high)
        assert np.array_equal(command, expected), f"tick {tick}"
        assert controller.last_adapt_s == 0.0  # nothing adapted before the command
        assert controller.after_command() == (tick >= 3)  # from the third tick, the window holds two
        if tick >= 3:
            assert _same_params(controller.params, replay.adapt(*controller.window.arrays()).params)
        else:
            assert controller.params is meta
    assert controller.stats.attempts == TICKS - 2
    assert 0 < controller.stats.accepted


def test_the_first_two_ticks_after_a_reset_command_as_before(tmp_path: Path) -> None:
    """Neither ordering adapts before the third tick, so the first two commands after a reset
    are the old tick's bit for bit; the third differs once the old tick's adaptation there is
    accepted, since the new one plans it with the meta-parameters. A reset also drops a pending
    adaptation."""
    model, bundle = _bundle(tmp_path)
    after = OnlineAdaptiveController(AdaptiveRuntime.load(bundle), adapt_after_command=True)
    before = TickBeforeIssue17(_runtime_before(bundle))
    stream = _input_stream(model, seed=5)
    for start in (0, 10):  # a fresh controller, then a reset in the middle of the stream
        after.reset()
        before.reset()
        for state, reference in stream[start : start + 2]:
            assert np.array_equal(after(state, reference), before(state, reference))
            assert not after.after_command()
        state, reference = stream[start + 2]
        third_after, third_before = after(state, reference), before(state, reference)
        assert after.params is after.runtime.meta_params and before.stats.accepted == 0
        assert before.params is not before.runtime.meta_params  # accepted by the old guard...
        assert not np.array_equal(third_after, third_before)  # ...so its third command differs
        assert after.adaptation_pending
    after.reset()
    assert not after.adaptation_pending and not after.after_command()
    assert after.params is after.runtime.meta_params


def test_a_caller_that_never_calls_after_command_gets_the_same_algorithm(tmp_path: Path) -> None:
    """The in-process demo and benchmarks only call the controller: the pending adaptation then
    runs at the start of the next call, on the same window, so their commands are the node's."""
    model, bundle = _bundle(tmp_path)
    node_like = OnlineAdaptiveController(AdaptiveRuntime.load(bundle), adapt_after_command=True)
    call_only = OnlineAdaptiveController(AdaptiveRuntime.load(bundle), adapt_after_command=True)
    for state, reference in _input_stream(model, seed=7):
        assert np.array_equal(node_like(state, reference), call_only(state, reference))
        node_like.after_command()
    assert call_only.stats.attempts == node_like.stats.attempts - 1  # its last one is still pending
    assert call_only.after_command()
    assert _same_params(call_only.params, node_like.params)
    assert dataclasses.asdict(call_only.stats) == dataclasses.asdict(node_like.stats)


def test_adaptation_disabled_commands_alike_in_both_orderings(tmp_path: Path) -> None:
    """Off, both orderings plan every tick with the meta-parameters: the same commands as the old
    tick, nothing pending, nothing adapted. Switching it off drops a pending adaptation."""
    model, bundle = _bundle(tmp_path)
    after = OnlineAdaptiveController(AdaptiveRuntime.load(bundle), adaptation_enabled=False, adapt_after_command=True)
    before = TickBeforeIssue17(_runtime_before(bundle), adaptation_enabled=False)
    for state, reference in _input_stream(model, seed=11):
        assert np.array_equal(after(state, reference), before(state, reference))
        assert not after.after_command()
    assert after.stats.attempts == 0 and after.params is after.runtime.meta_params
    after.set_adaptation_enabled(True)
    for state, reference in _input_stream(model, seed=12)[:3]:
        after(state, reference)
    assert after.adaptation_pending
    after.set_adaptation_enabled(False)
    assert not after.after_command() and after.params is after.runtime.meta_params


def test_a_diverging_adaptation_after_the_command_is_refused(tmp_path: Path) -> None:
    """An enormous step size overshoots on every window: each adaptation after the command is
    refused by the guard, the next tick plans with the meta-parameters, and so the commands are
    those of the same bundle with adaptation off, bit for bit."""
    model, bundle = _bundle(tmp_path, step_size=5.0)
    diverging = OnlineAdaptiveController(AdaptiveRuntime.load(bundle), adapt_after_command=True)
    frozen = OnlineAdaptiveController(AdaptiveRuntime.load(bundle), adaptation_enabled=False, adapt_after_command=True)
    for state, reference in _input_stream(model, seed=11):
        command = diverging(state, reference)
        assert np.array_equal(command, frozen(state, reference))
        assert np.all(np.isfinite(command))
        assert np.all((diverging.low <= command) & (command <= diverging.high))
        diverging.after_command()
        assert diverging.params is diverging.runtime.meta_params
    stats = diverging.stats
    assert stats.attempts == TICKS - 2 and stats.accepted == 0
    assert sum(stats.rejected_reasons.values()) == stats.attempts


def test_a_plan_that_is_not_finite_still_holds(tmp_path: Path) -> None:
    """A reference the plan cannot score (NaN: the model inverse's least squares fails) gives the
    hold in the new ordering too; the adaptation due after it still runs, on the window of
    measured transitions, guarded, and the tick after the hold commands again."""
    model, bundle = _bundle(tmp_path)
    controller = OnlineAdaptiveController(AdaptiveRuntime.load(bundle), adapt_after_command=True)
    stream = _input_stream(model, seed=11)
    for state, reference in stream[:4]:
        controller(state, reference)
        controller.after_command()
    state, reference = stream[4]
    held = controller(state, np.full_like(reference, np.nan))
    assert np.array_equal(held, np.clip(np.zeros_like(controller.low), controller.low, controller.high))
    assert np.array_equal(controller.previous[1], held)  # the hold is what the robot was sent
    attempts = controller.stats.attempts
    assert controller.after_command() and controller.stats.attempts == attempts + 1
    command = controller(*stream[5])
    assert np.all(np.isfinite(command)) and not np.array_equal(command, held)
