"""ORT's adaptation and prediction agree with torch to 1e-5, at both optimisation levels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from metarl_core.model_based.adaptation import sgd_steps
from metarl_core.model_based.checkpoint import TrainedDynamics
from metarl_core.model_based.dynamics_model import predict_next_state, window_loss
from metarl_core.model_based.replay_buffer import Transitions
from metarl_runtime.model_runtime import AdaptiveRuntime

WINDOW_SIZE = 6  # as in conftest.py

LEVELS = [ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL]


def random_window(model: TrainedDynamics, length: int, rng: np.random.Generator) -> list[np.ndarray]:
    norm = model.normalizer
    states = norm.state_mean + norm.state_std * rng.normal(size=(length, model.shape.state_dim))
    actions = norm.action_mean + norm.action_std * rng.normal(size=(length, model.shape.action_dim))
    next_states = states + norm.delta_mean + norm.delta_std * rng.normal(size=(length, model.shape.state_dim))
    return [x.astype(np.float32) for x in (states, actions, next_states)]


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))


@pytest.mark.parametrize("level", LEVELS, ids=["disable_all", "enable_all"])
@pytest.mark.parametrize("inner_steps", [1, 2, 3])
def test_adaptation_matches_torch_for_every_window_size(
    bundles: dict[int, tuple[TrainedDynamics, Path]], inner_steps: int, level: ort.GraphOptimizationLevel
) -> None:
    model, path = bundles[inner_steps]
    runtime = AdaptiveRuntime.load(path, optimization_level=level)
    stats = model.normalizer.torch()
    names = model.shape.parameter_names()
    rng = np.random.default_rng(inner_steps)
    for length in range(1, WINDOW_SIZE + 1):
        states, actions, next_states = random_window(model, length, rng)
        result = runtime.adapt(states, actions, next_states)
        s, a, n = (torch.from_numpy(x) for x in (states, actions, next_states))
        expected = sgd_steps(
            model.params, Transitions(s, a, n), stats, model.step_sizes, inner_steps, create_graph=False
        )
        # The runtime may fall back to the meta-parameters; compare the graph's own output then too.
        feed = dict(zip(names, runtime.meta_params, strict=True)) | {
            "states": states,
            "actions": actions,
            "next_states": next_states,
        }
        adapted = runtime.adaptation.session.run(None, feed)
        for got, name in zip(adapted[:-2], names, strict=True):
            assert relative_error(got, expected[name].numpy()) <= 1e-5, (name, length)
        assert relative_error(adapted[-2], window_loss(model.params, s, a, n, stats).numpy()) <= 1e-5
        assert relative_error(adapted[-1], window_loss(expected, s, a, n, stats).numpy()) <= 1e-5
        predicted = runtime.predict(result.params, states, actions)
        want = predict_next_state(
            dict(zip(names, [torch.from_numpy(p) for p in result.params], strict=True)), s, a, stats
        )
        assert relative_error(predicted, want.numpy()) <= 1e-5


def test_adaptation_lowers_the_window_loss_and_is_accepted(bundles: dict[int, tuple[TrainedDynamics, Path]]) -> None:
    model, path = bundles[2]
    runtime = AdaptiveRuntime.load(path)
    result = runtime.adapt(*random_window(model, WINDOW_SIZE, np.random.default_rng(7)))
    assert result.accepted, result.reason
    assert result.loss_after < result.loss_before
    assert any(not np.array_equal(a, m) for a, m in zip(result.params, runtime.meta_params, strict=True))


def test_plan_stays_within_action_limits(bundles: dict[int, tuple[TrainedDynamics, Path]]) -> None:
    model, path = bundles[1]
    runtime = AdaptiveRuntime.load(path)
    state = random_window(model, 1, np.random.default_rng(3))[0][0]
    reference = np.concatenate([state[:7] + 0.5, np.zeros(7)])
    for _ in range(5):
        action = runtime.plan(runtime.meta_params, state, reference)
        assert action.shape == (7,)
        assert np.all(np.isfinite(action))
        assert np.all(action >= runtime.manifest.action_low) and np.all(action <= runtime.manifest.action_high)
