"""The faster tick (issue 17) commands exactly what the algorithm before it did.

The reference below is the tick as it was: the window a deque stacked on every adaptation, the
predict feed rebuilt on every call, sessions opened without the spaced-call settings, the
adaptation before the plan. Both run on one fixed input stream, long enough for the window to
wrap, with every adaptation accepted or refused as it comes; the command sequences must be equal
bit for bit when the controller adapts before planning (``adapt_after_command=False``), its
next plan's noise drawn after each command (``after_command``) as the node does. The
default ordering, adaptation after the command, is pinned against this same reference in
``test_adapt_after_command.py``.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from export.onnx_export import export_trained_dynamics
from metarl_runtime.controllers import OnlineAdaptiveController, TransitionWindow
from metarl_runtime.model_runtime import AdaptiveRuntime
from metarl_runtime.onnx_sessions import RUNTIME_OPTIMIZATION_LEVEL, SESSION_CONFIG_ENTRIES
from tests.conftest import WINDOW_SIZE, tiny_model

PLANNER = {
    "samples": 32,
    "horizon": 4,
    "noise_fraction": 0.02,
    "model_inverse": True,
    "feedback_kp": [300.0] * 4 + [60.0] * 3,
    "feedback_kd": [30.0] * 4 + [4.0] * 3,
}
TICKS = 4 * WINDOW_SIZE


class TickBeforeIssue17(OnlineAdaptiveController):
    """The controller's step as it was before issue 17, on a runtime whose graphs were opened
    with ORT's default session settings and whose predict builds its feed on every call."""

    def reset(self) -> None:
        super().reset()
        self.window = deque(maxlen=self.runtime.manifest.window_size)

    def __call__(self, state: np.ndarray, reference: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float32)
        if self.previous is not None:
            self.window.append((self.previous[0], self.previous[1], state))
        self.ticks += 1
        if self.adaptation_enabled and len(self.window) >= 2 and self.ticks % self.adapt_every_n_ticks == 0:
            states, actions, next_states = (np.stack(x) for x in zip(*self.window, strict=True))
            self.params = self.runtime.adapt(states, actions, next_states).params
        try:
            command = self.runtime.plan(self.params, state, reference)
        except FloatingPointError:
            command = self.hold()
        if not np.all(np.isfinite(command)):
            command = self.hold()
        command = np.clip(command, self.low, self.high)
        self.previous = (state, command.astype(np.float32))
        return command


def _runtime_before(path: Path) -> AdaptiveRuntime:
    runtime = AdaptiveRuntime.load(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = RUNTIME_OPTIMIZATION_LEVEL
    manifest = runtime.manifest
    adapt_graph = "adapt.onnx" if manifest.mode == "gradient" else "features.onnx"
    runtime.adaptation.session = ort.InferenceSession(manifest.file_bytes[adapt_graph], options)
    runtime._predict = ort.InferenceSession(manifest.file_bytes["predict.onnx"], options)
    names = list(manifest.parameter_names)

    def predict_building_the_feed(params, states, actions):
        feed = dict(zip(names, params, strict=True))
        feed["states"], feed["actions"] = np.asarray(states, np.float32), np.asarray(actions, np.float32)
        return runtime._predict.run(None, feed)[0]

    runtime.predict = predict_building_the_feed
    return runtime


def _input_stream(model, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    norm = model.normalizer
    stream = []
    for _ in range(TICKS):
        state = (norm.state_mean + 0.3 * norm.state_std * rng.normal(size=14)).astype(np.float32)
        reference = np.concatenate([state[:7] + 0.05 * rng.normal(size=7), np.zeros(7)])
        stream.append((state, reference))
    return stream


@pytest.mark.parametrize("mode", ["gradient", "rls"])
def test_command_sequence_is_unchanged_bit_for_bit(tmp_path: Path, mode: str) -> None:
    model = dataclasses.replace(tiny_model(2, seed=3), planner=PLANNER)
    if mode == "rls":
        rls = dataclasses.replace(model.adaptation, rule="rls", rls_prior_precision=0.5)
        model = dataclasses.replace(model, adaptation=rls)
    bundle = export_trained_dynamics(model, tmp_path / "bundle")
    after = OnlineAdaptiveController(AdaptiveRuntime.load(bundle), adapt_after_command=False)
    before = TickBeforeIssue17(_runtime_before(bundle))
    commands_after, commands_before = [], []
    for state, reference in _input_stream(model, seed=11):
        commands_after.append(after(state, reference))
        commands_before.append(before(state, reference))
        assert not after.after_command()  # only draws the next plan's noise: the same draws, ahead
    assert after.stats.attempts == TICKS - 2  # every tick from the third adapted
    assert np.array_equal(np.array(commands_after), np.array(commands_before))
    assert np.array_equal(after.params[-1], before.params[-1])


def test_window_holds_the_last_transitions_oldest_first() -> None:
    window, reference = TransitionWindow(3, 2, 1), deque(maxlen=3)
    for step in range(8):
        row = (np.full(2, step, np.float32), np.full(1, -step, np.float32), np.full(2, step + 0.5, np.float32))
        window.append(*row)
        reference.append(row)
        assert len(window) == len(reference)
        for got, expected in zip(window.arrays(), zip(*reference, strict=True), strict=True):
            assert np.array_equal(got, np.stack(expected))


def test_window_refuses_a_capacity_below_one() -> None:
    with pytest.raises(ValueError, match="capacity=0"):
        TransitionWindow(0, 2, 1)


def test_sessions_do_not_spin_between_calls(tmp_path: Path) -> None:
    runtime = AdaptiveRuntime.load(export_trained_dynamics(tiny_model(1), tmp_path / "bundle"), intra_op_threads=2)
    for session in (runtime.adaptation.session, runtime._predict):
        options = session.get_session_options()
        for key, value in SESSION_CONFIG_ENTRIES.items():
            assert options.get_session_config_entry(key) == value
