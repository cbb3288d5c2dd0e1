"""The robot side of a ``mode: residual`` bundle: the residual torque model and its adaptation,
numpy + onnxruntime only.

``residual.onnx`` gives the MLP's residual torques at given parameters; the adaptation rule the
bundle names runs on a window of residual pairs built by ``metarl_runtime.residual_torque``:
``physical`` solves, in closed form in numpy, the ridge least squares of what the MLP leaves
unexplained over the parameters that enter the torques linearly (a payload's inertial parameters,
each joint's damping, friction and bias: ``NominalArm.adaptation_design``), whose product with the
design is added to the MLP's residual; ``rls`` solves the MLP's output layer over the features of
``features.onnx`` (``metarl_runtime.closed_form_rls``, as the dynamics model's RLS does);
``gradient`` runs the n SGD steps of ``adapt.onnx``, from the meta-parameters or, with the
bundle's ``gradient_warm_start``, from where the last adaptation ended, pulled back toward them.
With ``physical`` a parameter list is the MLP's parameters followed by θ ``(P,)``. Every result
passes the same accept guard as the model-based runtime (``metarl_runtime.adaptation_guard``):
finite, and the window loss went down.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from metarl_runtime.adaptation_guard import adaptation_refusal
from metarl_runtime.bundle_manifest import (
    MANIFEST_NAME,
    RESIDUAL_RULE_GRAPHS,
    BundleCorruptError,
    BundleSchemaError,
    CommonManifest,
    ResidualBundleManifest,
    check_robot,
)
from metarl_runtime.closed_form_rls import output_layer_loss, rls_output_layer
from metarl_runtime.model_runtime import AdaptationResult, WindowError, load_meta_params
from metarl_runtime.onnx_sessions import RUNTIME_OPTIMIZATION_LEVEL, dry_run_graph, open_graphs
from metarl_runtime.residual_torque import ResidualPairs, residual_inputs


class ResidualRuntime:
    """A loaded, validated residual bundle: ``residual`` at parameters, ``adapt`` on a window."""

    def __init__(
        self, manifest: ResidualBundleManifest, sessions: dict[str, ort.InferenceSession], meta_params: list[np.ndarray]
    ) -> None:
        self.manifest = manifest
        self.nominal = manifest.nominal_arm
        self.meta_params = meta_params
        self._names = list(manifest.parameter_names)
        self._residual = sessions["residual.onnx"]
        self._rule_session = sessions.get("features.onnx") or sessions.get("adapt.onnx")
        self.physical = manifest.adaptation_rule == "physical"
        if self.physical:  # θ₀ rides at the end of the parameter list
            self.meta_params = [*meta_params, manifest.physical_prior["mean"].astype(np.float64)]
            self._precision = np.exp(manifest.physical_prior["log_precision"])
        self._meta_feed = dict(zip(self._names, meta_params, strict=True))
        self._feed_params: list[np.ndarray] | None = None
        self._feed: dict[str, np.ndarray] = {}
        norm = manifest.residual_normalizer
        self._target_mean, self._target_std = norm["target_mean"], norm["target_std"]

    @classmethod
    def from_manifest(
        cls,
        manifest: CommonManifest,
        expected_robot: str | None = None,
        intra_op_threads: int = 1,
        optimization_level: ort.GraphOptimizationLevel = RUNTIME_OPTIMIZATION_LEVEL,
    ) -> ResidualRuntime:
        """The runtime of a residual bundle already read by ``read_manifest``, after checking its
        robot, meta-parameters, graph inputs and a dry run of each graph."""
        if not isinstance(manifest, ResidualBundleManifest):
            raise BundleSchemaError(f"{manifest.path / MANIFEST_NAME}: mode '{manifest.mode}' is not a residual bundle")
        check_robot(manifest, expected_robot, None)
        rule_graph = RESIDUAL_RULE_GRAPHS[manifest.adaptation_rule]
        graphs = ("residual.onnx",) if rule_graph is None else ("residual.onnx", rule_graph)
        sessions = open_graphs(manifest, graphs, intra_op_threads, optimization_level)
        meta_params = load_meta_params(manifest)
        expected_inputs = {
            "residual.onnx": ["inputs"],
            "features.onnx": ["inputs"],
            "adapt.onnx": ["inputs", "targets"],
        }
        for name, session in sessions.items():
            actual = [i.name for i in session.get_inputs()]
            if actual != [*manifest.parameter_names, *expected_inputs[name]]:
                raise BundleCorruptError(f"{manifest.path / name}: graph inputs {actual} are not the bundle's")
        runtime = cls(manifest, sessions, meta_params)
        runtime._dry_run()
        return runtime

    def _dry_run(self) -> None:
        """Each graph once on inputs at the normaliser's means: outputs' names and shapes checked."""
        m = self.manifest
        n = m.nominal_arm.dof
        inputs = np.repeat(m.residual_normalizer["input_mean"][None], 2, axis=0)
        targets = np.repeat(self._target_mean[None], 2, axis=0)
        feed = {**self._meta_feed, "inputs": inputs}
        dry_run_graph(m, "residual.onnx", self._residual, feed, ["residual"], [(2, n)])
        if m.adaptation_rule == "rls":
            width = m.parameter_shapes[-2][1]
            dry_run_graph(m, "features.onnx", self._rule_session, feed, ["features"], [(2, width)])
        elif m.adaptation_rule == "gradient":
            outputs = [f"adapted.{k}" for k in self._names] + ["loss_before", "loss_after"]
            shapes = [*m.parameter_shapes, (1, 1), (1, 1)]
            dry_run_graph(m, "adapt.onnx", self._rule_session, {**feed, "targets": targets}, outputs, shapes)

    def mlp_residual(self, params: list[np.ndarray], inputs: np.ndarray) -> np.ndarray:
        """The MLP's residual torques (N·m) ``(B, n)`` for raw inputs ``(B, 4n)`` at ``params`` (a
        list not changed in place once used: its feed is built once per list object; a trailing
        θ of the physical rule is not the graph's)."""
        if params is not self._feed_params:
            self._feed = dict(zip(self._names, params[: len(self._names)], strict=True))
            self._feed_params = params
        self._feed["inputs"] = np.asarray(inputs, dtype=np.float32)
        return self._residual.run(None, self._feed)[0].astype(np.float64)

    def adapt(self, pairs: ResidualPairs, last: list[np.ndarray] | None = None) -> AdaptationResult:
        """The bundle's rule on a window of pairs, from the meta-parameters (or, for a gradient
        bundle with a warm start, from ``last``, the previous adaptation's parameters, pulled back
        toward them: :meth:`warm_start_point`); that starting point comes back (not accepted)
        unless the result is finite and lowered the window loss."""
        inputs, targets = np.asarray(pairs.inputs, np.float32), np.asarray(pairs.targets, np.float32)
        design = np.asarray(pairs.design, np.float64)
        n = self.nominal.dof
        width = self.nominal.design_width
        widths = (width,) if self.physical else (0, width)  # only the physical rule solves over the design
        if (
            inputs.ndim != 2
            or len(inputs) < 1
            or inputs.shape[1] != 4 * n
            or targets.shape != (len(inputs), n)
            or design.shape not in [(len(inputs), n, w) for w in widths]
        ):
            raise WindowError(
                f"residual window shapes {inputs.shape}, {targets.shape}, {design.shape}; "
                f"expected (M, {4 * n}), (M, {n}), (M, {n}, {width})"
            )
        if not (np.all(np.isfinite(inputs)) and np.all(np.isfinite(targets)) and np.all(np.isfinite(design))):
            raise WindowError("residual window holds NaN or inf")
        start = self.meta_params
        if self.physical:
            adapted, before, after = self._adapt_physical(inputs, targets, design)
        elif self.manifest.adaptation_rule == "rls":
            phi = self._rule_session.run(None, {**self._meta_feed, "inputs": inputs})[0]
            normalized = (targets - self._target_mean) / self._target_std
            weight, bias = self.meta_params[-2], self.meta_params[-1]
            new_weight, new_bias = rls_output_layer(
                phi, normalized, weight, bias, self.manifest.rls_prior_precision, self.manifest.rls_forgetting
            )
            adapted = [*self.meta_params[:-2], new_weight, new_bias]
            before = output_layer_loss(phi, normalized, weight, bias)
            after = output_layer_loss(phi, normalized, new_weight, new_bias)
        else:
            start = self.warm_start_point(last)
            feed = self._meta_feed if start is self.meta_params else dict(zip(self._names, start, strict=True))
            outputs = self._rule_session.run(None, {**feed, "inputs": inputs, "targets": targets})
            adapted, before, after = outputs[:-2], float(outputs[-2].item()), float(outputs[-1].item())
        reason = adaptation_refusal(adapted, before, after)
        if reason is not None:
            return AdaptationResult(start, before, after, False, reason)
        return AdaptationResult(list(adapted), before, after, True, "loss dropped")

    def warm_start_point(self, last: list[np.ndarray] | None) -> list[np.ndarray]:
        """Where the gradient rule's steps start: θ* + w (θ_last − θ*) with the bundle's warm start
        w, or θ* itself when w is 0 or the last adaptation is θ* (after a reset, or a refusal of
        a start from θ*). The pull-back bounds what the steps can accumulate: an offset from θ* shrinks by
        (1 − w) each tick unless the window keeps asking for it."""
        w = self.manifest.gradient_warm_start
        if not w or last is None or last is self.meta_params:
            return self.meta_params
        pairs = zip(self.meta_params, last, strict=True)
        return [(meta + w * (mine - meta)).astype(np.float32) for meta, mine in pairs]

    def _adapt_physical(
        self, inputs: np.ndarray, targets: np.ndarray, design: np.ndarray
    ) -> tuple[list[np.ndarray], float, float]:
        """θ = (DᵀD + diag p)⁻¹ (Dᵀ(y − r(x)) + p ⊙ θ₀) in normalised target units (the closed form
        of ``metarl_core.model_based.residual_model.physical_parameters``), with the window losses
        at θ₀ and θ."""
        std = self._target_std.astype(np.float64)
        unexplained = ((targets - self.mlp_residual(self.meta_params, inputs)) / std).reshape(-1)
        flat = (design / std[:, None]).reshape(-1, design.shape[-1])
        prior = self.meta_params[-1]
        gram = flat.T @ flat + np.diag(self._precision)
        theta = np.linalg.solve(gram, flat.T @ unexplained + self._precision * prior)
        before = float(np.mean((flat @ prior - unexplained) ** 2))
        after = float(np.mean((flat @ theta - unexplained) ** 2))
        return [*self.meta_params[:-1], theta], before, after

    def command_torque(
        self,
        params: list[np.ndarray],
        q: np.ndarray,
        qd: np.ndarray,
        qdd_des: np.ndarray,
        qd_ref: np.ndarray,
        feedforward: np.ndarray,
    ) -> np.ndarray:
        """Adaptive computed torque (N·m, unclipped): ``ID_nom(q, q̇, q̈_des) + D q̇ +
        F tanh(q̇_ref/ε) + r(q, q̇, q̈_des)``, with ``q̈_des`` the nominal gains' desired acceleration
        (``NominalArm.desired_acceleration``) and the nominal part, ``feedforward``
        (``NominalArm.feedforward``), given: the controller computes it in one batch with its
        window's newest pair."""
        residual = self.mlp_residual(params, residual_inputs(q, qd, qdd_des))[0]
        if self.physical:
            residual = residual + self.nominal.adaptation_design(q, qd, qdd_des, qd_ref)[0] @ params[-1]
        return feedforward + residual
