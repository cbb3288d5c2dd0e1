"""Last-layer RLS bundles: the runtime's closed form matches torch's, and it fits the window."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from export.onnx_export import export_trained_dynamics
from metarl_core.model_based.adaptation import last_layer_rls
from metarl_core.model_based.replay_buffer import Transitions
from metarl_runtime.model_runtime import AdaptiveRuntime
from tests.conftest import WINDOW_SIZE, tiny_model


@pytest.fixture(scope="module", params=[1.0, 0.6], ids=["evenly", "forgetting"])
def rls_bundle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    model = tiny_model(1, seed=5)
    model = dataclasses.replace(
        model,
        adaptation=dataclasses.replace(
            model.adaptation, rule="rls", rls_prior_precision=0.5, rls_forgetting=request.param
        ),
    )
    return model, export_trained_dynamics(model, tmp_path_factory.mktemp("rls") / "bundle")


@pytest.mark.parametrize(
    "level", [ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL]
)
def test_rls_adaptation_matches_torch(rls_bundle, level: ort.GraphOptimizationLevel) -> None:
    model, path = rls_bundle
    runtime = AdaptiveRuntime.load(path, optimization_level=level)
    assert runtime.manifest.mode == "rls" and (Path(path) / "features.onnx").exists()
    stats64 = {k: v.double() for k, v in model.normalizer.torch().items()}
    params64 = {k: v.double() for k, v in model.params.items()}
    rng = np.random.default_rng(0)
    norm = model.normalizer
    for length in range(1, WINDOW_SIZE + 1):
        states = (norm.state_mean + norm.state_std * rng.normal(size=(length, 14))).astype(np.float32)
        actions = (norm.action_mean + norm.action_std * rng.normal(size=(length, 7))).astype(np.float32)
        nexts = (states + norm.delta_mean + norm.delta_std * rng.normal(size=(length, 14))).astype(np.float32)
        result = runtime.adapt(states, actions, nexts)
        window = Transitions(*(torch.from_numpy(x).double() for x in (states, actions, nexts)))
        expected = last_layer_rls(params64, window, stats64, 0.5, model.adaptation.rls_forgetting)
        for got, name in zip(result.params, model.shape.parameter_names(), strict=True):
            want = expected[name].numpy()
            assert np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))) <= 1e-5, (name, length)
        assert result.accepted and result.loss_after < result.loss_before, result.reason
