"""The robot's two adaptation rules, one object each, picked once when a bundle loads.

A model-based bundle's ``mode`` names the rule it was trained with (``metarl_core.model_based.
adaptation``), and the rule names the graph it ships:

- :class:`GradientAdaptation`: ``adapt.onnx`` computes the n inner SGD steps and both window
  losses in one run, exactly as training did.
- :class:`ClosedFormRLSAdaptation`: ``features.onnx`` computes the hidden layers' features; the
  output layer's ridge posterior is solved in numpy (``metarl_runtime.closed_form_rls``).

Each takes a checked window and returns the adapted parameters with the window loss before and
after; whether they are used is the accept guard's call (``metarl_runtime.adaptation_guard``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import onnxruntime as ort

from metarl_runtime.bundle_manifest import BundleManifest
from metarl_runtime.closed_form_rls import output_layer_loss, rls_output_layer
from metarl_runtime.onnx_sessions import dry_run_graph

Window = dict[str, np.ndarray]
"""``{"states": (M, S), "actions": (M, A), "next_states": (M, S)}``, float32, checked."""


class _GraphAdaptation:
    """What both rules hold: the bundle, the session of their graph, and the meta-parameters
    (also as the graph's feed, built once: they never change on the robot)."""

    def __init__(self, manifest: BundleManifest, session: ort.InferenceSession, meta_params: list[np.ndarray]) -> None:
        self.manifest = manifest
        self.session = session
        self.meta_params = meta_params
        self._meta_feed = dict(zip(manifest.parameter_names, meta_params, strict=True))


class GradientAdaptation(_GraphAdaptation):
    """n gradient steps from the meta-parameters: one run of ``adapt.onnx``."""

    GRAPH: ClassVar[str] = "adapt.onnx"
    DATA_INPUTS: ClassVar[tuple[str, ...]] = ("states", "actions", "next_states")

    def dry_run(self, window: Window) -> None:
        """Refuse, at load, a graph whose outputs are not the adapted parameters and two losses."""
        m = self.manifest
        outputs = [f"adapted.{k}" for k in m.parameter_names] + ["loss_before", "loss_after"]
        shapes = [*m.parameter_shapes, (1, 1), (1, 1)]
        dry_run_graph(m, self.GRAPH, self.session, {**self._meta_feed, **window}, outputs, shapes)

    def adapt(self, window: Window) -> tuple[list[np.ndarray], float, float]:
        """The adapted parameters and the window loss before and after."""
        outputs = self.session.run(None, {**self._meta_feed, **window})
        return outputs[:-2], float(outputs[-2].item()), float(outputs[-1].item())


class ClosedFormRLSAdaptation(_GraphAdaptation):
    """The output layer's ridge posterior over the features of ``features.onnx`` (numpy solve)."""

    GRAPH: ClassVar[str] = "features.onnx"
    DATA_INPUTS: ClassVar[tuple[str, ...]] = ("states", "actions")

    def __init__(self, manifest: BundleManifest, session: ort.InferenceSession, meta_params: list[np.ndarray]) -> None:
        super().__init__(manifest, session, meta_params)
        self._prior_precision = float(manifest.rls_prior_precision)
        self._forgetting = manifest.rls_forgetting

    def _features(self, window: Window) -> dict[str, np.ndarray]:
        return {**self._meta_feed, "states": window["states"], "actions": window["actions"]}

    def dry_run(self, window: Window) -> None:
        """Refuse, at load, a graph whose output is not one feature row per transition."""
        width = self.manifest.parameter_shapes[-2][1]
        length = len(window["states"])
        dry_run_graph(self.manifest, self.GRAPH, self.session, self._features(window), ["features"], [(length, width)])

    def adapt(self, window: Window) -> tuple[list[np.ndarray], float, float]:
        """The parameters with the output layer solved on the window, and the window loss
        before and after (of the output layer: the features are unchanged)."""
        phi = self.session.run(None, self._features(window))[0]
        norm = self.manifest.normalizer
        targets = (window["next_states"] - window["states"] - norm["delta_mean"]) / norm["delta_std"]
        weight, bias = self.meta_params[-2], self.meta_params[-1]
        new_weight, new_bias = rls_output_layer(phi, targets, weight, bias, self._prior_precision, self._forgetting)
        before = output_layer_loss(phi, targets, weight, bias)
        after = output_layer_loss(phi, targets, new_weight, new_bias)
        return [*self.meta_params[:-2], new_weight, new_bias], before, after


RuntimeAdaptation = GradientAdaptation | ClosedFormRLSAdaptation

RUNTIME_ADAPTATIONS: dict[str, type[RuntimeAdaptation]] = {
    "gradient": GradientAdaptation,
    "rls": ClosedFormRLSAdaptation,
}
"""The rule object for each model-based bundle ``mode``."""
